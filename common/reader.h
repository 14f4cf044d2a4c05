/* Checked reader and writer for every wire format (after OpenSSH sshbuf): each getter checks
 * bounds and returns 0 or -EBADMSG, so a forgotten bounds check cannot exist. No I/O here. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct Reader {
        const uint8_t *data;
        size_t len;
        size_t off;
} Reader;

static inline Reader reader_init(const void *data, size_t len) { return (Reader){ data, len, 0 }; }
static inline size_t reader_remaining(const Reader *r) { return r->len - r->off; }

int reader_u8(Reader *r, uint8_t *ret);
int reader_u16(Reader *r, uint16_t *ret);          /* big-endian */
int reader_u32(Reader *r, uint32_t *ret);
int reader_u64(Reader *r, uint64_t *ret);
int reader_bytes(Reader *r, size_t n, const uint8_t **ret);
/* A u16-length-prefixed string of at most max bytes, no NUL inside; copied NUL-terminated into buf[max+1]. */
int reader_string(Reader *r, char *buf, size_t max);

/* Growable output buffer with a hard cap; errors are sticky, checked once at the end. */
typedef struct Writer {
        uint8_t *data;
        size_t len, cap, max;
        int error;
} Writer;

void writer_init(Writer *w, size_t max);
void writer_free(Writer *w);
void writer_u8(Writer *w, uint8_t v);
void writer_u16(Writer *w, uint16_t v);
void writer_u32(Writer *w, uint32_t v);
void writer_u64(Writer *w, uint64_t v);
void writer_bytes(Writer *w, const void *p, size_t n);
void writer_string(Writer *w, const char *s);      /* u16 length + bytes */
