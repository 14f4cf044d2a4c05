/* The block store's insides, shared by store.c (keys, chunks, packs, versions, backup, restore)
 * and store_maint.c (replication, prune, check). Nothing outside streaming/store*.c includes it. */
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
#define MAP_BYTES (STORE_MAP_BLOCKS_MAX * ID_LEN)       /* the largest map chunk's plaintext: 32 KiB */
#define PLAIN_MAX MAP_BYTES
#define TAG_LEN 16
#define PACK_BYTES (32u << 20)                          /* a pack (records + index) is closed past this */
/* The most a pack can hold: it stays under PACK_BYTES until its last record, which adds at most
 * one record and one index entry, then the tail. */
#define PACK_MAX (PACK_BYTES + PACK_RECORD_HEADER + PACK_SEALED_MAX + PACK_ENTRY_LEN + PACK_TAIL_LEN)
#define KEY_FILE "key"
#define KEY_USER "@store"                               /* the wrap's associated data; no user name */
#define CODEC_RAW 0
#define CODEC_ZSTD 1

typedef struct Loc {
        uint8_t id[ID_LEN];
        uint32_t pack;          /* index into Store.packs; UINT32_MAX: slot free */
        uint32_t len;
        uint64_t off;
} Loc;

typedef struct Pack {
        char *name;             /* file name under packs/ */
        int fd;                 /* opened on first read */
        uint64_t size;
} Pack;

struct Store {
        char *dir;
        uint8_t k_id[32], k_enc[32], k_mac[32];
        unsigned map_blocks;
        uint64_t fixed_time;            /* store_set_time */
        void (*crash)(const char *point);       /* store_set_crash_hook */
        EVP_MAC_CTX *id_mac;    /* keyed once; dup'ed per chunk */
        EVP_CIPHER_CTX *cipher;
        ZSTD_CCtx *zc;
        ZSTD_DCtx *zd;
        Loc *locs;
        size_t n_locs, cap_locs;        /* cap: a power of two */
        Pack *packs;
        size_t n_packs;
        uint64_t bad_packs;
        /* The pack being filled by a backup: records after the magic, and their entries. */
        Writer pending;
        PackEntry *pending_e;
        size_t n_pending, cap_pending;
};

extern const uint8_t store_zero_id[ID_LEN];

Loc *store_index_find(Store *s, const uint8_t id[ID_LEN]);
/* The plaintext of chunk id, read from its pack and checked against the id. */
int store_chunk_get(Store *s, const uint8_t id[ID_LEN], uint8_t *plain, size_t cap, size_t *ret_len);
/* Stores plain under id unless the store has it; store_pending_append stores it regardless. */
int store_chunk_put(Store *s, const uint8_t id[ID_LEN], const void *plain, size_t len, uint64_t *added,
                    char **ret_error);
int store_pending_append(Store *s, const uint8_t id[ID_LEN], const void *plain, size_t len, uint64_t *added,
                         char **ret_error);
bool store_pending_has(Store *s, const uint8_t id[ID_LEN]);
int store_pending_commit(Store *s, char **ret_error);
void store_pending_reset(Store *s);
/* The index again from the pack files on disk. */
int store_reload(Store *s);
char *store_pack_path(Store *s, const char *name);
bool store_name_ok(const char *name);
char *store_version_path(Store *s, const char *name, int v);
int store_version_load(Store *s, const char *name, int v, uint8_t **buf, VersionHeader *h);
int store_fsync_dir(const char *dir);
