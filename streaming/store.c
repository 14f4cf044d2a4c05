/* The block store (store.h): keys, the chunk index, packs and backup (versions are
 * store_versions.c, restore store_restore.c, maintenance store_maint.c). The formats themselves are pack.c's. */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zstd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "streaming/pack.h"
#include "streaming/profile.h"
#include "streaming/store.h"
#include "streaming/store_int.h"

const uint8_t store_zero_id[ID_LEN];

/* ---- keys and chunks ---- */

static int mac_ctx(const uint8_t key[32], EVP_MAC_CTX **ret)
{
        EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
        EVP_MAC_free(m);
        OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                                OSSL_PARAM_construct_end() };
        if (!c || EVP_MAC_init(c, key, 32, params) != 1) {
                EVP_MAC_CTX_free(c);
                return -EIO;
        }
        *ret = c;
        return 0;
}

static int hmac_with(EVP_MAC_CTX *keyed, const void *data, size_t len, uint8_t out[ID_LEN])
{
        EVP_MAC_CTX *c = EVP_MAC_CTX_dup(keyed);
        size_t n = 0;
        int ok = c && EVP_MAC_update(c, data, len) == 1 && EVP_MAC_final(c, out, &n, ID_LEN) == 1 && n == ID_LEN;
        EVP_MAC_CTX_free(c);
        return ok ? 0 : -EIO;
}

int store_hmac(const uint8_t key[32], const void *data, size_t len, uint8_t out[ID_LEN])
{
        EVP_MAC_CTX *c;
        int r = mac_ctx(key, &c);
        if (r == 0)
                r = hmac_with(c, data, len, out);
        EVP_MAC_CTX_free(c);
        return r;
}

static int chunk_id(Store *s, const void *data, size_t len, uint8_t id[ID_LEN])
{
        return hmac_with(s->id_mac, data, len, id);
}

/* codec byte + payload, encrypted in place into out (len + 1 + TAG_LEN bytes at most). */
static int seal(Store *s, const uint8_t id[ID_LEN], const void *plain, size_t len, uint8_t *out, uint32_t *ret_len)
{
        uint8_t buf[1 + PLAIN_MAX];
        size_t z = ZSTD_compressCCtx(s->zc, buf + 1, sizeof buf - 1, plain, len, 1);
        if (!ZSTD_isError(z) && z < len) {
                buf[0] = CODEC_ZSTD;
        } else {
                buf[0] = CODEC_RAW;
                memcpy(buf + 1, plain, len);
                z = len;
        }
        int n = 0, m = 0;
        EVP_CIPHER_CTX *c = s->cipher;
        if (EVP_EncryptInit_ex(c, NULL, NULL, s->k_enc, id) != 1 || EVP_EncryptUpdate(c, NULL, &n, id, ID_LEN) != 1 ||
            EVP_EncryptUpdate(c, out, &n, buf, (int)(z + 1)) != 1 || EVP_EncryptFinal_ex(c, out + n, &m) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + n + m) != 1)
                return -EIO;
        *ret_len = (uint32_t)(n + m + TAG_LEN);
        return 0;
}

/* The plaintext of a sealed chunk: -EBADMSG when it does not open (a damaged or substituted
 * chunk: the tag covers the id) or, with verify, is not what its id says (a store's own fault:
 * only the key's holder seals, so a restore may trust the tag and skip this). */
int store_unseal(Store *s, const uint8_t id[ID_LEN], const uint8_t *sealed, uint32_t len, uint8_t *plain,
                  size_t cap, bool verify, size_t *ret_len)
{
        uint8_t buf[1 + PLAIN_MAX];
        if (len < 1 + TAG_LEN || len - TAG_LEN > sizeof buf)
                return -EBADMSG;
        int n = 0, m = 0;
        EVP_CIPHER_CTX *c = s->cipher;
        if (EVP_DecryptInit_ex(c, NULL, NULL, s->k_enc, id) != 1 || EVP_DecryptUpdate(c, NULL, &n, id, ID_LEN) != 1 ||
            EVP_DecryptUpdate(c, buf, &n, sealed, (int)(len - TAG_LEN)) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(sealed + len - TAG_LEN)) != 1 ||
            EVP_DecryptFinal_ex(c, buf + n, &m) != 1)
                return -EBADMSG;
        size_t got = (size_t)(n + m);
        size_t out;
        if (buf[0] == CODEC_RAW && got - 1 <= cap) {
                memcpy(plain, buf + 1, got - 1);
                out = got - 1;
        } else if (buf[0] == CODEC_ZSTD) {
                out = ZSTD_decompressDCtx(s->zd, plain, cap, buf + 1, got - 1);
                if (ZSTD_isError(out))
                        return -EBADMSG;
        } else {
                return -EBADMSG;
        }
        uint8_t check[ID_LEN];
        if (verify && (chunk_id(s, plain, out, check) < 0 || memcmp(check, id, ID_LEN) != 0))
                return -EBADMSG;
        *ret_len = out;
        return 0;
}

/* ---- the index: open addressing on the id's first 8 bytes (ids are uniform) ---- */

static size_t slot_of(const uint8_t id[ID_LEN], size_t cap)
{
        uint64_t h;
        memcpy(&h, id, sizeof h);
        return (size_t)h & (cap - 1);
}

Loc *store_index_find(Store *s, const uint8_t id[ID_LEN])
{
        if (!s->cap_locs)
                return NULL;
        for (size_t i = slot_of(id, s->cap_locs);; i = (i + 1) & (s->cap_locs - 1)) {
                Loc *l = &s->locs[i];
                if (l->pack == 0)
                        return NULL;
                if (memcmp(l->id, id, ID_LEN) == 0)
                        return l;
        }
}

static void index_put(Store *s, const uint8_t id[ID_LEN], uint32_t pack, uint32_t entry);

static void index_grow(Store *s)
{
        Loc *old = s->locs;
        size_t old_cap = s->cap_locs;
        s->cap_locs = old_cap ? old_cap * 2 : 4096;
        s->locs = xmalloc0(sizeof *s->locs * s->cap_locs);
        s->n_locs = 0;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i].pack)
                        index_put(s, old[i].id, old[i].pack, old[i].entry);
        free(old);
}

static void index_put(Store *s, const uint8_t id[ID_LEN], uint32_t pack, uint32_t entry)
{
        if ((s->n_locs + 1) * 2 > s->cap_locs)
                index_grow(s);
        size_t i = slot_of(id, s->cap_locs);
        while (s->locs[i].pack) {
                if (memcmp(s->locs[i].id, id, ID_LEN) == 0)
                        return; /* the same chunk twice: the first one serves */
                i = (i + 1) & (s->cap_locs - 1);
        }
        Loc *l = &s->locs[i];
        memcpy(l->id, id, ID_LEN);
        l->pack = pack;
        l->entry = entry;
        s->n_locs++;
}

/* ---- packs ---- */

char *store_pack_path(Store *s, uint32_t no) { return xasprintf("%s/packs/%08x.pack", s->dir, no); }

int store_pack_mac(Store *s, uint32_t no, const uint8_t *index, size_t len, uint8_t mac[PACK_MAC_LEN])
{
        EVP_MAC_CTX *c;
        uint8_t be[4] = { no >> 24, no >> 16, no >> 8, no };
        size_t n = 0;
        if (mac_ctx(s->k_mac, &c) < 0)
                return -EIO;
        int ok = EVP_MAC_update(c, (const uint8_t *)PACK_INDEX_MAGIC, PACK_MAGIC_LEN) == 1 && EVP_MAC_update(c, be, 4) == 1 && EVP_MAC_update(c, index, len) == 1 &&
                 EVP_MAC_final(c, mac, &n, PACK_MAC_LEN) == 1 && n == PACK_MAC_LEN;
        EVP_MAC_CTX_free(c);
        return ok ? 0 : -EIO;
}

static Pack *pack_slot(Store *s, uint32_t no)
{
        if (no >= s->n_packs) {
                s->packs = xrealloc(s->packs, sizeof *s->packs * (no + 1));
                for (size_t i = s->n_packs; i <= no; i++)
                        s->packs[i] = (Pack){ .fd = -1 };
                s->n_packs = no + 1;
        }
        return &s->packs[no];
}

/* Reads a pack's index (its MAC checked) into the store's index. A pack that does not parse or
 * authenticate is counted, not used. */
static int pack_load(Store *s, uint32_t no)
{
        _cleanup_free_ char *path = store_pack_path(s, no);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        uint8_t tail[PACK_TAIL_LEN], mac[PACK_MAC_LEN];
        const uint8_t *want;
        uint64_t index_off;
        uint32_t count;
        if ((uint64_t)st.st_size < PACK_TAIL_LEN ||
            pread(fd, tail, sizeof tail, st.st_size - PACK_TAIL_LEN) != (ssize_t)sizeof tail ||
            pack_tail_parse(tail, sizeof tail, (uint64_t)st.st_size, &index_off, &count, &want) < 0)
                return -EBADMSG;
        size_t len = (size_t)count * PACK_ENTRY_LEN + 12;      /* the entries, count and offset */
        _cleanup_free_ uint8_t *buf = xmalloc0(len);
        PackEntry *e = NULL;
        if (pread(fd, buf, len, (off_t)index_off) != (ssize_t)len || store_pack_mac(s, no, buf, len, mac) < 0 ||
            CRYPTO_memcmp(mac, want, PACK_MAC_LEN) != 0 || pack_index_parse(buf, len - 12, index_off, count, &e) < 0)
                return -EBADMSG;
        Pack *p = pack_slot(s, no);
        *p = (Pack){ .name = xasprintf("%08x.pack", no), .fd = -1, .size = (uint64_t)st.st_size, .e = e, .n = count };
        for (uint32_t i = 0; i < count; i++)
                if (e[i].len) {
                        index_put(s, e[i].id, no, i);
                        p->live++;
                }
        return 0;
}

static void pending_start(Store *s)
{
        writer_free(&s->pending);
        writer_init(&s->pending, PACK_MAX);
        writer_bytes(&s->pending, PACK_MAGIC, PACK_MAGIC_LEN);
        s->n_pending = 0;
        s->pending_no = (uint32_t)(s->n_packs ? s->n_packs : 1);
}

void store_pending_abort(Store *s)
{
        if (s->n_pending)
                store_reload(s);
        pending_start(s);
}

int store_fsync_dir(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 || fsync(fd) < 0 ? -errno : 0;
}

/* Writes the pending records as a pack (tmp, fsync, rename, fsync the dir). Its entries are in
 * the index already. */
int store_pending_commit(Store *s, char **ret_error)
{
        if (s->n_pending == 0)
                return 0;
        uint64_t index_off = s->pending.len;
        pack_index_write(&s->pending, s->pending_e, (uint32_t)s->n_pending, index_off);
        uint8_t mac[PACK_MAC_LEN];
        if (s->pending.error ||
            store_pack_mac(s, s->pending_no, s->pending.data + index_off, s->pending.len - index_off, mac) < 0) {
                *ret_error = xasprintf(s->pending.error ? "pack too large" : "pack MAC failed");
                return -EFBIG;
        }
        pack_tail_finish(&s->pending, mac);
        _cleanup_free_ char *path = store_pack_path(s, s->pending_no), *dir = xasprintf("%s/packs", s->dir);
        int r = s->pending.error ? -EFBIG : write_file_atomic(path, s->pending.data, s->pending.len, 0600);
        if (r == 0)
                r = store_fsync_dir(dir);
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
                return r;
        }
        Pack *p = pack_slot(s, s->pending_no);
        PackEntry *e = xmalloc0(sizeof *e * s->n_pending);
        memcpy(e, s->pending_e, sizeof *e * s->n_pending);
        *p = (Pack){ .name = xasprintf("%08x.pack", s->pending_no), .fd = -1, .size = s->pending.len,
                     .e = e, .n = (uint32_t)s->n_pending,
                     .live = (uint32_t)s->n_pending };
        pending_start(s);
        if (s->crash)
                s->crash(s->crash_ud, "pack-committed");
        return 0;
}

/* Seals plain as chunk id into the pack being filled (closing it when full), indexed at once.
 * *added: its bytes; *ret: where it is. */
static int pending_append(Store *s, const uint8_t id[ID_LEN], const void *plain, size_t len, uint64_t *added,
                          Loc *ret, char **ret_error)
{
        uint8_t sealed[1 + PLAIN_MAX + TAG_LEN];
        uint32_t n;
        if (seal(s, id, plain, len, sealed, &n) < 0) {
                *ret_error = xstrdup("encryption failed");
                return -EIO;
        }
        if (s->n_pending == s->cap_pending) {
                s->cap_pending = s->cap_pending ? s->cap_pending * 2 : 1024;
                s->pending_e = xrealloc(s->pending_e, sizeof *s->pending_e * s->cap_pending);
        }
        uint32_t entry = (uint32_t)s->n_pending;
        PackEntry *e = &s->pending_e[s->n_pending++];
        memcpy(e->id, id, ID_LEN);
        e->offset = s->pending.len;
        e->len = n;
        pack_record_write(&s->pending, id, sealed, n);
        index_put(s, id, s->pending_no, entry);
        if (ret) {
                memcpy(ret->id, id, ID_LEN);
                ret->pack = s->pending_no;
                ret->entry = entry;
        }
        *added = PACK_RECORD_HEADER + n + PACK_ENTRY_LEN;
        /* The index counts too (44 bytes an entry): well-compressed blocks make many entries. */
        return s->pending.len + s->n_pending * PACK_ENTRY_LEN >= PACK_BYTES ? store_pending_commit(s, ret_error) : 0;
}

int store_chunk_put(Store *s, const uint8_t id[ID_LEN], const void *plain, size_t len, uint64_t *added, Loc *ret,
                    char **ret_error)
{
        *added = 0;
        Loc *l = store_index_find(s, id);
        if (l) {
                if (ret)
                        *ret = *l;
                return 0;
        }
        return pending_append(s, id, plain, len, added, ret, ret_error);
}

const PackEntry *store_entry(Store *s, uint32_t pack, uint32_t entry)
{
        if (pack == s->pending_no && entry < s->n_pending)
                return &s->pending_e[entry];
        if (pack == 0 || pack >= s->n_packs || !s->packs[pack].name || entry >= s->packs[pack].n ||
            s->packs[pack].e[entry].len == 0)
                return NULL;
        return &s->packs[pack].e[entry];
}

int store_pack_fd(Store *s, uint32_t pack)
{
        Pack *p = &s->packs[pack];
        if (p->fd < 0) {
                _cleanup_free_ char *path = store_pack_path(s, pack);
                p->fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        return p->fd < 0 ? -errno : p->fd;
}

int store_chunk_read(Store *s, uint32_t pack, uint32_t entry, uint8_t *plain, size_t cap, size_t *ret_len)
{
        const PackEntry *e = store_entry(s, pack, entry);
        if (!e)
                return -ENOENT;
        uint8_t rec[PACK_RECORD_HEADER + PACK_SEALED_MAX];
        size_t n = PACK_RECORD_HEADER + e->len;
        if (pack == s->pending_no) {
                memcpy(rec, s->pending.data + e->offset, n);
        } else {
                int fd = store_pack_fd(s, pack);
                if (fd < 0)
                        return fd;
                if (pread(fd, rec, n, (off_t)e->offset) != (ssize_t)n)
                        return -EBADMSG;
        }
        if (pack_record_check(rec, n, e) < 0)
                return -EBADMSG;
        return store_unseal(s, e->id, rec + PACK_RECORD_HEADER, e->len, plain, cap, true, ret_len);
}

int store_chunk_get(Store *s, const uint8_t id[ID_LEN], uint8_t *plain, size_t cap, size_t *ret_len)
{
        Loc *l = store_index_find(s, id);
        return l ? store_chunk_read(s, l->pack, l->entry, plain, cap, ret_len) : -ENOENT;
}

int store_map_get(Store *s, const uint8_t id[ID_LEN], uint32_t blocks, MapRun **ret, size_t *ret_n)
{
        uint8_t plain[MAP_PLAIN_MAX];
        size_t got;
        int r = store_chunk_get(s, id, plain, sizeof plain, &got);
        if (r < 0)
                return r;
        return map_parse(plain, got, blocks, ret, ret_n);
}

/* The chunks the packs hold, from their tails: the index is sized once (growing it by doubling
 * cost most of an open of a large store). */
static uint64_t packs_count(const char *packs)
{
        DIR *d = opendir(packs);
        struct dirent *de;
        uint64_t total = 0;
        uint32_t no;
        while (d && (de = readdir(d))) {
                if (!pack_name_parse(de->d_name, &no))
                        continue;
                _cleanup_free_ char *path = xasprintf("%s/%s", packs, de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                struct stat st;
                uint8_t tail[PACK_TAIL_LEN];
                const uint8_t *mac;
                uint64_t off;
                uint32_t count;
                if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size >= PACK_TAIL_LEN &&
                    pread(fd, tail, sizeof tail, st.st_size - PACK_TAIL_LEN) == (ssize_t)sizeof tail &&
                    pack_tail_parse(tail, sizeof tail, (uint64_t)st.st_size, &off, &count, &mac) == 0)
                        total += count;
        }
        if (d)
                closedir(d);
        return total;
}

static int store_load_packs(Store *s)
{
        _cleanup_free_ char *packs = xasprintf("%s/packs", s->dir);
        uint64_t want = packs_count(packs);
        if ((want + 1024) * 2 > s->cap_locs) {       /* empty now: sized at once */
                size_t cap = 4096;
                while ((want + 1024) * 2 > cap)
                        cap *= 2;
                free(s->locs);
                s->locs = xmalloc0(sizeof *s->locs * cap);
                s->cap_locs = cap;
                s->n_locs = 0;
        }
        DIR *d = opendir(packs);
        if (!d)
                return -errno;
        struct dirent *de;
        uint32_t no;
        while ((de = readdir(d))) {
                if (!pack_name_parse(de->d_name, &no))
                        continue;
                if (pack_load(s, no) < 0) {
                        s->bad_packs++;
                        pack_slot(s, no);       /* its number stays taken */
                }
        }
        closedir(d);
        return 0;
}

static void packs_free(Store *s)
{
        for (size_t i = 0; i < s->n_packs; i++) {
                if (s->packs[i].fd >= 0)
                        close(s->packs[i].fd);
                free(s->packs[i].name);
                free(s->packs[i].e);
        }
        free(s->packs);
        s->packs = NULL;
        s->n_packs = 0;
}

int store_reload(Store *s)
{
        packs_free(s);
        s->bad_packs = 0;
        free(s->locs);
        s->locs = NULL;
        s->n_locs = s->cap_locs = 0;
        index_grow(s);
        int r = store_load_packs(s);
        pending_start(s);
        return r;
}

/* ---- open, close ---- */

static int store_keys(Store *s, const uint8_t host[32], bool create, char **ret_error)
{
        _cleanup_free_ char *path = xasprintf("%s/" KEY_FILE, s->dir);
        _cleanup_free_ char *wrapped = NULL;
        size_t len;
        uint8_t master[32];
        int r = read_file_max(path, PROFILE_WRAPPED_MAX, &wrapped, &len);
        if (r == -ENOENT && create) {
                random_bytes(master, sizeof master);
                _cleanup_free_ char *w = profile_key_wrap(host, KEY_USER, master);
                r = write_file_atomic(path, w, strlen(w), 0600);
                if (r < 0) {
                        *ret_error = xasprintf("%s: %s", path, strerror(-r));
                        return r;
                }
        } else if (r < 0) {
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
                return r;
        } else {
                wrapped[strcspn(wrapped, "\n")] = 0;
                if (profile_key_unwrap(host, KEY_USER, wrapped, master) < 0) {
                        *ret_error = xasprintf("%s does not open with this host key", path);
                        return -EBADMSG;
                }
        }
        r = store_hmac(master, "slate-store-id", 14, s->k_id);
        if (r == 0)
                r = store_hmac(master, "slate-store-enc", 15, s->k_enc);
        if (r == 0)
                r = store_hmac(master, "slate-store-version", 19, s->k_mac);
        if (r == 0)
                r = mac_ctx(s->k_id, &s->id_mac);
        secret_wipe(master, sizeof master);
        if (r < 0)
                *ret_error = xstrdup("key derivation failed");
        return r;
}

int store_rewrap_key(const char *dir, const uint8_t old_host[STORE_HOST_KEY_LEN],
                     const uint8_t new_host[STORE_HOST_KEY_LEN], char **ret_error)
{
        *ret_error = NULL;
        _cleanup_free_ char *path = xasprintf("%s/" KEY_FILE, dir);
        _cleanup_free_ char *wrapped = NULL;
        size_t len;
        int r = read_file_max(path, PROFILE_WRAPPED_MAX, &wrapped, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
                return r;
        }
        wrapped[strcspn(wrapped, "\n")] = 0;
        uint8_t master[32];
        if (profile_key_unwrap(old_host, KEY_USER, wrapped, master) < 0 &&
            profile_key_unwrap(new_host, KEY_USER, wrapped, master) < 0) {
                *ret_error = xasprintf("%s opens with neither host key", path);
                return -EBADMSG;
        }
        _cleanup_free_ char *w = profile_key_wrap(new_host, KEY_USER, master);
        secret_wipe(master, sizeof master);
        r = write_file_atomic(path, w, strlen(w), 0600);
        if (r < 0)
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
        return r;
}

/* DIR/store-id: which store this is (a replica has its source's). Made with the key. */
static int store_id_load(Store *s, bool create, char **ret_error)
{
        _cleanup_free_ char *path = xasprintf("%s/" STORE_ID_FILE, s->dir);
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_max(path, 64, &data, &len);
        if (r == -ENOENT && create) {
                uint8_t rnd[16];
                random_bytes(rnd, sizeof rnd);
                for (int i = 0; i < 16; i++)
                        snprintf(s->store_id + 2 * i, 3, "%02x", rnd[i]);
                char line[34];
                snprintf(line, sizeof line, "%s\n", s->store_id);
                r = write_file_atomic(path, line, strlen(line), 0600);
        } else if (r == 0) {
                data[strcspn(data, "\n")] = 0;
                if (strlen(data) != 32 || strspn(data, "0123456789abcdef") != 32)
                        r = -EBADMSG;
                else
                        memcpy(s->store_id, data, 33);
        }
        if (r < 0)
                *ret_error = xasprintf("%s: %s", path, r == -EBADMSG ? "not a store id" : strerror(-r));
        return r;
}

int store_open(const char *dir, const uint8_t host_key[STORE_HOST_KEY_LEN], bool create, Store **ret,
               char **ret_error)
{
        *ret_error = NULL;
        Store *s = xmalloc0(sizeof *s);
        s->dir = xstrdup(dir);
        s->map_blocks = STORE_MAP_BLOCKS;
        _cleanup_free_ char *packs = xasprintf("%s/packs", dir), *versions = xasprintf("%s/versions", dir);
        int r = 0;
        if (create && ((r = mkdir_p(dir, 0700)) < 0 || (r = mkdir_p(packs, 0700)) < 0 ||
                       (r = mkdir_p(versions, 0700)) < 0)) {
                *ret_error = xasprintf("%s: %s", dir, strerror(-r));
                goto fail;
        }
        if ((r = store_keys(s, host_key, create, ret_error)) < 0 || (r = store_id_load(s, create, ret_error)) < 0)
                goto fail;
        s->cipher = EVP_CIPHER_CTX_new();
        s->zc = ZSTD_createCCtx();
        s->zd = ZSTD_createDCtx();
        if (!s->cipher || EVP_CipherInit_ex(s->cipher, EVP_aes_256_gcm(), NULL, NULL, NULL, 1) != 1 ||
            EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 || !s->zc || !s->zd) {
                *ret_error = xstrdup("crypto or zstd setup failed");
                r = -EIO;
                goto fail;
        }
        index_grow(s);
        if ((r = store_load_packs(s)) < 0) {
                *ret_error = xasprintf("%s: %s", packs, strerror(-r));
                goto fail;
        }
        pending_start(s);
        *ret = s;
        return 0;
fail:
        store_close(s);
        return r;
}

void store_close(Store *s)
{
        if (!s)
                return;
        packs_free(s);
        free(s->locs);
        free(s->pending_e);
        writer_free(&s->pending);
        EVP_MAC_CTX_free(s->id_mac);
        EVP_CIPHER_CTX_free(s->cipher);
        ZSTD_freeCCtx(s->zc);
        ZSTD_freeDCtx(s->zd);
        secret_wipe(s->k_id, sizeof s->k_id);
        secret_wipe(s->k_enc, sizeof s->k_enc);
        secret_wipe(s->k_mac, sizeof s->k_mac);
        free(s->sftp);
        free(s->ssh_config);
        free(s->dir);
        free(s);
}

void store_set_progress(Store *s, StoreProgressFn fn, void *userdata)
{
        s->progress = fn;
        s->progress_ud = userdata;
}

/* At most every 1/64 of the work (and at its end): a terminal or an event stream keeps up. */
void store_progress(Store *s, const char *op, uint64_t done, uint64_t total)
{
        if (!s->progress)
                return;
        if (done == 0)
                s->progress_next = 0;
        if (done == total || done >= s->progress_next) {
                s->progress(s->progress_ud, op, done, total);
                s->progress_next = done + total / 64;
        }
}

int store_set_map_blocks(Store *s, unsigned n)
{
        if (n < 64 || n > STORE_MAP_BLOCKS_MAX || (n & (n - 1)))
                return -EINVAL;
        s->map_blocks = n;
        return 0;
}

void store_usage(Store *s, StoreUsage *ret)
{
        *ret = (StoreUsage){ .chunks = s->n_locs };
        for (size_t i = 0; i < s->n_packs; i++)
                if (s->packs[i].name) {
                        ret->packs++;
                        ret->stored_bytes += s->packs[i].size;
                }
}

/* ---- backup ---- */

static bool is_zero(const uint8_t *p, size_t n)
{
        return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* One block: where it is stored (pack 0: zeros), stored now unless known or zero. */
static int block_put(Store *s, const uint8_t *block, Loc *at, StoreStats *st, char **ret_error)
{
        st->blocks_read++;
        if (is_zero(block, STORE_BLOCK)) {
                at->pack = at->entry = 0;
                st->zero_blocks++;
                return 0;
        }
        uint8_t id[ID_LEN];
        if (chunk_id(s, block, STORE_BLOCK, id) < 0) {
                *ret_error = xstrdup("hashing failed");
                return -EIO;
        }
        uint64_t added;
        int r = store_chunk_put(s, id, block, STORE_BLOCK, &added, at, ret_error);
        if (r == 0 && added) {
                st->new_chunks++;
                st->new_bytes += added;
        } else if (r == 0) {
                st->dup_blocks++;
        }
        return r;
}

static bool bit(const uint8_t *bits, uint64_t b) { return bits[b / 8] & (1u << (b % 8)); }

static bool dirty_any(const uint8_t *bits, uint64_t first, uint64_t n)
{
        for (uint64_t b = first; b < first + n; b++)
                if (bit(bits, b))
                        return true;
        return false;
}

/* A map's blocks one by one (pack 0: zeros) into at[0 .. blocks). */
static void map_expand(const MapRun *runs, size_t n, Loc *at)
{
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < runs[i].blocks; j++, k++) {
                        at[k].pack = runs[i].pack;
                        at[k].entry = runs[i].pack ? runs[i].entry + j : 0;
                }
}

/* The runs of at[0 .. blocks): consecutive entries of one pack, or zeros, make one run. */
static size_t map_runs(const Loc *at, uint32_t blocks, MapRun *runs)
{
        size_t n = 0;
        for (uint32_t i = 0; i < blocks; i++) {
                MapRun *last = n ? &runs[n - 1] : NULL;
                if (last && last->pack == at[i].pack &&
                    (at[i].pack == 0 || last->entry + last->blocks == at[i].entry)) {
                        last->blocks++;
                        continue;
                }
                runs[n++] = (MapRun){ .blocks = 1, .pack = at[i].pack, .entry = at[i].pack ? at[i].entry : 0 };
        }
        return n;
}

int store_backup(Store *s, const char *name, uint64_t disk_size, StoreReadFn rd, void *ud, int parent,
                 const StoreExtent *dirty, size_t n_dirty, StoreStats *st, int *ret_version, char **ret_error)
{
        *ret_error = NULL;
        *st = (StoreStats){ 0 };
        if (!store_name_ok(name) || disk_size == 0 || disk_size % STORE_BLOCK) {
                *ret_error = xasprintf("backup of \"%s\": a name and a size in whole 4 KiB blocks", name ? name : "");
                return -EINVAL;
        }
        uint64_t n_blocks = disk_size / STORE_BLOCK;
        const uint64_t mb = s->map_blocks;
        uint64_t n_maps64 = (n_blocks + mb - 1) / mb;
        if (n_maps64 > VERSION_MAPS_MAX) {
                *ret_error = xstrdup("disk too large");
                return -EFBIG;
        }
        uint32_t n_maps = (uint32_t)n_maps64;
        _cleanup_free_ uint8_t *pbuf = NULL;
        VersionHeader ph = { 0 };
        if (parent > 0) {
                int r = store_version_load(s, name, parent, &pbuf, &ph);
                if (r < 0 || ph.disk_size != disk_size) {
                        *ret_error = xasprintf("%s: parent version %d %s", name, parent,
                                               r < 0 ? "cannot be read" : "has another size");
                        return r < 0 ? r : -EINVAL;
                }
                /* Maps of another size cannot be reused: a full read (still stores nothing twice). */
                if (ph.map_blocks != mb)
                        parent = 0;
        }
        /* With a parent: the dirty extents. Without one but with extents: the only blocks that may
         * hold data (a sparse disk's allocation); the rest is zeros, not read. */
        bool use_bits = parent > 0 || (dirty && n_dirty > 0);
        _cleanup_free_ uint8_t *bits = NULL;
        uint64_t to_read = n_blocks;
        if (use_bits) {
                bits = xmalloc0((size_t)(n_blocks + 7) / 8);
                for (size_t i = 0; i < n_dirty; i++) {
                        if (dirty[i].length == 0)
                                continue;
                        uint64_t a = dirty[i].offset / STORE_BLOCK;
                        uint64_t e = (dirty[i].offset + dirty[i].length + STORE_BLOCK - 1) / STORE_BLOCK;
                        for (uint64_t b = a; b < e && b < n_blocks; b++)
                                bits[b / 8] |= (uint8_t)(1u << (b % 8));
                }
                to_read = 0;
                for (uint64_t b = 0; b < n_blocks; b++)
                        to_read += bit(bits, b);
        }
        _cleanup_free_ uint8_t *maps = xmalloc0((size_t)n_maps * ID_LEN);
        _cleanup_free_ uint8_t *region = xmalloc0((size_t)mb * STORE_BLOCK);
        _cleanup_free_ Loc *at = xmalloc0(sizeof *at * mb);
        _cleanup_free_ MapRun *runs = xmalloc0(sizeof *runs * mb);
        int r = 0;
        store_progress(s, "backup", 0, to_read * STORE_BLOCK);
        for (uint32_t m = 0; m < n_maps && r == 0; m++) {
                uint64_t first = (uint64_t)m * mb;
                uint32_t cnt = (uint32_t)MIN(mb, n_blocks - first);
                uint8_t *map_id = maps + (size_t)m * ID_LEN;
                if (use_bits && !dirty_any(bits, first, cnt)) {
                        if (parent > 0) {
                                memcpy(map_id, ph.maps + (size_t)m * ID_LEN, ID_LEN);
                                st->maps_reused++;
                        } else {
                                memset(map_id, 0, ID_LEN);
                                st->zero_blocks += cnt;
                        }
                        continue;
                }
                memset(at, 0, sizeof *at * mb);
                if (parent > 0 && memcmp(ph.maps + (size_t)m * ID_LEN, store_zero_id, ID_LEN) != 0) {
                        MapRun *pr;
                        size_t pn;
                        if ((r = store_map_get(s, ph.maps + (size_t)m * ID_LEN, cnt, &pr, &pn)) < 0) {
                                *ret_error = xasprintf("%s: map %u of version %d is missing or damaged", name, m, parent);
                                break;
                        }
                        map_expand(pr, pn, at);
                        free(pr);
                }
                /* Runs of blocks to read: all of them, or the dirty ones. */
                for (uint64_t b = 0; b < cnt && r == 0;) {
                        if (use_bits && !bit(bits, first + b)) {
                                b++;
                                continue;
                        }
                        uint64_t e = b + 1;
                        while (e < cnt && (!use_bits || bit(bits, first + e)))
                                e++;
                        r = rd(ud, (first + b) * STORE_BLOCK, region, (size_t)(e - b) * STORE_BLOCK);
                        if (r < 0) {
                                *ret_error = xasprintf("%s: reading the disk at %llu: %s", name,
                                                       (unsigned long long)((first + b) * STORE_BLOCK), strerror(-r));
                                break;
                        }
                        for (uint64_t i = b; i < e && r == 0; i++)
                                r = block_put(s, region + (size_t)(i - b) * STORE_BLOCK, &at[i], st, ret_error);
                        b = e;
                        store_progress(s, "backup", st->blocks_read * STORE_BLOCK, to_read * STORE_BLOCK);
                }
                if (r < 0)
                        break;
                size_t nr = map_runs(at, cnt, runs);
                if (nr == 1 && runs[0].pack == 0) {
                        memset(map_id, 0, ID_LEN);
                        continue;
                }
                Writer w;
                writer_init(&w, MAP_PLAIN_MAX);
                map_write(&w, runs, nr);
                uint64_t added;
                if (w.error)
                        r = -EFBIG;
                if (r == 0 && (r = chunk_id(s, w.data, w.len, map_id)) == 0)
                        r = store_chunk_put(s, map_id, w.data, w.len, &added, NULL, ret_error);
                writer_free(&w);
                if (r < 0)
                        break;
                if (added) {
                        st->new_chunks++;
                        st->new_bytes += added;
                }
        }
        if (r == 0)
                r = store_pending_commit(s, ret_error);
        if (r < 0) {
                store_pending_abort(s);
                if (!*ret_error)
                        *ret_error = xstrdup(strerror(-r));
                return r;
        }
        int *vs;
        size_t nv;
        store_versions(s, name, &vs, &nv);
        int v = nv ? vs[nv - 1] + 1 : 1;
        free(vs);
        r = store_version_store(s, name, v, disk_size, (unsigned)mb, maps, n_maps, ret_error);
        if (r == 0)
                *ret_version = v;
        return r;
}
