/* Signatures with the RDP listener's TLS key for a session process that does not hold it
 * (rdp/keyless.c asks, slated answers over the IPC; after Cloudflare's Keyless SSL). The key's
 * owner signs only what a TLS 1.2/1.3 server handshake needs, checked here before the key is
 * touched:
 *   KEYSIGN_RSA_PKCS1  a DER DigestInfo of a SHA-256/384/512 digest (PKCS#1 v1.5 signature);
 *   KEYSIGN_RSA_PSS    a block as long as the modulus holding an EMSA-PSS encoding (RFC 8017
 *                      9.1.1) with SHA-256/384/512, MGF1 with the same hash and a salt as long
 *                      as the hash, which is what TLS 1.3 and OpenSSL's libssl use;
 *   KEYSIGN_ECDSA      a SHA-256/384/512 digest.
 * Never a raw RSA decryption: with RSA key exchange disabled a TLS server never decrypts, and a
 * random block passes the PSS check with negligible probability. keysign_check does no I/O and
 * is fuzzed (tests/fuzz/fuzz_keysign.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

typedef enum KeySignAlg {
        KEYSIGN_RSA_PKCS1 = 1,
        KEYSIGN_RSA_PSS = 2,
        KEYSIGN_ECDSA = 3,
} KeySignAlg;

#define KEYSIGN_MAX 1024        /* bytes in or out: up to RSA-8192 */

/* 0 when in[0..len) is a request of kind alg that key may sign; -EINVAL otherwise (wrong kind
 * for the key, bad length, not a SHA-2 DigestInfo, not a PSS encoding). */
int keysign_check(EVP_PKEY *key, uint8_t alg, const uint8_t *in, size_t len);
/* keysign_check, then sign into out (KEYSIGN_MAX bytes); *ret_len is the signature's length. */
int keysign(EVP_PKEY *key, uint8_t alg, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len);
