/* Checked signing for keyless TLS sessions (see keysign.h). The checks need no ASN.1 parser: a
 * DigestInfo is compared with the three fixed DER prefixes of RFC 8017 9.2, and a PSS block is
 * decoded with MGF1 written out here (OpenSSL's PKCS1_MGF1 is deprecated API). */
#include <errno.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "common/cleanup.h"
#include "common/keysign.h"
#include "common/util.h"

/* DER of DigestInfo { AlgorithmIdentifier { sha-2 OID, NULL }, OCTET STRING (hLen) }. */
static const struct {
        size_t hlen;
        uint8_t prefix[19];
} digest_infos[] = {
        { 32, { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20 } },
        { 48, { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30 } },
        { 64, { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40 } },
};

static const EVP_MD *sha2_of_len(size_t hlen)
{
        return hlen == 32 ? EVP_sha256() : hlen == 48 ? EVP_sha384() : hlen == 64 ? EVP_sha512() : NULL;
}

/* The digest inside a SHA-2 DigestInfo, or NULL. */
static const uint8_t *digest_info_digest(const uint8_t *in, size_t len, const EVP_MD **ret_md)
{
        for (size_t i = 0; i < ELEMENTSOF(digest_infos); i++)
                if (len == sizeof digest_infos[i].prefix + digest_infos[i].hlen &&
                    memcmp(in, digest_infos[i].prefix, sizeof digest_infos[i].prefix) == 0) {
                        *ret_md = sha2_of_len(digest_infos[i].hlen);
                        return in + sizeof digest_infos[i].prefix;
                }
        return NULL;
}

/* RFC 8017 B.2.1: mask[0..len) = Hash(seed || 0) || Hash(seed || 1) || ... */
static int mgf1(const EVP_MD *md, const uint8_t *seed, size_t seed_len, uint8_t *mask, size_t len)
{
        size_t hlen = (size_t)EVP_MD_get_size(md);
        uint8_t block[EVP_MAX_MD_SIZE];
        for (uint32_t c = 0, done = 0; done < len; c++) {
                uint8_t ctr[4] = { (uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8), (uint8_t)c };
                EVP_MD_CTX *h = EVP_MD_CTX_new();
                int ok = h && EVP_DigestInit_ex(h, md, NULL) && EVP_DigestUpdate(h, seed, seed_len) &&
                         EVP_DigestUpdate(h, ctr, sizeof ctr) && EVP_DigestFinal_ex(h, block, NULL);
                EVP_MD_CTX_free(h);
                if (!ok)
                        return -EIO;
                size_t take = MIN(hlen, len - done);
                memcpy(mask + done, block, take);
                done += (uint32_t)take;
        }
        return 0;
}

/* Whether em (emLen bytes, top bits already checked) decodes as EMSA-PSS with md, MGF1(md) and
 * a salt of hLen bytes: DB = PS (zeros) || 0x01 || salt, maskedDB = DB xor MGF1(H). */
static bool pss_decodes(const uint8_t *em, size_t em_len, unsigned top_bits, const EVP_MD *md)
{
        size_t hlen = (size_t)EVP_MD_get_size(md);
        if (em_len < 2 * hlen + 2)
                return false;
        size_t db_len = em_len - hlen - 1, ps_len = db_len - hlen - 1;
        uint8_t db[KEYSIGN_MAX];
        if (mgf1(md, em + db_len, hlen, db, db_len) < 0)
                return false;
        for (size_t i = 0; i < db_len; i++)
                db[i] ^= em[i];
        if (top_bits)
                db[0] &= (uint8_t)(0xff >> (8 - top_bits));
        for (size_t i = 0; i < ps_len; i++)
                if (db[i])
                        return false;
        return db[ps_len] == 0x01;
}

static int check_pss(EVP_PKEY *key, const uint8_t *in, size_t len)
{
        size_t k = (size_t)EVP_PKEY_get_size(key);
        int bits = EVP_PKEY_get_bits(key);
        if (len != k || bits < 1024)
                return -EINVAL;
        /* emBits = modBits - 1: a whole leading zero byte, or that many high bits clear. */
        unsigned top_bits = (unsigned)(bits - 1) & 7;
        const uint8_t *em = in;
        size_t em_len = len;
        if (top_bits == 0) {
                if (em[0] != 0)
                        return -EINVAL;
                em++;
                em_len--;
        } else if (em[0] & (uint8_t)(0xff << top_bits)) {
                return -EINVAL;
        }
        if (em[em_len - 1] != 0xbc)
                return -EINVAL;
        const EVP_MD *mds[] = { EVP_sha256(), EVP_sha384(), EVP_sha512() };
        for (size_t i = 0; i < ELEMENTSOF(mds); i++)
                if (pss_decodes(em, em_len, top_bits, mds[i]))
                        return 0;
        return -EINVAL;
}

int keysign_check(EVP_PKEY *key, uint8_t alg, const uint8_t *in, size_t len)
{
        const EVP_MD *md;
        if (!key || !in || len == 0 || len > KEYSIGN_MAX)
                return -EINVAL;
        bool rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA, ec = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
        switch (alg) {
        case KEYSIGN_RSA_PKCS1:
                return rsa && digest_info_digest(in, len, &md) ? 0 : -EINVAL;
        case KEYSIGN_RSA_PSS:
                return rsa ? check_pss(key, in, len) : -EINVAL;
        case KEYSIGN_ECDSA:
                return ec && sha2_of_len(len) ? 0 : -EINVAL;
        default:
                return -EINVAL;
        }
}

int keysign(EVP_PKEY *key, uint8_t alg, const uint8_t *in, size_t len, uint8_t *out, size_t *ret_len)
{
        int r = keysign_check(key, alg, in, len);
        if (r < 0)
                return r;
        if ((size_t)EVP_PKEY_get_size(key) > KEYSIGN_MAX)
                return -EINVAL;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
        if (!ctx || EVP_PKEY_sign_init(ctx) <= 0) {
                EVP_PKEY_CTX_free(ctx);
                return -EIO;
        }
        const EVP_MD *md = NULL;
        const uint8_t *tbs = in;
        size_t tbs_len = len;
        bool ok = true;
        if (alg == KEYSIGN_RSA_PKCS1) {
                /* Sign the digest with md set: OpenSSL writes the same DigestInfo itself. */
                tbs = digest_info_digest(in, len, &md);
                tbs_len = (size_t)EVP_MD_get_size(md);
                ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 && EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
        } else if (alg == KEYSIGN_RSA_PSS) {
                ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) > 0;
        }
        size_t n = KEYSIGN_MAX;
        ok = ok && EVP_PKEY_sign(ctx, out, &n, tbs, tbs_len) > 0;
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
                return -EIO;
        *ret_len = n;
        return 0;
}
