/* The block store's on-disk formats (streaming/store.c), parsed only here, through the checked
 * reader, and fuzzed (tests/fuzz/fuzz_store_pack.c): a store's files are input like any other
 * (a copied or damaged store must be refused, never trusted). Big-endian throughout.
 *
 * Pack file NNNNNNNN.pack (its number, 8 hex digits, never reused: maps name blocks by pack and
 * entry): "SLATEPK2", then records, then the index, then the tail.
 *   record: id[32] | u32 len | sealed[len]
 *   index:  count × (id[32] | u64 offset of the record | u32 len); a pruned entry keeps its
 *           place as all zeros (offset 0, len 0)
 *   tail:   u32 count | u64 index offset | mac[32] | "SLATEIX2"
 *   mac:    HMAC-SHA256 by the store's key of u32 number | index | u32 count | u64 index offset
 *           (store.c), so that neither entries nor whole packs can be swapped.
 * Map (the plaintext of a map chunk, parsed only once it opened to its id):
 *   runs × (u32 blocks | u32 pack | u32 first entry): blocks consecutive on the disk held by
 *   consecutive entries of one pack; pack 0: blocks of zeros (entry 0).
 * Version file: "SLATEVR2" | u64 disk size | u32 block size | u32 blocks per map | u64 created |
 *   u32 maps | maps × id[32] | mac[32] (HMAC-SHA256 of everything before it, by the store's key). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/reader.h"

#define PACK_ID_LEN 32
#define PACK_MAGIC "SLATEPK2"
#define PACK_INDEX_MAGIC "SLATEIX2"
#define PACK_MAGIC_LEN 8
#define PACK_MAC_LEN 32
#define PACK_TAIL_LEN (4 + 8 + PACK_MAC_LEN + PACK_MAGIC_LEN)
#define PACK_ENTRY_LEN (PACK_ID_LEN + 8 + 4)
#define PACK_RECORD_HEADER (PACK_ID_LEN + 4)
#define PACK_SEALED_MAX (64 * 1024)             /* a map chunk (12 KiB) sealed, with room */
#define PACK_ENTRIES_MAX (1u << 22)             /* far above what a pack of 32 MiB holds */
#define PACK_NUMBER_MAX 0xffffffffu

#define MAP_RUN_LEN 12
#define MAP_BLOCKS_MAX 1024

#define VERSION_MAGIC "SLATEVR2"
#define VERSION_MAPS_MAX (1u << 20)             /* 4 PiB of 4 KiB blocks in maps of 1024 */
#define VERSION_MAC_LEN 32

typedef struct PackEntry {
        uint8_t id[PACK_ID_LEN];
        uint64_t offset;        /* of the record (its id) in the pack; 0: pruned */
        uint32_t len;           /* of the sealed data; 0: pruned */
} PackEntry;

/* A pack file's name: "NNNNNNNN.pack", 8 lowercase hex digits, not 0. */
bool pack_name_parse(const char *name, uint32_t *ret_no);

/* The tail (the file's last PACK_TAIL_LEN bytes) of a pack of file_size bytes: where its index
 * is, how many entries it has and its MAC (inside tail); -EBADMSG unless the index fills exactly
 * the space before. */
int pack_tail_parse(const uint8_t *tail, size_t len, uint64_t file_size, uint64_t *ret_index_off,
                    uint32_t *ret_count, const uint8_t **ret_mac);
/* The index (count entries read from index_off): each live record lies between the magic and the
 * index, after the one before it, and holds at most PACK_SEALED_MAX bytes. *ret is malloc'ed. */
int pack_index_parse(const uint8_t *buf, size_t len, uint64_t index_off, uint32_t count, PackEntry **ret);
/* A record's header, read at an entry's offset: its id and length must be the entry's. */
int pack_record_check(const uint8_t *hdr, size_t len, const PackEntry *e);

void pack_record_write(Writer *w, const uint8_t id[PACK_ID_LEN], const uint8_t *sealed, uint32_t len);
/* The index and the tail but its MAC and magic (pack_tail_finish adds them). */
void pack_index_write(Writer *w, const PackEntry *e, uint32_t n, uint64_t index_off);
void pack_tail_finish(Writer *w, const uint8_t mac[PACK_MAC_LEN]);

typedef struct MapRun {
        uint32_t blocks;
        uint32_t pack;          /* 0: zeros */
        uint32_t entry;
} MapRun;

/* A map of exactly `blocks` blocks: runs of at least one block (zeros with entry 0), adding up.
 * *ret is malloc'ed. */
int map_parse(const uint8_t *buf, size_t len, uint32_t blocks, MapRun **ret, size_t *ret_n);
void map_write(Writer *w, const MapRun *runs, size_t n);

typedef struct VersionHeader {
        uint64_t disk_size;
        uint32_t block_size, map_blocks;
        uint64_t created;
        uint32_t n_maps;
        const uint8_t *maps;    /* n_maps × PACK_ID_LEN, inside the parsed buffer */
        const uint8_t *mac;     /* VERSION_MAC_LEN bytes; covers [0, mac_off) */
        size_t mac_off;
} VersionHeader;

/* A version file's fields; the caller checks the MAC. -EBADMSG on any inconsistency (block size
 * not 4096, maps not covering the disk size, trailing bytes). */
int version_parse(const uint8_t *buf, size_t len, VersionHeader *ret);
void version_write(Writer *w, const VersionHeader *h);        /* without the mac */
