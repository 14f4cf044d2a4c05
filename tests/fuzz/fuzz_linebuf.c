/* Fuzz target for the capped line reader (common/linebuf): the first two bytes pick the cap and
 * the feed size, the rest is the stream. Checks, not just runs: no line over the cap, no '\n' in a
 * line, the buffer never past cap + 1, and without an over-long line the lines give the input back. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/linebuf.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        size_t max = 1 + data[0] % 64, step = 1 + data[1] % 16;
        const uint8_t *in = data + 2;
        size_t n = size - 2;

        LineBuf lb;
        linebuf_init(&lb, max);
        uint8_t *out = malloc(n + 1);
        size_t outlen = 0, off = 0;
        bool refused = false;
        CHECK(out);
        while (off < n) {
                size_t chunk = n - off < step ? n - off : step, used = 0;
                char *line;
                size_t len;
                int r = linebuf_feed(&lb, in + off, chunk, &used, &line, &len);
                CHECK(used <= chunk);
                CHECK(lb.cap <= max + 1);
                off += used;
                if (r == -EMSGSIZE) {
                        CHECK(len == max && line[len] == 0);
                        refused = true;
                        continue;
                }
                CHECK(r == 0 || r == 1);
                if (r == 0) {
                        CHECK(used == chunk);
                        continue;
                }
                CHECK(len <= max && line[len] == 0 && !memchr(line, '\n', len));
                memcpy(out + outlen, line, len);
                outlen += len;
                out[outlen++] = '\n';
        }
        size_t len;
        char *rest = linebuf_finish(&lb, &len);
        if (rest) {
                CHECK(len <= max && !memchr(rest, '\n', len));
                memcpy(out + outlen, rest, len);
                outlen += len;
        }
        if (!refused)
                CHECK(outlen == n && memcmp(out, in, n) == 0);
        free(out);
        linebuf_free(&lb);
        return 0;
}
