/* The block store's on-disk formats (streaming/store.c), parsed only here, through the checked
 * reader, and fuzzed (tests/fuzz/fuzz_store_pack.c): a store's files are input like any other
 * (a copied or damaged store must be refused, never trusted). Big-endian throughout.
 *
 * Pack file: "SLATEPK1", then records, then the index, then the tail.
 *   record: id[32] | u32 len | sealed[len]
 *   index:  count × (id[32] | u64 offset of the record | u32 len)
 *   tail:   u32 count | u64 index offset | "SLATEIX1"
 * Version file: "SLATEVR1" | u64 disk size | u32 block size | u32 blocks per map | u64 created |
 *   u32 maps | maps × id[32] | mac[32] (HMAC-SHA256 of everything before it, by the store's key). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/reader.h"

#define PACK_ID_LEN 32
#define PACK_MAGIC "SLATEPK1"
#define PACK_INDEX_MAGIC "SLATEIX1"
#define PACK_MAGIC_LEN 8
#define PACK_TAIL_LEN (4 + 8 + PACK_MAGIC_LEN)
#define PACK_ENTRY_LEN (PACK_ID_LEN + 8 + 4)
#define PACK_RECORD_HEADER (PACK_ID_LEN + 4)
#define PACK_SEALED_MAX (64 * 1024)             /* a map chunk (32 KiB) sealed, with room */
#define PACK_ENTRIES_MAX (1u << 22)             /* far above what a pack of PACK_BYTES holds */

#define VERSION_MAGIC "SLATEVR1"
#define VERSION_MAPS_MAX (1u << 20)             /* 4 PiB of 4 KiB blocks in maps of 1024 */
#define VERSION_MAC_LEN 32

typedef struct PackEntry {
        uint8_t id[PACK_ID_LEN];
        uint64_t offset;        /* of the record (its id) in the pack */
        uint32_t len;           /* of the sealed data */
} PackEntry;

/* The tail (the file's last PACK_TAIL_LEN bytes) of a pack of file_size bytes: where its index
 * is and how many entries it has; -EBADMSG unless the index fills exactly the space before. */
int pack_tail_parse(const uint8_t *tail, size_t len, uint64_t file_size, uint64_t *ret_index_off,
                    uint32_t *ret_count);
/* The index (count entries read from index_off): each record must lie between the magic and
 * the index and hold at most PACK_SEALED_MAX bytes. *ret is malloc'ed. */
int pack_index_parse(const uint8_t *buf, size_t len, uint64_t index_off, uint32_t count, PackEntry **ret);
/* A record's header, read at an entry's offset: its id and length must be the entry's. */
int pack_record_check(const uint8_t *hdr, size_t len, const PackEntry *e);

void pack_record_write(Writer *w, const uint8_t id[PACK_ID_LEN], const uint8_t *sealed, uint32_t len);
void pack_index_write(Writer *w, const PackEntry *e, uint32_t n, uint64_t index_off);

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
