/* Fuzz target: the block store's pack and version formats (streaming/pack.c). A store may be
 * copied, damaged or replaced (a replica, a restored backup disk): its files are hostile input.
 * The first byte picks the format: even, a pack file (its tail, index and records); odd, a
 * version file. Whatever parses must satisfy the invariants the store relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "streaming/pack.h"

static void pack(const uint8_t *data, size_t size)
{
        uint64_t index_off;
        uint32_t count;
        if (size < PACK_TAIL_LEN || pack_tail_parse(data + size - PACK_TAIL_LEN, PACK_TAIL_LEN, size, &index_off,
                                                    &count) < 0)
                return;
        if (index_off + (uint64_t)count * PACK_ENTRY_LEN + PACK_TAIL_LEN != size)
                abort();
        PackEntry *e;
        if (pack_index_parse(data + index_off, (size_t)count * PACK_ENTRY_LEN, index_off, count, &e) < 0)
                return;
        for (uint32_t i = 0; i < count; i++) {
                /* The store reads header + sealed bytes at the offset: all inside the file. */
                if (e[i].offset + PACK_RECORD_HEADER + e[i].len > index_off || e[i].len > PACK_SEALED_MAX)
                        abort();
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        if (data[0] % 2 == 0)
                pack(data + 1, size - 1);
        else
                version(data + 1, size - 1);
        return 0;
}
