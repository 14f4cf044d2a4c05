/* A TLS private key whose private half stays in slated (after Cloudflare's Keyless SSL): an
 * OpenSSL key made from the certificate's public key, whose signing calls go to a callback
 * (slate-session asks slated over the IPC; common/keysign.h says what slated will sign). So a
 * memory-disclosure or code-execution bug before authentication cannot reveal the long-term key.
 *
 * FreeRDP 2 takes the server key only as PEM text (PrivateKeyContent) or a file, and reads it in
 * tls_accept with PEM_read_bio_PrivateKey; this module defines that symbol in slate-session,
 * which the dynamic linker binds ahead of libcrypto's: given KEYLESS_PEM_MARKER it returns the
 * keyless key, anything else goes to OpenSSL's own function. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define KEYLESS_PEM_MARKER "-----BEGIN SLATE KEYLESS KEY-----\n-----END SLATE KEYLESS KEY-----\n"

/* Sign in[0..len) of kind alg (KeySignAlg) into out (KEYSIGN_MAX bytes); 0 or a negative errno. */
typedef int (*KeylessSignFn)(void *ud, uint8_t alg, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len);

/* Make the process's keyless key from cert_pem's public key (RSA or EC). */
int keyless_install(const char *cert_pem, KeylessSignFn fn, void *ud);
void keyless_uninstall(void);
