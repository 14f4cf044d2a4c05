/* Capped line reader: accumulates bytes from a stream and hands out complete lines. A line longer
 * than the cap given at init is refused before its excess is buffered, so a peer can never make
 * us hold more than cap + 1 bytes. No I/O, libc only (the static agent links it). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct LineBuf {
        char *buf;
        size_t len;             /* bytes of the line being read (or of the one handed out) */
        size_t cap;             /* allocated; grows up to max + 1 */
        size_t max;             /* longest line accepted, without its '\n' */
        bool handed_out;        /* buf holds the line returned last: drop it on the next call */
        bool skipping;          /* the rest of an over-long line is being dropped */
} LineBuf;

/* max: the longest line accepted, in bytes without the '\n' (at least 1). Allocates nothing yet. */
void linebuf_init(LineBuf *lb, size_t max);
/* Frees the buffer; lb can be fed again afterwards (with the same max). */
void linebuf_free(LineBuf *lb);

/* Consumes bytes of data (*ret_used says how many) up to the end of the first complete line.
 *   1: *ret_line is that line without its '\n' (a '\r' before it is kept), *ret_len its length;
 *      NUL-terminated at [len]; NUL bytes inside are kept and counted (C-string users beware);
 *      valid until the next call on lb. Empty lines are returned too.
 *   0: all of data was consumed inside a line (buffered for the next call).
 *   -EMSGSIZE: the line has more than max bytes. *ret_line and *ret_len hold its first max bytes
 *      (for a log; protocol readers drop the connection); the rest of it, up to and including
 *      its '\n', is dropped by the following calls.
 *   -ENOMEM: the buffer could not grow (the byte that needed room is not consumed).
 * Call it again with the rest of data while *ret_used < n. */
int linebuf_feed(LineBuf *lb, const void *data, size_t n, size_t *ret_used, char **ret_line, size_t *ret_len);
/* linebuf_feed over all of data, for a reader that logs a child's output: fn gets each complete
 * line (cut = false) and each over-long one's first max bytes (cut = true). Stops early only on
 * -ENOMEM, which it returns; else 0. */
typedef void (*LineFn)(void *ud, char *line, size_t len, bool cut);
int linebuf_feed_lines(LineBuf *lb, const void *data, size_t n, LineFn fn, void *ud);
/* The unfinished line buffered so far (NUL-terminated, len in *ret_len), left in place; NULL when
 * there is none. For a reader that looks for a marker before the newline arrives. */
char *linebuf_partial(LineBuf *lb, size_t *ret_len);
/* At the end of the stream: hands out the unfinished line as the last one (valid until the next
 * call on lb), or NULL when there is none. */
char *linebuf_finish(LineBuf *lb, size_t *ret_len);
