/* Capped line reader (linebuf.h). The cap is checked against the bytes of the line before they
 * are copied, and the buffer grows in steps up to cap + 1, never by what the peer announces. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/linebuf.h"

#define LINEBUF_FIRST_ALLOC 256

void linebuf_init(LineBuf *lb, size_t max)
{
        *lb = (LineBuf){ .max = max ? max : 1 };
}

void linebuf_free(LineBuf *lb)
{
        free(lb->buf);
        linebuf_init(lb, lb->max);
}

static void drop_handed_out(LineBuf *lb)
{
        if (lb->handed_out) {
                lb->len = 0;
                lb->handed_out = false;
        }
}

/* Room for need bytes (the line and its NUL); need is at most max + 1. */
static int grow(LineBuf *lb, size_t need)
{
        if (need <= lb->cap)
                return 0;
        size_t cap = lb->cap ? lb->cap * 2 : LINEBUF_FIRST_ALLOC;
        if (cap < need)
                cap = need;
        if (cap > lb->max + 1)
                cap = lb->max + 1;
        char *b = realloc(lb->buf, cap);
        if (!b)
                return -ENOMEM;
        lb->buf = b;
        lb->cap = cap;
        return 0;
}

int linebuf_feed(LineBuf *lb, const void *data, size_t n, size_t *ret_used, char **ret_line, size_t *ret_len)
{
        const char *p = data;
        size_t i = 0;
        drop_handed_out(lb);
        if (lb->skipping) {
                const char *nl = n ? memchr(p, '\n', n) : NULL;
                if (!nl) {
                        *ret_used = n;
                        return 0;
                }
                i = (size_t)(nl - p) + 1;
                lb->skipping = false;
        }
        if (i == n) {
                *ret_used = i;
                return 0;
        }
        const char *nl = memchr(p + i, '\n', n - i);
        size_t k = nl ? (size_t)(nl - (p + i)) : n - i;
        size_t room = lb->max - lb->len;
        bool over = k > room;
        /* Only what fits under the cap is ever copied. */
        size_t take = over ? room : k;
        if (grow(lb, lb->len + take + 1) < 0) {
                *ret_used = i;
                return -ENOMEM;
        }
        memcpy(lb->buf + lb->len, p + i, take);
        lb->len += take;
        lb->buf[lb->len] = 0;
        if (over) {
                lb->skipping = !nl;
                *ret_used = nl ? (size_t)(nl - p) + 1 : n;
                lb->handed_out = true;
                *ret_line = lb->buf;
                *ret_len = lb->len;
                return -EMSGSIZE;
        }
        if (!nl) {
                *ret_used = n;
                return 0;
        }
        *ret_used = (size_t)(nl - p) + 1;
        lb->handed_out = true;
        *ret_line = lb->buf;
        *ret_len = lb->len;
        return 1;
}

int linebuf_feed_lines(LineBuf *lb, const void *data, size_t n, LineFn fn, void *ud)
{
        const char *p = data;
        size_t off = 0;
        while (off < n) {
                size_t used, len;
                char *line;
                int r = linebuf_feed(lb, p + off, n - off, &used, &line, &len);
                off += used;
                if (r == -ENOMEM)
                        return r;
                if (r == 1 || r == -EMSGSIZE)
                        fn(ud, line, len, r == -EMSGSIZE);
        }
        return 0;
}

char *linebuf_partial(LineBuf *lb, size_t *ret_len)
{
        drop_handed_out(lb);
        if (lb->skipping || lb->len == 0)
                return NULL;
        *ret_len = lb->len;
        return lb->buf;
}

char *linebuf_finish(LineBuf *lb, size_t *ret_len)
{
        drop_handed_out(lb);
        if (lb->skipping) {
                lb->skipping = false;
                return NULL;
        }
        if (lb->len == 0)
                return NULL;
        lb->handed_out = true;
        *ret_len = lb->len;
        return lb->buf;
}
