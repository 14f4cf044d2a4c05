/* Fuzz target: the block store's pack and version formats (streaming/pack.c). A store may be
 * copied, damaged or replaced (a replica, a restored backup disk): its files are hostile input.
 * The first byte picks the format: 0 mod 3, a pack file (its tail, index and records); 1, a
 * version file; 2, a map (the next 2 bytes: its blocks). Whatever parses must satisfy the
 * invariants the store relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "streaming/pack.h"

static void pack(const uint8_t *data, size_t size)
{
        uint64_t index_off;
        uint32_t count;
        const uint8_t *mac;
        if (size < PACK_TAIL_LEN || pack_tail_parse(data + size - PACK_TAIL_LEN, PACK_TAIL_LEN, size, &index_off,
                                                    &count, &mac) < 0)
                return;
        if (index_off + (uint64_t)count * PACK_ENTRY_LEN + PACK_TAIL_LEN != size)
                abort();
        PackEntry *e;
        if (pack_index_parse(data + index_off, (size_t)count * PACK_ENTRY_LEN, index_off, count, &e) < 0)
                return;
        uint64_t end = 0;
        for (uint32_t i = 0; i < count; i++) {
                if (e[i].len == 0) {
                        if (e[i].offset != 0)
                                abort();
                        continue;       /* pruned */
                }
                /* The store reads header + sealed bytes at the offset: all inside the file, and a
                 * restore reads runs of entries as one range: in order, not overlapping. */
                if (e[i].offset + PACK_RECORD_HEADER + e[i].len > index_off || e[i].len > PACK_SEALED_MAX ||
                    e[i].offset < end)
                        abort();
                end = e[i].offset + PACK_RECORD_HEADER + e[i].len;
                pack_record_check(data + e[i].offset, PACK_RECORD_HEADER, &e[i]);
        }
        free(e);
}

static void version(const uint8_t *data, size_t size)
{
        VersionHeader h;
        if (version_parse(data, size, &h) < 0)
                return;
        if (h.mac_off + VERSION_MAC_LEN != size || h.maps + (size_t)h.n_maps * PACK_ID_LEN > data + size ||
            h.block_size != 4096 || (uint64_t)h.n_maps * h.map_blocks * 4096 < h.disk_size)
                abort();
}

static void map(const uint8_t *data, size_t size)
{
        if (size < 2)
                return;
        uint32_t blocks = ((uint32_t)data[0] << 8 | data[1]) & 0x7ff;
        MapRun *m;
        size_t n;
        if (map_parse(data + 2, size - 2, blocks, &m, &n) < 0)
                return;
        /* The backup and the restore expand a map into exactly its blocks. */
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
                if (m[i].blocks == 0 || (m[i].pack == 0 && m[i].entry != 0))
                        abort();
                sum += m[i].blocks;
        }
        if (sum != blocks || n > MAP_BLOCKS_MAX)
                abort();
        free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        if (data[0] % 3 == 0)
                pack(data + 1, size - 1);
        else if (data[0] % 3 == 1)
                version(data + 1, size - 1);
        else
                map(data + 1, size - 1);
        return 0;
}
