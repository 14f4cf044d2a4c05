/* The block store's insides, shared by store.c (keys, chunks, packs, backup), store_versions.c,
 * store_restore.c and store_maint.c (replication, prune, check). Nothing outside streaming/store*.c includes it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <zstd.h>
#include "common/reader.h"
#include "streaming/pack.h"
#include "streaming/store.h"

#define ID_LEN PACK_ID_LEN
#define MAP_PLAIN_MAX (MAP_BLOCKS_MAX * MAP_RUN_LEN)    /* the largest map's plaintext: 12 KiB */
#define PLAIN_MAX MAP_PLAIN_MAX
#define TAG_LEN 16
#define PACK_BYTES (32u << 20)                          /* a pack (records + index) is closed past this */
/* The most a pack can hold: it stays under PACK_BYTES until its last record, which adds at most
 * one record and one index entry, then the tail. */
#define PACK_MAX (PACK_BYTES + PACK_RECORD_HEADER + PACK_SEALED_MAX + PACK_ENTRY_LEN + PACK_TAIL_LEN)
#define KEY_FILE "key"
#define STORE_ID_FILE "store-id"                        /* 32 hex digits: which store a replica copies */
#define KEY_USER "@store"                               /* the wrap's associated data; no user name */
#define CODEC_RAW 0
#define CODEC_ZSTD 1

/* Where a chunk is: the index maps ids to it (for dedup), maps name blocks by it. */
typedef struct Loc {
        uint8_t id[ID_LEN];
        uint32_t pack;          /* its number; 0: slot free */
        uint32_t entry;
} Loc;

typedef struct Pack {
        char *name;             /* NULL: no such pack (never made, or a damaged one) */
        int fd;                 /* opened on first read */
        uint64_t size;
        PackEntry *e;
        uint32_t n, live;       /* entries, of which not pruned */
} Pack;

struct Store {
        char *dir;
        uint8_t k_id[32], k_enc[32], k_mac[32];
        char store_id[33];
        unsigned map_blocks;
        uint64_t fixed_time;            /* store_set_time */
        void (*crash)(void *userdata, const char *point);       /* store_set_crash_hook */
        void *crash_ud;
        StoreProgressFn progress;
        void *progress_ud;
        uint64_t progress_next;
        char *sftp, *ssh_config;        /* store_set_sftp */
        EVP_MAC_CTX *id_mac;    /* keyed once; dup'ed per chunk */
        EVP_CIPHER_CTX *cipher;
        ZSTD_CCtx *zc;
        ZSTD_DCtx *zd;
        Loc *locs;
        size_t n_locs, cap_locs;        /* cap: a power of two */
        Pack *packs;                    /* by number: packs[1 .. n_packs - 1] */
        size_t n_packs;
        uint64_t bad_packs;
        /* The pack being filled (number n_packs, or higher when a number is in the way): records
         * after the magic, and their entries, already in the index. */
        uint32_t pending_no;
        Writer pending;
        PackEntry *pending_e;
        size_t n_pending, cap_pending;
};

extern const uint8_t store_zero_id[ID_LEN];

int store_hmac(const uint8_t key[32], const void *data, size_t len, uint8_t out[ID_LEN]);
/* A sealed chunk's plaintext: -EBADMSG when it does not open (the tag covers the id) or, with
 * verify, is not what its id says. */
int store_unseal(Store *s, const uint8_t id[ID_LEN], const uint8_t *sealed, uint32_t len, uint8_t *plain,
                 size_t cap, bool verify, size_t *ret_len);
Loc *store_index_find(Store *s, const uint8_t id[ID_LEN]);
/* The entry at (pack, entry) if it holds a chunk (NULL: no such pack or entry, or pruned). */
const PackEntry *store_entry(Store *s, uint32_t pack, uint32_t entry);
/* The plaintext of the chunk at loc (or of chunk id, found in the index), checked against its id. */
int store_chunk_read(Store *s, uint32_t pack, uint32_t entry, uint8_t *plain, size_t cap, size_t *ret_len);
int store_chunk_get(Store *s, const uint8_t id[ID_LEN], uint8_t *plain, size_t cap, size_t *ret_len);
/* A map chunk, opened and parsed (*ret malloc'ed): -ENOENT, or -EBADMSG when damaged. */
int store_map_get(Store *s, const uint8_t id[ID_LEN], uint32_t blocks, MapRun **ret, size_t *ret_n);
/* Stores plain under id unless the store has it; where it is, in *ret (optional). */
int store_chunk_put(Store *s, const uint8_t id[ID_LEN], const void *plain, size_t len, uint64_t *added, Loc *ret,
                    char **ret_error);
int store_pending_commit(Store *s, char **ret_error);
/* Drops the pack being filled (a failed backup): the index again without its entries. */
void store_pending_abort(Store *s);
/* The index again from the pack files on disk. */
int store_reload(Store *s);
char *store_pack_path(Store *s, uint32_t no);
/* Pack no opened for reading (kept open): an fd or a negative errno. */
int store_pack_fd(Store *s, uint32_t no);
/* The MAC of a pack's index (its bytes up to the tail's MAC): number, then those bytes. */
int store_pack_mac(Store *s, uint32_t no, const uint8_t *index, size_t len, uint8_t mac[PACK_MAC_LEN]);
bool store_name_ok(const char *name);
char *store_version_path(Store *s, const char *name, int v);
int store_version_load(Store *s, const char *name, int v, uint8_t **buf, VersionHeader *h);
/* Writes version v of name (tmp, fsync, rename, the directory fsync'd): its maps' ids. */
int store_version_store(Store *s, const char *name, int v, uint64_t size, unsigned map_blocks, const uint8_t *maps,
                        uint32_t n_maps, char **ret_error);
int store_fsync_dir(const char *dir);
void store_progress(Store *s, const char *op, uint64_t done, uint64_t total);
