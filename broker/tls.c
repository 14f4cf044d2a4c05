/* Server certificate management with OpenSSL 3. Never logs key material; the private key file
 * is created 0600 and refused if group/other can read it. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/tls.h"
#include "common/log.h"
#include "common/util.h"

#define PEM_MAX (16u * 1024)
#define CERT_DAYS 3650

static int write_pem(const char *path, mode_t mode, int (*fn)(FILE *, void *), void *obj)
{
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return -errno;
        }
        int ok = fn(f, obj);
        if (fclose(f) != 0 || !ok || rename(tmp, path) < 0) {
                unlink(tmp);
                return -EIO;
        }
        return 0;
}

static int write_key(FILE *f, void *k) { return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL); }
static int write_cert(FILE *f, void *c) { return PEM_write_X509(f, c); }

static int tls_create(const char *cert_path, const char *key_path)
{
        char host[256] = "slate";
        gethostname(host, sizeof host - 1);
        EVP_PKEY *key = EVP_RSA_gen(2048);
        X509 *x = X509_new();
        int r = -EIO;
        if (!key || !x)
                goto out;
        uint8_t serial[8];
        random_bytes(serial, sizeof serial);
        serial[0] &= 0x7f;
        BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
        BN_free(bn);
        X509_set_version(x, 2);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Slate", -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "serverAuth");
        if (ext) {
                X509_add_ext(x, ext, -1);
                X509_EXTENSION_free(ext);
        }
        if (!X509_sign(x, key, EVP_sha256()))
                goto out;
        if ((r = write_pem(key_path, 0600, write_key, key)) < 0 || (r = write_pem(cert_path, 0644, write_cert, x)) < 0)
                goto out;
        log_info("TLS: created a self-signed certificate for %s (%s); replace it with one your clients trust", host,
                 cert_path);
        r = 0;
out:
        EVP_PKEY_free(key);
        X509_free(x);
        return r;
}

int tls_identity_load(const char *cert_path, const char *key_path, char **ret_cert, EVP_PKEY **ret_key)
{
        bool have_cert = access(cert_path, F_OK) == 0, have_key = access(key_path, F_OK) == 0;
        int r;
        if (!have_cert && !have_key) {
                _cleanup_free_ char *dir = xstrdup(key_path);
                char *slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                        *slash = 0;
                        mkdir_p(dir, 0700);
                }
                if ((r = tls_create(cert_path, key_path)) < 0)
                        return log_error_errno(r, "TLS: cannot create %s / %s", cert_path, key_path);
        } else if (!have_cert || !have_key) {
                return log_error_errno(-ENOENT, "TLS: %s exists but %s does not; provide both or neither",
                                       have_cert ? cert_path : key_path, have_cert ? key_path : cert_path);
        }
        struct stat st;
        if (stat(key_path, &st) < 0)
                return log_error_errno(-errno, "TLS: %s: %m", key_path);
        if (st.st_mode & 0077)
                return log_error_errno(-EPERM, "TLS: private key %s is readable by group or others (mode %o); "
                                       "chmod 600 it", key_path, st.st_mode & 0777);
        char *cert, *pem;
        if ((r = read_file_max(cert_path, PEM_MAX, &cert, NULL)) < 0)
                return log_error_errno(r, "TLS: %s: %s", cert_path, strerror(-r));
        size_t pem_len;
        if ((r = read_file_max(key_path, PEM_MAX, &pem, &pem_len)) < 0) {
                free(cert);
                return log_error_errno(r, "TLS: %s: %s", key_path, strerror(-r));
        }
        BIO *kb = BIO_new_mem_buf(pem, (int)pem_len), *cb = BIO_new_mem_buf(cert, -1);
        EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
        X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
        BIO_free(kb);
        BIO_free(cb);
        secret_wipe(pem, pem_len);
        free(pem);
        int id = key ? EVP_PKEY_get_base_id(key) : 0;
        r = !key ? log_error_errno(-EINVAL, "TLS: %s is not a PEM private key", key_path)
            : !x ? log_error_errno(-EINVAL, "TLS: %s is not a PEM certificate", cert_path)
            : id != EVP_PKEY_RSA && id != EVP_PKEY_EC
                    ? log_error_errno(-EINVAL, "TLS: %s: only RSA and EC keys are supported", key_path)
            : X509_check_private_key(x, key) != 1
                    ? log_error_errno(-EINVAL, "TLS: %s does not belong to %s", key_path, cert_path)
                    : 0;
        X509_free(x);
        if (r < 0) {
                EVP_PKEY_free(key);
                free(cert);
                return r;
        }
        *ret_cert = cert;
        *ret_key = key;
        return 0;
}

void tls_key_free(EVP_PKEY *key)
{
        EVP_PKEY_free(key);
}
