/* The keyless key (keyless.h). RSA_METHOD and EC_KEY_METHOD are deprecated in OpenSSL 3 but
 * remain its way to give a key whose private operations happen elsewhere without writing a
 * provider: a key with a non-default method is "foreign" and OpenSSL 3 keeps it on the legacy
 * path, where a PKCS#1 v1.5 signature reaches rsa_priv_enc as a DigestInfo with PKCS#1 padding
 * and a PSS signature as an encoded block with no padding (libssl uses both, TLS 1.3 the latter). */
#define OPENSSL_API_COMPAT 10101
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include "common/keysign.h"
#include "common/log.h"
#include "rdp/keyless.h"

/* FreeRDP's key loading passes no user pointer through OpenSSL: this is the process's one key. */
static struct {
        EVP_PKEY *key;
        KeylessSignFn fn;
        void *ud;
        RSA_METHOD *rsa_meth;
        EC_KEY_METHOD *ec_meth;
} kl;

static int remote_sign(uint8_t alg, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len)
{
        if (!kl.fn)
                return -ENOKEY;
        /* The first comes right after the X.224 answer and the client's TLS hello: the time
         * from accept to here is the server's share of the connection's start (bench section 34). */
        static bool first = true;
        if (first)
                log_debug("TLS: first handshake signature");
        first = false;
        int r = kl.fn(kl.ud, alg, in, len, out, ret_len);
        if (r < 0)
                log_error("TLS: slated did not sign (%s)", strerror(-r));
        return r;
}

static int rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
        uint8_t alg = padding == RSA_PKCS1_PADDING ? KEYSIGN_RSA_PKCS1 : padding == RSA_NO_PADDING ? KEYSIGN_RSA_PSS : 0;
        uint8_t sig[KEYSIGN_MAX];
        size_t n;
        if (!alg || flen <= 0 || remote_sign(alg, from, (size_t)flen, sig, &n) < 0 || n != (size_t)RSA_size(rsa))
                return -1;
        memcpy(to, sig, n);
        return (int)n;
}

/* A TLS server with forward secrecy never decrypts with its key. */
static int rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding) { return -1; }

static int ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
                   const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
        uint8_t out[KEYSIGN_MAX];
        size_t n;
        if (dlen <= 0 || remote_sign(KEYSIGN_ECDSA, dgst, (size_t)dlen, out, &n) < 0 || n > (size_t)ECDSA_size(eckey))
                return 0;
        memcpy(sig, out, n);
        *siglen = (unsigned)n;
        return 1;
}

static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
        uint8_t out[KEYSIGN_MAX];
        size_t n;
        if (dlen <= 0 || remote_sign(KEYSIGN_ECDSA, dgst, (size_t)dlen, out, &n) < 0)
                return NULL;
        const unsigned char *p = out;
        return d2i_ECDSA_SIG(NULL, &p, (long)n);
}

static EVP_PKEY *rsa_key_new(EVP_PKEY *pub)
{
        if (!kl.rsa_meth) {
                kl.rsa_meth = RSA_meth_dup(RSA_get_default_method());
                if (!kl.rsa_meth || !RSA_meth_set1_name(kl.rsa_meth, "slate keyless") ||
                    !RSA_meth_set_priv_enc(kl.rsa_meth, rsa_priv_enc) || !RSA_meth_set_priv_dec(kl.rsa_meth, rsa_priv_dec))
                        return NULL;
        }
        RSA *rsa = EVP_PKEY_get1_RSA(pub);        /* n and e only */
        EVP_PKEY *k = EVP_PKEY_new();
        if (!rsa || !k || !RSA_set_method(rsa, kl.rsa_meth) || !EVP_PKEY_assign_RSA(k, rsa)) {
                RSA_free(rsa);
                EVP_PKEY_free(k);
                return NULL;
        }
        return k;
}

static EVP_PKEY *ec_key_new(EVP_PKEY *pub)
{
        if (!kl.ec_meth) {
                kl.ec_meth = EC_KEY_METHOD_new(EC_KEY_get_default_method());
                if (!kl.ec_meth)
                        return NULL;
                int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **);
                EC_KEY_METHOD_get_sign(kl.ec_meth, NULL, &setup, NULL);
                EC_KEY_METHOD_set_sign(kl.ec_meth, ec_sign, setup, ec_sign_sig);
        }
        EC_KEY *ec = EVP_PKEY_get1_EC_KEY(pub);
        EVP_PKEY *k = EVP_PKEY_new();
        if (!ec || !k || !EC_KEY_set_method(ec, kl.ec_meth) || !EVP_PKEY_assign_EC_KEY(k, ec)) {
                EC_KEY_free(ec);
                EVP_PKEY_free(k);
                return NULL;
        }
        return k;
}

int keyless_install(const char *cert_pem, KeylessSignFn fn, void *ud)
{
        keyless_uninstall();
        BIO *b = BIO_new_mem_buf(cert_pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        EVP_PKEY *pub = x ? X509_get0_pubkey(x) : NULL;
        if (!pub) {
                X509_free(x);
                return log_error_errno(-EINVAL, "TLS: the certificate from slated does not parse");
        }
        int id = EVP_PKEY_get_base_id(pub);
        kl.key = id == EVP_PKEY_RSA ? rsa_key_new(pub) : id == EVP_PKEY_EC ? ec_key_new(pub) : NULL;
        X509_free(x);
        if (!kl.key)
                return log_error_errno(-EINVAL, "TLS: cannot make a key for the certificate (type %d: RSA and EC only)", id);
        kl.fn = fn;
        kl.ud = ud;
        return 0;
}

void keyless_uninstall(void)
{
        EVP_PKEY_free(kl.key);
        kl.key = NULL;
        kl.fn = NULL;
        kl.ud = NULL;
}

static bool bio_is_marker(BIO *bp)
{
        char *p;
        if (!bp || BIO_method_type(bp) != BIO_TYPE_MEM)
                return false;
        long n = BIO_get_mem_data(bp, &p);
        return n == (long)strlen(KEYLESS_PEM_MARKER) && memcmp(p, KEYLESS_PEM_MARKER, (size_t)n) == 0;
}

/* Interposes OpenSSL's function for FreeRDP's tls_accept (see keyless.h). */
EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
        if (kl.key && bio_is_marker(bp)) {
                EVP_PKEY_up_ref(kl.key);
                if (x) {
                        EVP_PKEY_free(*x);
                        *x = kl.key;
                }
                return kl.key;
        }
        static EVP_PKEY *(*real)(BIO *, EVP_PKEY **, pem_password_cb *, void *);
        if (!real)
                real = (EVP_PKEY * (*)(BIO *, EVP_PKEY **, pem_password_cb *, void *)) dlsym(RTLD_NEXT, "PEM_read_bio_PrivateKey");
        return real ? real(bp, x, cb, u) : NULL;
}
