/* Checked reader/writer: the only place that indexes untrusted buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/reader.h"

static int need(Reader *r, size_t n) { return reader_remaining(r) >= n ? 0 : -EBADMSG; }

int reader_u8(Reader *r, uint8_t *ret)
{
        if (need(r, 1) < 0)
                return -EBADMSG;
        *ret = r->data[r->off++];
        return 0;
}

int reader_u16(Reader *r, uint16_t *ret)
{
        if (need(r, 2) < 0)
                return -EBADMSG;
        const uint8_t *p = r->data + r->off;
        *ret = (uint16_t)(p[0] << 8 | p[1]);
        r->off += 2;
        return 0;
}

int reader_u32(Reader *r, uint32_t *ret)
{
        if (need(r, 4) < 0)
                return -EBADMSG;
        const uint8_t *p = r->data + r->off;
        *ret = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        r->off += 4;
        return 0;
}

int reader_u64(Reader *r, uint64_t *ret)
{
        uint32_t hi, lo;
        if (need(r, 8) < 0)
                return -EBADMSG;
        reader_u32(r, &hi);
        reader_u32(r, &lo);
        *ret = (uint64_t)hi << 32 | lo;
        return 0;
}

int reader_bytes(Reader *r, size_t n, const uint8_t **ret)
{
        if (need(r, n) < 0)
                return -EBADMSG;
        *ret = r->data + r->off;
        r->off += n;
        return 0;
}

int reader_string(Reader *r, char *buf, size_t max)
{
        size_t save = r->off;
        uint16_t n;
        const uint8_t *p;
        if (reader_u16(r, &n) < 0 || n > max || reader_bytes(r, n, &p) < 0 || memchr(p, 0, n)) {
                r->off = save;
                return -EBADMSG;
        }
        memcpy(buf, p, n);
        buf[n] = 0;
        return 0;
}

void writer_init(Writer *w, size_t max) { *w = (Writer){ .max = max }; }

void writer_free(Writer *w)
{
        free(w->data);
        *w = (Writer){ 0 };
}

void writer_bytes(Writer *w, const void *p, size_t n)
{
        if (w->error)
                return;
        if (n > w->max - w->len || w->len > w->max) {
                w->error = -EMSGSIZE;
                return;
        }
        if (w->len + n > w->cap) {
                size_t cap = w->cap ? w->cap : 64;
                while (cap < w->len + n)
                        cap *= 2;
                uint8_t *d = realloc(w->data, cap);
                if (!d) {
                        w->error = -ENOMEM;
                        return;
                }
                w->data = d;
                w->cap = cap;
        }
        if (n)
                memcpy(w->data + w->len, p, n);
        w->len += n;
}

void writer_u8(Writer *w, uint8_t v) { writer_bytes(w, &v, 1); }
void writer_u16(Writer *w, uint16_t v) { writer_bytes(w, (uint8_t[]){ v >> 8, v }, 2); }
void writer_u32(Writer *w, uint32_t v) { writer_bytes(w, (uint8_t[]){ v >> 24, v >> 16, v >> 8, v }, 4); }
void writer_u64(Writer *w, uint64_t v)
{
        writer_u32(w, (uint32_t)(v >> 32));
        writer_u32(w, (uint32_t)v);
}

void writer_string(Writer *w, const char *s)
{
        size_t n = strlen(s);
        if (n > UINT16_MAX) {
                w->error = -EMSGSIZE;
                return;
        }
        writer_u16(w, (uint16_t)n);
        writer_bytes(w, s, n);
}
