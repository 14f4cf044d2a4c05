/* Frame parser and writer. Fuzzed through the agent and IPC fuzz targets; never trusts a length
 * before checking it against the limit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/cleanup.h"
#include "common/frame.h"

void frame_parser_init(FrameParser *p, uint16_t magic, uint8_t version, uint32_t max)
{
        *p = (FrameParser){ .magic = magic, .want_version = version, .max = max };
}

void frame_parser_free(FrameParser *p)
{
        free(p->payload);
        p->payload = NULL;
}

void frame_parser_set_max(FrameParser *p, uint32_t max) { p->max = max; }

int frame_parser_feed(FrameParser *p, const uint8_t *data, size_t len, size_t *consumed, Frame *ret)
{
        size_t used = 0;

        /* A completed frame is released on the next call. */
        if (p->hdr_len == FRAME_HEADER_SIZE && p->got == p->payload_len) {
                p->hdr_len = 0;
                p->got = p->payload_len = 0;
        }
        while (p->hdr_len < FRAME_HEADER_SIZE && used < len)
                p->hdr[p->hdr_len++] = data[used++];
        if (p->hdr_len < FRAME_HEADER_SIZE) {
                *consumed = used;
                return 0;
        }
        if (p->got == 0 && p->payload_len == 0) {
                Reader r = reader_init(p->hdr, FRAME_HEADER_SIZE);
                uint16_t magic;
                uint32_t plen;
                reader_u16(&r, &magic);
                reader_u8(&r, &p->version);
                reader_u8(&r, &p->type);
                reader_u32(&r, &plen);
                *consumed = used;
                if (magic != p->magic || p->version != p->want_version)
                        return -EBADMSG;
                if (plen > p->max)
                        return -EMSGSIZE;
                if (plen > 0) {
                        uint8_t *b = realloc(p->payload, plen);
                        if (!b)
                                return -ENOMEM;
                        p->payload = b;
                }
                p->payload_len = plen;
        }
        size_t take = MIN((size_t)(p->payload_len - p->got), len - used);
        if (take)
                memcpy(p->payload + p->got, data + used, take);
        p->got += (uint32_t)take;
        used += take;
        *consumed = used;
        if (p->got < p->payload_len)
                return 0;
        *ret = (Frame){ .type = p->type, .version = p->version, .payload = p->payload, .len = p->payload_len };
        return 1;
}

int frame_write(Writer *w, uint16_t magic, uint8_t version, uint8_t type, const Writer *body)
{
        if (body->error)
                return body->error;
        writer_u16(w, magic);
        writer_u8(w, version);
        writer_u8(w, type);
        writer_u32(w, (uint32_t)body->len);
        writer_bytes(w, body->data, body->len);
        return w->error;
}
