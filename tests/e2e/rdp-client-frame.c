/* rdp-client's view of the frame: black checks, pixel and change expectations on the
 * software-gdi buffer, and the PPM screenshot. Reads the buffer only under update->mux. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <freerdp/gdi/gdi.h>

#include "rdp-client.h"

bool buffer_is_black(const rdpGdi *gdi)
{
	for (UINT32 y = 0; y < (UINT32)gdi->height; y++) {
		const BYTE *row = gdi->primary_buffer + (size_t)y * gdi->stride;
		for (UINT32 x = 0; x < (UINT32)gdi->width; x++)
			/* B,G,R only: the X byte is left uninitialised by the GFX path. */
			if (row[4 * x] | row[4 * x + 1] | row[4 * x + 2])
				return false;
	}
	return true;
}

/* Black pixels do not count: a first paint may cover part of the frame only. */
bool buffer_is_slate_screen(const rdpGdi *gdi)
{
	size_t n = 0, lit = 0;
	for (UINT32 y = 0; y < (UINT32)gdi->height; y++) {
		const BYTE *row = gdi->primary_buffer + (size_t)y * gdi->stride;
		for (UINT32 x = 0; x < (UINT32)gdi->width; x++) {
			const BYTE *p = row + 4 * x;
			if (!(p[0] | p[1] | p[2]))
				continue;
			lit++;
			n += abs(p[2] - SLATE_BACKDROP_R) <= 8 && abs(p[1] - SLATE_BACKDROP_G) <= 8 &&
			     abs(p[0] - SLATE_BACKDROP_B) <= 8;
		}
	}
	return lit && n * 2 > lit;
}

static void pixel_at(const rdpGdi *gdi, unsigned x, unsigned y, uint8_t rgb[3])
{
	const BYTE *p = gdi->primary_buffer + (size_t)y * gdi->stride + 4u * x;
	rgb[0] = p[2];
	rgb[1] = p[1];
	rgb[2] = p[0];
}

/* Copies the frame as packed RGB; the caller frees. */
uint8_t *frame_snapshot(rdpContext *ctx, unsigned *ret_w, unsigned *ret_h)
{
	rdpGdi *gdi = ctx->gdi;
	uint8_t *rgb = NULL;

	EnterCriticalSection(&ctx->update->mux);
	if (gdi && gdi->primary_buffer && (rgb = malloc((size_t)(UINT32)gdi->width * (UINT32)gdi->height * 3))) {
		for (UINT32 y = 0; y < (UINT32)gdi->height; y++)
			for (UINT32 x = 0; x < (UINT32)gdi->width; x++)
				pixel_at(gdi, x, y, rgb + ((size_t)y * (UINT32)gdi->width + x) * 3);
		*ret_w = (UINT32)gdi->width;
		*ret_h = (UINT32)gdi->height;
	}
	LeaveCriticalSection(&ctx->update->mux);
	return rgb;
}

int ppm_write(const char *path, const uint8_t *rgb, unsigned w, unsigned h)
{
	FILE *f = fopen(path, "wb");
	int r = 0;

	if (!f) {
		r = -errno;
		note("screenshot %s: %s", path, strerror(errno));
		return r;
	}
	fprintf(f, "P6\n%u %u\n255\n", w, h);
	if (fwrite(rgb, 3, (size_t)w * h, f) != (size_t)w * h)
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r < 0)
		note("screenshot %s: %s", path, strerror(-r));
	return r;
}

static bool pixel_matches(const PixelExpect *e, const uint8_t rgb[3])
{
	return abs(rgb[0] - e->r) <= (int)e->tol && abs(rgb[1] - e->g) <= (int)e->tol &&
	       abs(rgb[2] - e->b) <= (int)e->tol;
}

/* All --expect-pixel and --expect-not-black hold on the current frame. */
bool pred_pixels(Client *c, void *arg)
{
	rdpContext *ctx = &c->common.context;
	rdpGdi *gdi = ctx->gdi;
	bool ok = true;

	if (!atomic_load(&c->frames))
		return false;
	EnterCriticalSection(&ctx->update->mux);
	for (size_t i = 0; ok && i < c->opt->n_pixels; i++) {
		const PixelExpect *e = &c->opt->pixels[i];
		uint8_t rgb[3];
		if (e->x >= (UINT32)gdi->width || e->y >= (UINT32)gdi->height) {
			ok = false;
			break;
		}
		pixel_at(gdi, e->x, e->y, rgb);
		ok = pixel_matches(e, rgb);
	}
	if (ok && c->opt->expect_not_black)
		ok = !buffer_is_black(gdi);
	LeaveCriticalSection(&ctx->update->mux);
	return ok;
}

/* Every pixel of a set holds on the current frame. */
bool pred_pixel_set(Client *c, void *arg)
{
	const PixelSet *set = arg;
	rdpContext *ctx = &c->common.context;
	rdpGdi *gdi = ctx->gdi;
	bool ok = true;

	if (!atomic_load(&c->frames))
		return false;
	EnterCriticalSection(&ctx->update->mux);
	for (size_t i = 0; ok && i < set->n; i++) {
		uint8_t rgb[3];
		if (set->p[i].x >= (UINT32)gdi->width || set->p[i].y >= (UINT32)gdi->height) {
			ok = false;
			break;
		}
		pixel_at(gdi, set->p[i].x, set->p[i].y, rgb);
		ok = pixel_matches(&set->p[i], rgb);
	}
	LeaveCriticalSection(&ctx->update->mux);
	return ok;
}

void pixel_set_explain(Client *c, const PixelSet *set)
{
	rdpContext *ctx = &c->common.context;
	rdpGdi *gdi = ctx->gdi;

	EnterCriticalSection(&ctx->update->mux);
	for (size_t i = 0; i < set->n; i++) {
		uint8_t rgb[3];
		if (set->p[i].x >= (UINT32)gdi->width || set->p[i].y >= (UINT32)gdi->height) {
			note("after: pixel %u,%u outside the %ux%u frame", set->p[i].x, set->p[i].y,
			     (UINT32)gdi->width, (UINT32)gdi->height);
			continue;
		}
		pixel_at(gdi, set->p[i].x, set->p[i].y, rgb);
		if (!pixel_matches(&set->p[i], rgb))
			note("after: pixel %u,%u: expected %02x%02x%02x, got %02x%02x%02x", set->p[i].x,
			     set->p[i].y, set->p[i].r, set->p[i].g, set->p[i].b, rgb[0], rgb[1], rgb[2]);
	}
	LeaveCriticalSection(&ctx->update->mux);
}

/* Differs from the snapshot by more than codec noise in at least one pixel. */
bool pred_changed(Client *c, void *arg)
{
	const ChangeArg *a = arg;
	rdpContext *ctx = &c->common.context;
	rdpGdi *gdi = ctx->gdi;
	bool changed = false;

	EnterCriticalSection(&ctx->update->mux);
	if ((UINT32)gdi->width != a->w || (UINT32)gdi->height != a->h) {
		changed = true;
	} else {
		for (UINT32 y = 0; !changed && y < (UINT32)gdi->height; y++)
			for (UINT32 x = 0; x < (UINT32)gdi->width; x++) {
				uint8_t rgb[3];
				const uint8_t *b = a->before + ((size_t)y * a->w + x) * 3;
				pixel_at(gdi, x, y, rgb);
				if (abs(rgb[0] - b[0]) > 16 || abs(rgb[1] - b[1]) > 16 ||
				    abs(rgb[2] - b[2]) > 16) {
					changed = true;
					break;
				}
			}
	}
	LeaveCriticalSection(&ctx->update->mux);
	return changed;
}

/* Names each failed pixel expectation on stderr, for the person reading the log. */
void pixels_explain(Client *c)
{
	rdpContext *ctx = &c->common.context;
	rdpGdi *gdi = ctx->gdi;

	EnterCriticalSection(&ctx->update->mux);
	for (size_t i = 0; i < c->opt->n_pixels; i++) {
		const PixelExpect *e = &c->opt->pixels[i];
		uint8_t rgb[3];
		if (e->x >= (UINT32)gdi->width || e->y >= (UINT32)gdi->height) {
			note("pixel %u,%u: outside the %ux%u frame", e->x, e->y, (UINT32)gdi->width,
			     (UINT32)gdi->height);
			continue;
		}
		pixel_at(gdi, e->x, e->y, rgb);
		if (!pixel_matches(e, rgb))
			note("pixel %u,%u: expected %02x%02x%02x (tolerance %u), got %02x%02x%02x",
			     e->x, e->y, e->r, e->g, e->b, e->tol, rgb[0], rgb[1], rgb[2]);
	}
	if (c->opt->expect_not_black && buffer_is_black(gdi))
		note("frame is entirely black");
	LeaveCriticalSection(&ctx->update->mux);
}
