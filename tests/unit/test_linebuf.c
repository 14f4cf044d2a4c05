/* common/linebuf: lines come out whole however the bytes are split, a line at the cap passes, one
 * byte more is refused before it is buffered, and what follows an over-long line still reads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "common/linebuf.h"

typedef struct Got {
        char lines[8][64];
        size_t lens[8];
        int n;
        int too_long;
} Got;

/* Feeds all of s (len bytes), collecting lines; stops at the first error other than -EMSGSIZE. */
static int feed(LineBuf *lb, const char *s, size_t len, Got *g)
{
        size_t off = 0;
        while (off < len) {
                size_t used;
                char *line;
                size_t n;
                int r = linebuf_feed(lb, s + off, len - off, &used, &line, &n);
                cr_assert_leq(used, len - off);
                off += used;
                if (r == -EMSGSIZE) {
                        g->too_long++;
                        cr_assert_eq(n, lb->max);
                        continue;
                }
                if (r < 0)
                        return r;
                if (r == 0) {
                        cr_assert_eq(off, len, "0 returned with bytes left");
                        break;
                }
                cr_assert_eq(line[n], 0);
                cr_assert_lt(g->n, 8);
                memcpy(g->lines[g->n], line, n + 1);
                g->lens[g->n++] = n;
        }
        return 0;
}

Test(linebuf, lines_split_across_feeds_come_out_whole)
{
        LineBuf lb;
        linebuf_init(&lb, 64);
        Got g = { 0 };
        feed(&lb, "ab", 2, &g);
        cr_assert_eq(g.n, 0);
        feed(&lb, "c\nde", 4, &g);
        cr_assert_eq(g.n, 1);
        cr_assert_str_eq(g.lines[0], "abc");
        feed(&lb, "f\ng\nh", 5, &g);
        cr_assert_eq(g.n, 3);
        cr_assert_str_eq(g.lines[1], "def");
        cr_assert_str_eq(g.lines[2], "g");
        linebuf_free(&lb);
}

Test(linebuf, a_line_of_exactly_the_cap_passes)
{
        LineBuf lb;
        linebuf_init(&lb, 4);
        Got g = { 0 };
        feed(&lb, "abcd\nwxyz\n", 10, &g);
        cr_assert_eq(g.too_long, 0);
        cr_assert_eq(g.n, 2);
        cr_assert_str_eq(g.lines[0], "abcd");
        cr_assert_str_eq(g.lines[1], "wxyz");
        /* Split right at the cap: the newline arriving alone still ends a valid line. */
        feed(&lb, "abcd", 4, &g);
        feed(&lb, "\n", 1, &g);
        cr_assert_eq(g.too_long, 0);
        cr_assert_str_eq(g.lines[2], "abcd");
        linebuf_free(&lb);
}

Test(linebuf, one_byte_over_the_cap_is_refused_before_buffering)
{
        LineBuf lb;
        linebuf_init(&lb, 1000);
        char chunk[1000];
        memset(chunk, 'x', sizeof chunk);
        size_t used;
        char *line;
        size_t n;
        cr_assert_eq(linebuf_feed(&lb, chunk, sizeof chunk, &used, &line, &n), 0);
        cr_assert_eq(used, sizeof chunk);
        cr_assert_eq(linebuf_feed(&lb, "y", 1, &used, &line, &n), -EMSGSIZE);
        cr_assert_leq(lb.cap, 1001);
        /* The first max bytes are handed out for a log line, nothing of the excess. */
        cr_assert_eq(n, 1000);
        cr_assert_eq(line[999], 'x');
        cr_assert_eq(line[1000], 0);
        linebuf_free(&lb);
}

Test(linebuf, the_rest_of_an_over_long_line_is_dropped_and_reading_goes_on)
{
        LineBuf lb;
        linebuf_init(&lb, 4);
        Got g = { 0 };
        feed(&lb, "abcdef", 6, &g);
        cr_assert_eq(g.too_long, 1);
        feed(&lb, "ghij", 4, &g);             /* still the same line: dropped silently */
        cr_assert_eq(g.too_long, 1);
        cr_assert_eq(g.n, 0);
        feed(&lb, "kl\nok\n", 6, &g);
        cr_assert_eq(g.too_long, 1);
        cr_assert_eq(g.n, 1);
        cr_assert_str_eq(g.lines[0], "ok");
        /* Over the cap and the newline in the same feed. */
        feed(&lb, "123456\nfine\n", 12, &g);
        cr_assert_eq(g.too_long, 2);
        cr_assert_eq(g.n, 2);
        cr_assert_str_eq(g.lines[1], "fine");
        linebuf_free(&lb);
}

Test(linebuf, empty_lines_are_lines)
{
        LineBuf lb;
        linebuf_init(&lb, 8);
        Got g = { 0 };
        feed(&lb, "\n\na\n\n", 5, &g);
        cr_assert_eq(g.n, 4);
        cr_assert_eq(g.lens[0], 0);
        cr_assert_eq(g.lens[1], 0);
        cr_assert_str_eq(g.lines[2], "a");
        cr_assert_eq(g.lens[3], 0);
        linebuf_free(&lb);
}

Test(linebuf, nul_bytes_are_kept_and_counted)
{
        LineBuf lb;
        linebuf_init(&lb, 8);
        Got g = { 0 };
        feed(&lb, "a\0b\r\n", 5, &g);
        cr_assert_eq(g.n, 1);
        cr_assert_eq(g.lens[0], 4);
        cr_assert_eq(memcmp(g.lines[0], "a\0b\r", 5), 0);
        /* NULs count against the cap like any byte. */
        feed(&lb, "\0\0\0\0\0\0\0\0\0\n", 10, &g);
        cr_assert_eq(g.too_long, 1);
        linebuf_free(&lb);
}

Test(linebuf, partial_peeks_and_finish_hands_out_the_unfinished_line)
{
        LineBuf lb;
        linebuf_init(&lb, 16);
        size_t n;
        cr_assert_null(linebuf_partial(&lb, &n));
        Got g = { 0 };
        feed(&lb, "one\ntw", 6, &g);
        char *p = linebuf_partial(&lb, &n);
        cr_assert_not_null(p);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(p, "tw");
        feed(&lb, "o", 1, &g);                  /* a peek leaves the bytes in place */
        p = linebuf_finish(&lb, &n);
        cr_assert_not_null(p);
        cr_assert_str_eq(p, "two");
        cr_assert_null(linebuf_finish(&lb, &n));
        /* An over-long line being dropped leaves nothing to finish. */
        feed(&lb, "0123456789abcdefXYZ", 19, &g);
        cr_assert_null(linebuf_partial(&lb, &n));
        cr_assert_null(linebuf_finish(&lb, &n));
        feed(&lb, "next\n", 5, &g);
        cr_assert_str_eq(g.lines[g.n - 1], "next");
        linebuf_free(&lb);
}

Test(linebuf, buffer_grows_in_steps_not_to_the_cap)
{
        LineBuf lb;
        linebuf_init(&lb, 1u << 20);
        Got g = { 0 };
        feed(&lb, "short\n", 6, &g);
        cr_assert_leq(lb.cap, 4096, "a short line allocated %zu bytes", lb.cap);
        linebuf_free(&lb);
        cr_assert_null(lb.buf);
        cr_assert_eq(lb.max, 1u << 20);
}

static void collect(void *ud, char *line, size_t len, bool cut)
{
        char *acc = ud;
        snprintf(acc + strlen(acc), 256 - strlen(acc), "[%.*s%s]", (int)len, line, cut ? "+" : "");
}

Test(linebuf, feed_lines_hands_out_every_line_and_the_cut_ones)
{
        LineBuf lb;
        linebuf_init(&lb, 4);
        char acc[256] = "";
        cr_assert_eq(linebuf_feed_lines(&lb, "ab\ncdefgh\nx", 11, collect, acc), 0);
        cr_assert_eq(linebuf_feed_lines(&lb, "y\n", 2, collect, acc), 0);
        cr_assert_str_eq(acc, "[ab][cdef+][xy]");
        linebuf_free(&lb);
}
