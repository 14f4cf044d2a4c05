/* The block store's pack and version formats (pack.h): parsing through the checked reader only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/util.h"
#include "streaming/pack.h"

#define STORE_BLOCK 4096

bool pack_name_parse(const char *name, uint32_t *ret_no)
{
        uint32_t no = 0;
        for (int i = 0; i < 8; i++) {
                char c = name[i];
                if (c >= '0' && c <= '9')
                        no = no * 16 + (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        no = no * 16 + (uint32_t)(c - 'a' + 10);
                else
                        return false;
        }
        if (strcmp(name + 8, ".pack") != 0 || no == 0)
                return false;
        *ret_no = no;
        return true;
}

int pack_tail_parse(const uint8_t *tail, size_t len, uint64_t file_size, uint64_t *ret_index_off,
                    uint32_t *ret_count, const uint8_t **ret_mac)
{
        Reader r = reader_init(tail, len);
        uint32_t count;
        uint64_t off;
        const uint8_t *magic, *mac;
        if (len != PACK_TAIL_LEN || reader_u32(&r, &count) < 0 || reader_u64(&r, &off) < 0 ||
            reader_bytes(&r, PACK_MAC_LEN, &mac) < 0 || reader_bytes(&r, PACK_MAGIC_LEN, &magic) < 0 ||
            memcmp(magic, PACK_INDEX_MAGIC, PACK_MAGIC_LEN) != 0)
                return -EBADMSG;
        if (count > PACK_ENTRIES_MAX || file_size < PACK_MAGIC_LEN + PACK_TAIL_LEN || off < PACK_MAGIC_LEN ||
            off > file_size - PACK_TAIL_LEN || file_size - PACK_TAIL_LEN - off != (uint64_t)count * PACK_ENTRY_LEN)
                return -EBADMSG;
        *ret_index_off = off;
        *ret_count = count;
        *ret_mac = mac;
        return 0;
}

int pack_index_parse(const uint8_t *buf, size_t len, uint64_t index_off, uint32_t count, PackEntry **ret)
{
        if (count > PACK_ENTRIES_MAX || len != (size_t)count * PACK_ENTRY_LEN)
                return -EBADMSG;
        Reader r = reader_init(buf, len);
        PackEntry *e = xmalloc0(sizeof *e * (count ? count : 1));
        uint64_t end = PACK_MAGIC_LEN;  /* where the last live record ended */
        for (uint32_t i = 0; i < count; i++) {
                const uint8_t *id;
                if (reader_bytes(&r, PACK_ID_LEN, &id) < 0 || reader_u64(&r, &e[i].offset) < 0 ||
                    reader_u32(&r, &e[i].len) < 0)
                        goto bad;
                memcpy(e[i].id, id, PACK_ID_LEN);
                if (e[i].offset == 0 && e[i].len == 0)
                        continue;       /* pruned */
                if (e[i].len == 0 || e[i].len > PACK_SEALED_MAX || e[i].offset < end || e[i].offset > index_off ||
                    index_off - e[i].offset < PACK_RECORD_HEADER + (uint64_t)e[i].len)
                        goto bad;
                end = e[i].offset + PACK_RECORD_HEADER + e[i].len;
        }
        *ret = e;
        return 0;
bad:
        free(e);
        return -EBADMSG;
}

int pack_record_check(const uint8_t *hdr, size_t len, const PackEntry *e)
{
        Reader r = reader_init(hdr, len);
        const uint8_t *id;
        uint32_t n;
        if (reader_bytes(&r, PACK_ID_LEN, &id) < 0 || reader_u32(&r, &n) < 0)
                return -EBADMSG;
        return memcmp(id, e->id, PACK_ID_LEN) == 0 && n == e->len ? 0 : -EBADMSG;
}

void pack_record_write(Writer *w, const uint8_t id[PACK_ID_LEN], const uint8_t *sealed, uint32_t len)
{
        writer_bytes(w, id, PACK_ID_LEN);
        writer_u32(w, len);
        writer_bytes(w, sealed, len);
}

void pack_index_write(Writer *w, const PackEntry *e, uint32_t n, uint64_t index_off)
{
        for (uint32_t i = 0; i < n; i++) {
                writer_bytes(w, e[i].id, PACK_ID_LEN);
                writer_u64(w, e[i].offset);
                writer_u32(w, e[i].len);
        }
        writer_u32(w, n);
        writer_u64(w, index_off);
}

void pack_tail_finish(Writer *w, const uint8_t mac[PACK_MAC_LEN])
{
        writer_bytes(w, mac, PACK_MAC_LEN);
        writer_bytes(w, PACK_INDEX_MAGIC, PACK_MAGIC_LEN);
}

int map_parse(const uint8_t *buf, size_t len, uint32_t blocks, MapRun **ret, size_t *ret_n)
{
        if (len % MAP_RUN_LEN || len / MAP_RUN_LEN > blocks || blocks > MAP_BLOCKS_MAX || blocks == 0)
                return -EBADMSG;
        size_t n = len / MAP_RUN_LEN;
        Reader r = reader_init(buf, len);
        MapRun *m = xmalloc0(sizeof *m * (n ? n : 1));
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
                if (reader_u32(&r, &m[i].blocks) < 0 || reader_u32(&r, &m[i].pack) < 0 ||
                    reader_u32(&r, &m[i].entry) < 0 || m[i].blocks == 0 || (m[i].pack == 0 && m[i].entry != 0) ||
                    (uint64_t)m[i].entry + m[i].blocks > PACK_ENTRIES_MAX)
                        goto bad;
                sum += m[i].blocks;
        }
        if (sum != blocks)
                goto bad;
        *ret = m;
        *ret_n = n;
        return 0;
bad:
        free(m);
        return -EBADMSG;
}

void map_write(Writer *w, const MapRun *runs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                writer_u32(w, runs[i].blocks);
                writer_u32(w, runs[i].pack);
                writer_u32(w, runs[i].entry);
        }
}

int version_parse(const uint8_t *buf, size_t len, VersionHeader *ret)
{
        Reader r = reader_init(buf, len);
        const uint8_t *magic;
        VersionHeader h = { 0 };
        if (reader_bytes(&r, PACK_MAGIC_LEN, &magic) < 0 || memcmp(magic, VERSION_MAGIC, PACK_MAGIC_LEN) != 0 ||
            reader_u64(&r, &h.disk_size) < 0 || reader_u32(&r, &h.block_size) < 0 ||
            reader_u32(&r, &h.map_blocks) < 0 || reader_u64(&r, &h.created) < 0 || reader_u32(&r, &h.n_maps) < 0)
                return -EBADMSG;
        if (h.block_size != STORE_BLOCK || h.map_blocks == 0 || h.map_blocks > MAP_BLOCKS_MAX || h.n_maps > VERSION_MAPS_MAX ||
            h.disk_size % STORE_BLOCK)
                return -EBADMSG;
        uint64_t span = (uint64_t)h.block_size * h.map_blocks;
        if ((h.disk_size + span - 1) / span != h.n_maps)
                return -EBADMSG;
        if (reader_bytes(&r, (size_t)h.n_maps * PACK_ID_LEN, &h.maps) < 0)
                return -EBADMSG;
        h.mac_off = r.off;
        if (reader_bytes(&r, VERSION_MAC_LEN, &h.mac) < 0 || reader_remaining(&r) != 0)
                return -EBADMSG;
        *ret = h;
        return 0;
}

void version_write(Writer *w, const VersionHeader *h)
{
        writer_bytes(w, VERSION_MAGIC, PACK_MAGIC_LEN);
        writer_u64(w, h->disk_size);
        writer_u32(w, h->block_size);
        writer_u32(w, h->map_blocks);
        writer_u64(w, h->created);
        writer_u32(w, h->n_maps);
        writer_bytes(w, h->maps, (size_t)h->n_maps * PACK_ID_LEN);
}
