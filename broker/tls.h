/* The RDP server's TLS identity: created on first start (self-signed RSA-2048, key 0600) when
 * absent, then read into memory and handed to each slate-session over IPC, so the unprivileged
 * session process never opens a file. */
#pragma once

/* Make sure cert and key exist (creating both if neither does), then load them as PEM text.
 * *ret_key is mlock'd where possible; free it with tls_key_free. */
int tls_identity_load(const char *cert_path, const char *key_path, char **ret_cert, char **ret_key);
void tls_key_free(char *key);
