/* Drawing on a Linux fbdev framebuffer (/dev/fb0) for the test desktop: filled rectangles and
 * text in an embedded 8x16 font. Every coordinate is clamped to the screen: nothing here may
 * write outside the mapping, whatever size the host asked for. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FB_FONT_W 8
#define FB_FONT_H 16

typedef struct Fb {
        int fd;
        uint8_t *map;
        size_t map_size;
        unsigned width, height;     /* visible resolution (var info xres/yres) */
        unsigned stride;            /* bytes per line (fix info line_length) */
        unsigned bytes_pp;          /* 2, 3 or 4 */
        uint8_t r_off, r_len, g_off, g_len, b_off, b_len;
} Fb;

/* Opens and maps path (e.g. /dev/fb0); -ENOTSUP for pixel formats other than 16/24/32 bpp
 * packed truecolour. Logs nothing: the caller says what the framebuffer was for. */
int fb_open(const char *path, Fb *ret);
void fb_close(Fb *fb);
/* rgb is 0xRRGGBB. */
void fb_fill(Fb *fb, int x, int y, int w, int h, uint32_t rgb);
/* Draws s (printable ASCII; anything else shows as '?') with its top-left corner at x,y,
 * each font pixel scale×scale screen pixels. Transparent background. */
void fb_text(Fb *fb, int x, int y, unsigned scale, const char *s, uint32_t rgb);
/* Width in pixels of s drawn at scale. */
unsigned fb_text_width(const char *s, unsigned scale);
