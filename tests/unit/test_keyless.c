/* The keyless TLS key (rdp/keyless.c) and what its owner agrees to sign (common/keysign.c):
 * real TLS 1.2 and 1.3 handshakes through OpenSSL's libssl with the signing done by a callback
 * holding the real key, both RSA paddings and ECDSA, and the requests slated must refuse. */
#define OPENSSL_API_COMPAT 10101
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "common/keysign.h"
#include "rdp/keyless.h"

static EVP_PKEY *real_key;
static int signs, refusals;

/* What slated does with a session's IPC_SIGN (broker/conn.c). */
static int sign_cb(void *ud, uint8_t alg, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len)
{
        int r = keysign(real_key, alg, in, len, out, ret_len);
        r < 0 ? refusals++ : signs++;
        return r;
}

static char *self_signed(EVP_PKEY *key)
{
        X509 *x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        cr_assert(X509_sign(x, key, EVP_sha256()));
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_X509(b, x);
        char *p;
        long n = BIO_get_mem_data(b, &p);
        char *pem = strndup(p, (size_t)n);
        BIO_free(b);
        X509_free(x);
        return pem;
}

/* A server whose key is loaded the way FreeRDP 2 loads it (PEM_read_bio_PrivateKey of the
 * marker), a client limited to one version and signature algorithm, one handshake over a BIO
 * pair. Returns whether it completed. */
static bool handshake(const char *cert_pem, int version, const char *sigalgs)
{
        BIO *kb = BIO_new_mem_buf(KEYLESS_PEM_MARKER, -1), *cb = BIO_new_mem_buf(cert_pem, -1);
        EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        X509 *cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        BIO_free(kb);
        BIO_free(cb);
        cr_assert_not_null(key, "the marker did not give the keyless key");
        cr_assert_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_get_base_id(real_key));

        SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(cctx, version);
        SSL_CTX_set_max_proto_version(cctx, version);
        cr_assert(SSL_CTX_set1_sigalgs_list(cctx, sigalgs));
        SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
        cr_assert_eq(SSL_use_PrivateKey(s, key), 1);
        cr_assert_eq(SSL_use_certificate(s, cert), 1, "the certificate does not match the keyless key");
        EVP_PKEY_free(key);
        X509_free(cert);
        BIO *sb, *cbio;
        BIO_new_bio_pair(&sb, 0, &cbio, 0);
        SSL_set_bio(s, sb, sb);
        SSL_set_bio(c, cbio, cbio);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        bool s_done = false, c_done = false, failed = false;
        for (int i = 0; i < 100 && !(s_done && c_done) && !failed; i++) {
                int r;
                if (!c_done && (r = SSL_do_handshake(c)) == 1)
                        c_done = true;
                else if (!c_done && SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                        failed = true;
                if (!s_done && (r = SSL_do_handshake(s)) == 1)
                        s_done = true;
                else if (!s_done && SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                        failed = true;
        }
        SSL_free(s);
        SSL_free(c);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        return s_done && c_done;
}

Test(keyless, rsa_tls12_pkcs1_and_pss_and_tls13)
{
        real_key = EVP_RSA_gen(2048);
        char *cert = self_signed(real_key);
        cr_assert_eq(keyless_install(cert, sign_cb, NULL), 0);
        signs = refusals = 0;
        cr_assert(handshake(cert, TLS1_2_VERSION, "RSA+SHA256"), "TLS 1.2 with a PKCS#1 v1.5 signature failed");
        cr_assert(handshake(cert, TLS1_2_VERSION, "RSA+SHA512"));
        cr_assert(handshake(cert, TLS1_2_VERSION, "rsa_pss_rsae_sha256"), "TLS 1.2 with an RSA-PSS signature failed");
        cr_assert(handshake(cert, TLS1_3_VERSION, "rsa_pss_rsae_sha384"), "TLS 1.3 failed");
        cr_assert_eq(signs, 4);
        cr_assert_eq(refusals, 0);
        keyless_uninstall();
        free(cert);
        EVP_PKEY_free(real_key);
}

Test(keyless, ecdsa_tls12_and_tls13)
{
        real_key = EVP_EC_gen("P-256");
        char *cert = self_signed(real_key);
        cr_assert_eq(keyless_install(cert, sign_cb, NULL), 0);
        signs = refusals = 0;
        cr_assert(handshake(cert, TLS1_2_VERSION, "ECDSA+SHA256"));
        cr_assert(handshake(cert, TLS1_3_VERSION, "ecdsa_secp256r1_sha256"));
        cr_assert_eq(signs, 2);
        keyless_uninstall();
        free(cert);
        EVP_PKEY_free(real_key);
}

Test(keyless, other_pem_is_read_by_openssl)
{
        EVP_PKEY *k = EVP_RSA_gen(1024);
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
        EVP_PKEY *back = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        cr_assert_not_null(back);
        cr_assert_eq(EVP_PKEY_eq(k, back), 1);
        EVP_PKEY_free(back);
        EVP_PKEY_free(k);
        BIO_free(b);
}

/* What a subverted session might ask for instead of a handshake signature. */
Test(keysign, refuses_what_is_not_a_handshake_signature)
{
        EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
        uint8_t in[KEYSIGN_MAX], out[KEYSIGN_MAX];
        size_t n;
        /* A raw block (an RSA decryption in disguise, or a chosen message) is not a PSS encoding. */
        for (int i = 0; i < 256; i++)
                in[i] = (uint8_t)(i * 7 + 1);
        in[0] &= 0x7f;
        in[255] = 0xbc;
        cr_assert_eq(keysign(rsa, KEYSIGN_RSA_PSS, in, 256, out, &n), -EINVAL);
        cr_assert_eq(keysign(rsa, KEYSIGN_RSA_PSS, in, 255, out, &n), -EINVAL);
        /* An MD5 or SHA-1 DigestInfo, or a bare digest, is not signed with PKCS#1. */
        static const uint8_t sha1_di[15] = { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 };
        memcpy(in, sha1_di, sizeof sha1_di);
        memset(in + sizeof sha1_di, 0x11, 20);
        cr_assert_eq(keysign(rsa, KEYSIGN_RSA_PKCS1, in, sizeof sha1_di + 20, out, &n), -EINVAL);
        memset(in, 0x22, 32);
        cr_assert_eq(keysign(rsa, KEYSIGN_RSA_PKCS1, in, 32, out, &n), -EINVAL);
        /* Kinds that do not fit the key, unknown kinds, odd digest lengths. */
        cr_assert_eq(keysign(rsa, KEYSIGN_ECDSA, in, 32, out, &n), -EINVAL);
        cr_assert_eq(keysign(ec, KEYSIGN_RSA_PKCS1, in, 51, out, &n), -EINVAL);
        cr_assert_eq(keysign(ec, KEYSIGN_ECDSA, in, 20, out, &n), -EINVAL);
        cr_assert_eq(keysign(ec, 9, in, 32, out, &n), -EINVAL);
        cr_assert_eq(keysign(ec, KEYSIGN_ECDSA, in, 32, out, &n), 0);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
}
