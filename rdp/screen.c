/* The progress and logon screens (see screen.h), drawn with cairo's image backend on FreeType.
 * Every string drawn is made valid UTF-8 without controls first (a client's user name, a PAM
 * prompt): cairo stops drawing for good on invalid UTF-8. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cairo.h>
#include <cairo-ft.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include "common/log.h"
#include "common/util.h"
#include "rdp/screen.h"

#define FONT_FILE_MAX (16u << 20)
#define TILE 64                         /* damage granularity */
#define TEXT_MAX 2048                   /* one drawn string, after sanitising */
#define DOTS_MAX 48                     /* a masked field shows at most this many dots */

struct ScreenFont {
        FT_Library lib;
        FT_Face face;
        char *data;                     /* FreeType reads the face from here */
};

struct Screen {
        cairo_font_face_t *face;        /* NULL: no text */
        uint8_t *fb, *prev;
        uint32_t w, h, stride;
        bool full;                      /* report the whole screen next time */
};

int screen_font_load(const char *path, ScreenFont **ret)
{
        ScreenFont *f = calloc(1, sizeof *f);
        size_t len;
        if (!f)
                return -ENOMEM;
        int r = read_file_max(path, FONT_FILE_MAX, &f->data, &len);
        if (r < 0) {
                free(f);
                return log_error_errno(r, "screen font %s: %s", path, strerror(-r));
        }
        if (FT_Init_FreeType(&f->lib) != 0) {
                screen_font_free(f);
                return log_error_errno(-ENOMEM, "screen font: FreeType does not start");
        }
        if (FT_New_Memory_Face(f->lib, (const FT_Byte *)f->data, (FT_Long)len, 0, &f->face) != 0) {
                screen_font_free(f);
                return log_error_errno(-EINVAL, "screen font %s: not a font FreeType reads", path);
        }
        *ret = f;
        return 0;
}

ScreenFont *screen_font_free(ScreenFont *f)
{
        if (!f)
                return NULL;
        if (f->face)
                FT_Done_Face(f->face);
        if (f->lib)
                FT_Done_FreeType(f->lib);
        free(f->data);
        free(f);
        return NULL;
}

int screen_new(const ScreenFont *font, Screen **ret)
{
        Screen *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        if (font) {
                s->face = cairo_ft_font_face_create_for_ft_face(font->face, 0);
                if (cairo_font_face_status(s->face) != CAIRO_STATUS_SUCCESS) {
                        cairo_font_face_destroy(s->face);
                        s->face = NULL;
                        log_warn("screen: cairo cannot use the font: screens without text");
                }
        }
        s->full = true;
        *ret = s;
        return 0;
}

Screen *screen_free(Screen *s)
{
        if (!s)
                return NULL;
        if (s->face)
                cairo_font_face_destroy(s->face);
        free(s->fb);
        free(s->prev);
        free(s);
        return NULL;
}

bool screen_has_text(const Screen *s)
{
        return s->face != NULL;
}

void screen_invalidate(Screen *s)
{
        s->full = true;
}

const uint8_t *screen_framebuffer(const Screen *s, uint32_t *ret_stride, uint32_t *ret_w, uint32_t *ret_h)
{
        *ret_stride = s->stride;
        *ret_w = s->w;
        *ret_h = s->h;
        return s->fb;
}

/* ---- text ---- */

/* Valid UTF-8 without control characters into out (cap bytes with the NUL): what cairo may draw. */
static void sanitize(const char *in, char *out, size_t cap)
{
        size_t o = 0;
        const unsigned char *p = (const unsigned char *)(in ? in : "");
        while (*p && o + 5 < cap) {
                size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
                bool ok = n > 0;
                for (size_t i = 1; ok && i < n; i++)
                        ok = (p[i] & 0xC0) == 0x80;
                if (ok && n == 2 && *p < 0xC2)
                        ok = false;                             /* overlong */
                if (ok && n == 3 && ((*p == 0xE0 && p[1] < 0xA0) || (*p == 0xED && p[1] >= 0xA0)))
                        ok = false;                             /* overlong, surrogate */
                if (ok && n == 4 && ((*p == 0xF0 && p[1] < 0x90) || *p > 0xF4 || (*p == 0xF4 && p[1] >= 0x90)))
                        ok = false;
                if (!ok) {
                        out[o++] = '?';
                        p++;
                        continue;
                }
                if (n == 1 && (*p < 0x20 || *p == 0x7F)) {
                        out[o++] = *p == '\n' || *p == '\t' ? ' ' : '?';
                        p++;
                        continue;
                }
                memcpy(out + o, p, n);
                o += n;
                p += n;
        }
        out[o] = 0;
}

typedef struct Rgb {
        double r, g, b;
} Rgb;

#define RGB(hex) ((Rgb){ ((hex) >> 16 & 0xFF) / 255.0, ((hex) >> 8 & 0xFF) / 255.0, ((hex) & 0xFF) / 255.0 })

static const Rgb C_BACKDROP = RGB(SCREEN_BACKDROP), C_CARD = RGB(0x1C2D42), C_CARD_EDGE = RGB(0x2B4462),
                 C_TITLE = RGB(0xF2F5F8), C_TEXT = RGB(0xC5D0DC), C_DIM = RGB(0x8699AD), C_FIELD = RGB(0x12202F),
                 C_FIELD_EDGE = RGB(0x3A5574), C_FOCUS = RGB(0x5AA0E6), C_BAR = RGB(0x2B4462),
                 C_BAR_FILL = RGB(0x5AA0E6), C_ERROR = RGB(0xFF9A8F), C_INFO = RGB(0x9CCBFF);

static void set_rgb(cairo_t *cr, Rgb c)
{
        cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static double text_width(cairo_t *cr, const char *t)
{
        cairo_text_extents_t e;
        cairo_text_extents(cr, t, &e);
        return e.x_advance;
}

/* One line at baseline y, from x (or centred in [x, x+width) when centre). */
static void text_at(Screen *s, cairo_t *cr, double x, double y, double width, bool centre, double size, Rgb c,
                    const char *t)
{
        if (!s->face || !t || !*t)
                return;
        cairo_set_font_size(cr, size);
        set_rgb(cr, c);
        if (centre)
                x += (width - text_width(cr, t)) / 2;
        cairo_move_to(cr, x, y);
        cairo_show_text(cr, t);
}

/* Word-wrap clean text to width: up to max lines written into lines[] (each TEXT_MAX), the last
 * one ending with an ellipsis when the text goes on. Returns the line count. */
static size_t wrap(cairo_t *cr, const char *t, double width, char lines[][TEXT_MAX], size_t max)
{
        size_t n = 0;
        while (*t == ' ')
                t++;
        while (*t && n < max) {
                char *line = lines[n];
                size_t len = 0, last_space = 0;
                const char *p = t;
                line[0] = 0;
                while (*p) {
                        size_t cl = 1;
                        while ((p[cl] & 0xC0) == 0x80)
                                cl++;
                        if (len + cl + 1 >= TEXT_MAX)
                                break;
                        memcpy(line + len, p, cl);
                        line[len + cl] = 0;
                        if (text_width(cr, line) > width && len > 0) {
                                line[len] = 0;
                                break;
                        }
                        if (*p == ' ')
                                last_space = len;
                        len += cl;
                        p += cl;
                }
                if (*p && last_space > 0) {
                        /* Break at the last space rather than inside a word. */
                        line[last_space] = 0;
                        p = t + last_space + 1;
                }
                t = p;
                while (*t == ' ')
                        t++;
                n++;
        }
        if (*t && n == max) {
                /* More text than room: end the last line with an ellipsis that fits. */
                char *line = lines[n - 1];
                size_t len = MIN(strlen(line), (size_t)TEXT_MAX - 4);
                for (;;) {
                        char tmp[TEXT_MAX];
                        memcpy(tmp, line, len);
                        memcpy(tmp + len, "\xE2\x80\xA6", 4);   /* … and the NUL */
                        if (len == 0 || text_width(cr, tmp) <= width) {
                                memcpy(line, tmp, len + 4);
                                break;
                        }
                        do
                                len--;
                        while (len > 0 && (line[len] & 0xC0) == 0x80);
                }
        }
        return n;
}

static void rounded(cairo_t *cr, double x, double y, double w, double h, double r)
{
        cairo_new_sub_path(cr);
        cairo_arc(cr, x + w - r, y + r, r, -M_PI / 2, 0);
        cairo_arc(cr, x + w - r, y + h - r, r, 0, M_PI / 2);
        cairo_arc(cr, x + r, y + h - r, r, M_PI / 2, M_PI);
        cairo_arc(cr, x + r, y + r, r, M_PI, 1.5 * M_PI);
        cairo_close_path(cr);
}

/* A text field at (x,y) w×h: its value (the end of it when too long), a caret when focused. */
static void field(Screen *s, cairo_t *cr, double x, double y, double w, double h, const char *value, bool focused)
{
        rounded(cr, x, y, w, h, 4);
        set_rgb(cr, C_FIELD);
        cairo_fill_preserve(cr);
        set_rgb(cr, focused ? C_FOCUS : C_FIELD_EDGE);
        cairo_set_line_width(cr, focused ? 2 : 1);
        cairo_stroke(cr);
        double pad = 10, size = 16, tw = 0;
        if (s->face) {
                cairo_set_font_size(cr, size);
                tw = text_width(cr, value);
        }
        cairo_save(cr);
        cairo_rectangle(cr, x + pad / 2, y, w - pad, h);
        cairo_clip(cr);
        double tx = x + pad;
        if (tw > w - 2 * pad - 4)
                tx = x + w - pad - 4 - tw;
        text_at(s, cr, tx, y + h / 2 + size * 0.36, 0, false, size, C_TITLE, value);
        if (focused) {
                set_rgb(cr, C_FOCUS);
                cairo_rectangle(cr, tx + tw + 1, y + 8, 2, h - 16);
                cairo_fill(cr);
        }
        cairo_restore(cr);
}

/* ---- the screens ---- */

#define CARD_PAD 32.0

typedef struct Layout {
        double x, y, w;                 /* the card; its height is what was drawn */
} Layout;

static double draw_progress(Screen *s, cairo_t *cr, const ScreenView *v, Layout *L, bool dry)
{
        char title[TEXT_MAX], text[TEXT_MAX], lines[4][TEXT_MAX];
        double x = L->x + CARD_PAD, w = L->w - 2 * CARD_PAD, y = L->y + CARD_PAD;
        sanitize(v->title, title, sizeof title);
        sanitize(v->text, text, sizeof text);
        y += 28;
        if (!dry)
                text_at(s, cr, x, y, w, true, 26, C_TITLE, title);
        y += 22;
        size_t n = 0;
        if (s->face) {
                cairo_set_font_size(cr, 16);
                n = wrap(cr, text, w, lines, v->mode == SCREEN_FAILED ? 4 : 2);
        }
        for (size_t i = 0; i < (v->mode == SCREEN_FAILED ? 4u : 2u); i++) {
                y += 24;
                if (!dry && i < n)
                        text_at(s, cr, x, y, w, true, 16, v->mode == SCREEN_FAILED ? C_ERROR : C_TEXT, lines[i]);
        }
        if (v->mode == SCREEN_PROGRESS) {
                y += 26;
                if (!dry && v->steps > 0) {
                        double frac = (double)MIN(v->step, v->steps) / v->steps;
                        rounded(cr, x, y, w, 6, 3);
                        set_rgb(cr, C_BAR);
                        cairo_fill(cr);
                        if (frac > 0) {
                                rounded(cr, x, y, MAX(w * frac, 6), 6, 3);
                                set_rgb(cr, C_BAR_FILL);
                                cairo_fill(cr);
                        }
                        char st[64];
                        snprintf(st, sizeof st, "Step %u of %u", MIN(v->step, v->steps), v->steps);
                        text_at(s, cr, x, y + 28, w, true, 13, C_DIM, st);
                }
                y += 34;
        }
        char hint[TEXT_MAX];
        sanitize(v->hint, hint, sizeof hint);
        y += 30;
        if (!dry)
                text_at(s, cr, x, y, w, true, 13, C_DIM, hint);
        return y + CARD_PAD - 8 - L->y;
}

static double draw_logon(Screen *s, cairo_t *cr, const ScreenView *v, Layout *L, bool dry)
{
        char buf[TEXT_MAX], lines[SCREEN_BANNER_LINES][TEXT_MAX];
        double x = L->x + CARD_PAD, w = L->w - 2 * CARD_PAD, y = L->y + CARD_PAD;
        sanitize(v->title && *v->title ? v->title : "Sign in", buf, sizeof buf);
        y += 28;
        if (!dry)
                text_at(s, cr, x, y, w, true, 26, C_TITLE, buf);
        y += 8;
        sanitize(v->banner, buf, sizeof buf);
        size_t n = 0;
        if (s->face && *buf) {
                cairo_set_font_size(cr, 14);
                n = wrap(cr, buf, w, lines, SCREEN_BANNER_LINES);
        }
        for (size_t i = 0; i < n; i++) {
                y += 20;
                if (!dry)
                        text_at(s, cr, x, y, w, true, 14, C_TEXT, lines[i]);
        }
        y += 34;
        if (!dry)
                text_at(s, cr, x, y, 0, false, 13, C_DIM, "User name");
        y += 8;
        sanitize(v->user, buf, sizeof buf);
        if (!dry)
                field(s, cr, x, y, w, 38, buf, v->focus == 0 && v->user_editable);
        y += 38 + 26;
        sanitize(v->prompt && *v->prompt ? v->prompt : "Password", buf, sizeof buf);
        /* PAM's prompts end with ": " */
        for (size_t k = strlen(buf); k > 0 && (buf[k - 1] == ' ' || buf[k - 1] == ':'); k--)
                buf[k - 1] = 0;
        if (!dry)
                text_at(s, cr, x, y, 0, false, 13, C_DIM, buf);
        y += 8;
        if (v->secret) {
                size_t k = MIN(v->answer_chars, (size_t)DOTS_MAX);
                buf[0] = 0;
                for (size_t i = 0; i < k; i++)
                        strcat(buf, "\xE2\x80\xA2");     /* • */
        } else {
                sanitize(v->answer, buf, sizeof buf);
        }
        if (!dry)
                field(s, cr, x, y, w, 38, buf, v->focus == 1);
        y += 38 + 28;
        sanitize(v->message, buf, sizeof buf);
        n = 0;
        if (s->face && *buf) {
                cairo_set_font_size(cr, 14);
                n = wrap(cr, buf, w, lines, 2);
        }
        for (size_t i = 0; i < 2; i++) {
                if (!dry && i < n)
                        text_at(s, cr, x, y, w, true, 14, v->message_error ? C_ERROR : C_INFO, lines[i]);
                y += 20;
        }
        sanitize(v->hint, buf, sizeof buf);
        y += 14;
        if (!dry)
                text_at(s, cr, x, y, w, true, 13, C_DIM, buf);
        return y + CARD_PAD - 8 - L->y;
}

static void compose(Screen *s, cairo_t *cr, const ScreenView *v)
{
        set_rgb(cr, C_BACKDROP);
        cairo_paint(cr);
        if (s->face)
                cairo_set_font_face(cr, s->face);
        Layout L = { .w = MIN(460.0, (double)s->w - 24) };
        if (L.w < 2 * CARD_PAD + 40)
                return;                                 /* too small for a card: the backdrop alone */
        L.x = floor(((double)s->w - L.w) / 2);
        double h = v->mode == SCREEN_LOGON ? draw_logon(s, cr, v, &L, true) : draw_progress(s, cr, v, &L, true);
        L.y = MAX(12.0, floor(((double)s->h - h) / 2));
        rounded(cr, L.x, L.y, L.w, h, 10);
        set_rgb(cr, C_CARD);
        cairo_fill_preserve(cr);
        set_rgb(cr, C_CARD_EDGE);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        if (v->mode == SCREEN_LOGON)
                draw_logon(s, cr, v, &L, false);
        else
                draw_progress(s, cr, v, &L, false);
}

/* Tiles that differ between fb and prev, each row's run of changed tiles as one rect; past max
 * rects, their bounding box. */
static size_t diff(const Screen *s, ConsoleRect *rects, size_t max)
{
        size_t n = 0;
        int x0 = INT32_MAX, y0 = INT32_MAX, x1 = 0, y1 = 0;
        for (uint32_t ty = 0; ty < s->h; ty += TILE) {
                uint32_t th = MIN((uint32_t)TILE, s->h - ty);
                int run = -1;
                for (uint32_t tx = 0; tx <= s->w; tx += TILE) {
                        bool changed = false;
                        if (tx < s->w) {
                                uint32_t tw = MIN((uint32_t)TILE, s->w - tx);
                                for (uint32_t y = ty; !changed && y < ty + th; y++) {
                                        size_t off = (size_t)y * s->stride + (size_t)tx * 4;
                                        changed = memcmp(s->fb + off, s->prev + off, (size_t)tw * 4) != 0;
                                }
                        }
                        if (changed && run < 0)
                                run = (int)tx;
                        if (!changed && run >= 0) {
                                ConsoleRect r = { run, (int)ty, (int)MIN(tx, s->w) - run, (int)th };
                                if (n < max)
                                        rects[n] = r;
                                n++;
                                x0 = MIN(x0, r.x);
                                y0 = MIN(y0, r.y);
                                x1 = MAX(x1, r.x + r.w);
                                y1 = MAX(y1, r.y + r.h);
                                run = -1;
                        }
                }
        }
        if (n > max) {
                rects[0] = (ConsoleRect){ x0, y0, x1 - x0, y1 - y0 };
                n = 1;
        }
        return n;
}

int screen_draw(Screen *s, const ScreenView *v, uint32_t w, uint32_t h, ConsoleRect *ret_rects, size_t max,
                size_t *ret_n)
{
        w = MAX(1u, MIN(w, (uint32_t)SCREEN_DIM_MAX));
        h = MAX(1u, MIN(h, (uint32_t)SCREEN_DIM_MAX));
        if (!s->fb || w != s->w || h != s->h) {
                uint32_t stride = (uint32_t)cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, (int)w);
                uint8_t *fb = calloc((size_t)stride, h), *prev = calloc((size_t)stride, h);
                if (!fb || !prev) {
                        free(fb);
                        free(prev);
                        return -ENOMEM;
                }
                free(s->fb);
                free(s->prev);
                s->fb = fb;
                s->prev = prev;
                s->w = w;
                s->h = h;
                s->stride = stride;
                s->full = true;
        }
        /* The previous frame is kept to find what changed. */
        memcpy(s->prev, s->fb, (size_t)s->stride * s->h);
        cairo_surface_t *surf = cairo_image_surface_create_for_data(s->fb, CAIRO_FORMAT_RGB24, (int)w, (int)h,
                                                                    (int)s->stride);
        cairo_t *cr = cairo_create(surf);
        compose(s, cr, v);
        cairo_status_t st = cairo_status(cr);
        cairo_destroy(cr);
        cairo_surface_flush(surf);
        cairo_surface_destroy(surf);
        if (st != CAIRO_STATUS_SUCCESS)
                log_warn("screen: cairo: %s", cairo_status_to_string(st));
        if (s->full && max > 0) {
                ret_rects[0] = (ConsoleRect){ 0, 0, (int)w, (int)h };
                *ret_n = 1;
                s->full = false;
                return 0;
        }
        *ret_n = diff(s, ret_rects, max);
        return 0;
}
