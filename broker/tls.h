/* The RDP server's TLS identity: created on first start (self-signed RSA-2048, key 0600) when
 * absent, then read into slated's memory. Sessions get the certificate over IPC and never the
 * key: they ask slated to sign their handshake (common/keysign.h, rdp/keyless.h). */
#pragma once
#include <openssl/evp.h>

/* Make sure cert and key exist (creating both if neither does), then load the certificate as PEM
 * text and the key (RSA or EC, checked to match the certificate). Free with tls_key_free. */
int tls_identity_load(const char *cert_path, const char *key_path, char **ret_cert, EVP_PKEY **ret_key);
void tls_key_free(EVP_PKEY *key);
