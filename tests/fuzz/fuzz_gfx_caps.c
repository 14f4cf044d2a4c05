/* Fuzz target for the graphics pipeline's capability choice (rdp/gfx.c gfx_caps_choose): the
 * input is a client's capability sets, 12 bytes each (version, length, flags, little endian).
 * Checks, not just runs: the answer is -1 or an index into the list, names a set that allows
 * AVC420, and no set that allows it has a higher version. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rdp/gfx.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int allows(const RDPGFX_CAPSET *c)
{
        if (c->version == RDPGFX_CAPVERSION_81)
                return (c->flags & RDPGFX_CAPS_FLAG_AVC420_ENABLED) != 0;
        switch (c->version) {
        case RDPGFX_CAPVERSION_10: case RDPGFX_CAPVERSION_101: case RDPGFX_CAPVERSION_102:
        case RDPGFX_CAPVERSION_103: case RDPGFX_CAPVERSION_104: case RDPGFX_CAPVERSION_105:
        case RDPGFX_CAPVERSION_106: case RDPGFX_CAPVERSION_106_ERR: case RDPGFX_CAPVERSION_107:
                return !(c->flags & RDPGFX_CAPS_FLAG_AVC_DISABLED);
        default:
                return 0;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t n = size / 12;
        RDPGFX_CAPSET *c = calloc(n ? n : 1, sizeof *c);
        CHECK(c);
        for (size_t i = 0; i < n; i++)
                c[i] = (RDPGFX_CAPSET){ .version = le32(data + 12 * i), .length = le32(data + 12 * i + 4),
                                        .flags = le32(data + 12 * i + 8) };
        int r = gfx_caps_choose(c, n);
        CHECK(r >= -1 && (r < 0 || (size_t)r < n));
        for (size_t i = 0; i < n; i++) {
                if (!allows(&c[i]))
                        continue;
                CHECK(r >= 0);
                CHECK(c[i].version <= c[r].version);
        }
        if (r >= 0)
                CHECK(allows(&c[r]));
        free(c);
        return 0;
}
