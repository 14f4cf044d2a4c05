/* rdp-client: a headless, scriptable RDP client for the end-to-end tests, built on
 * libfreerdp-client 2 with software gdi and no X display. It must never hang: every
 * wait has a deadline, and a watchdog thread breaks a connect the server left silent. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <freerdp/channels/rdpgfx.h>
#include <freerdp/client.h>
#include <freerdp/client/cmdline.h>
#include <freerdp/error.h>
#include <freerdp/event.h>
#include <freerdp/freerdp.h>
#include <freerdp/gdi/gdi.h>
#include <freerdp/gdi/gfx.h>
#include <freerdp/primitives.h>
#include <freerdp/scancode.h>
#include <winpr/input.h>
#include <winpr/synch.h>
#include <winpr/wlog.h>

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 10,
	EXIT_NETWORK = 11,
	EXIT_TIMEOUT = 12,
	EXIT_MISMATCH = 13,
};

#define MAX_PIXELS 64
#define MAX_KEYS 256
/* A frame counts as settled after this long without a paint: the first EndPaint
 * can be a partial update. */
#define SETTLE_MS 300
/* Lets a blocking library call past its phase deadline finish on its own before
 * the watchdog gives up and exits the process. */
#define BACKSTOP_GRACE_MS 10000
/* How long --connect-only listens for a refusal sent right after activation. */
#define CONNECT_GRACE_MS 1000

typedef enum { CODEC_LEGACY, CODEC_RFX, CODEC_GFX } Codec;

typedef struct {
	unsigned x, y;
	uint8_t r, g, b;
	unsigned tol;
} PixelExpect;

typedef struct {
	const char *host, *user, *password, *domain;
	unsigned port, width, height, timeout_s, hold_s;
	Codec codec;
	bool connect_only, wait_frame, expect_not_black, expect_change, logoff, json, verbose;
	PixelExpect pixels[MAX_PIXELS];
	size_t n_pixels;
	UINT16 keys[MAX_KEYS];
	size_t n_keys;
	bool click;
	unsigned click_x, click_y;
	const char *screenshot;
} Options;

/* Our context: rdpClientContext must come first (the library allocates ContextSize). */
typedef struct {
	rdpClientContext common;
	const Options *opt;
	HANDLE frame_event;                /* manual reset, set by every counted EndPaint */
	atomic_uint frames;                /* EndPaints that drew something */
	atomic_uint_fast64_t last_paint_ns;
	atomic_uint_fast64_t first_frame_ns; /* first non-black paint, 0 until then */
	uint64_t t0_ns;
	bool logon_error_seen;             /* LOGON_FAILED_BAD_PASSWORD is 0: a flag, not the data */
	UINT32 logon_error_data, logon_error_type;
} Client;

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	freerdp *instance;
	uint64_t abort_at_ns;    /* break freerdp_connect at this time; 0 = disarmed */
	uint64_t backstop_at_ns; /* exit the process at this time; 0 = disarmed */
	bool fired, stop;
	bool json;
} Watchdog;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long ms_since(uint64_t t0, uint64_t t)
{
	return (long)((t - t0) / 1000000u);
}

static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rdp-client: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- result line ---- */

typedef struct {
	const char *result;
	long connect_ms, first_frame_ms, change_ms;
	unsigned width, height;
	const char *error, *last_error, *error_info, *logon_error;
	const char *logoff;
} Report;

static void report_print(const Report *r, bool json)
{
	struct {
		const char *key;
		const char *s;
		long n;
		bool present;
	} f[] = {
		{ "result", r->result, 0, true },
		{ "connect_ms", NULL, r->connect_ms, r->connect_ms >= 0 },
		{ "first_frame_ms", NULL, r->first_frame_ms, r->first_frame_ms >= 0 },
		{ "change_ms", NULL, r->change_ms, r->change_ms >= 0 },
		{ "width", NULL, (long)r->width, r->width > 0 },
		{ "height", NULL, (long)r->height, r->height > 0 },
		{ "error", r->error, 0, r->error != NULL },
		{ "last_error", r->last_error, 0, r->last_error != NULL },
		{ "error_info", r->error_info, 0, r->error_info != NULL },
		{ "logon_error", r->logon_error, 0, r->logon_error != NULL },
		{ "logoff", r->logoff, 0, r->logoff != NULL },
	};
	bool first = true;

	if (json)
		putchar('{');
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		if (!f[i].present)
			continue;
		/* Values are library constant names or our own words: no quoting needed
		 * beyond JSON's, and never a space in the key=value form. */
		if (json) {
			if (f[i].s)
				printf("%s\"%s\":\"%s\"", first ? "" : ",", f[i].key, f[i].s);
			else
				printf("%s\"%s\":%ld", first ? "" : ",", f[i].key, f[i].n);
		} else {
			if (f[i].s)
				printf("%s%s=%s", first ? "" : " ", f[i].key, f[i].s);
			else
				printf("%s%s=%ld", first ? "" : " ", f[i].key, f[i].n);
		}
		first = false;
	}
	puts(json ? "}" : "");
	fflush(stdout);
}

/* ---- watchdog ---- */

/* freerdp_connect's X.224 and TLS reads block and ignore the abort event, so a
 * server that accepts TCP and stays silent would hang it for a minute: abort and
 * shut the sockets down under it. */
static void watchdog_break_connect(freerdp *instance)
{
	void *rfds[64], *wfds[64];
	int rcount = 0, wcount = 0;

	freerdp_abort_connect(instance);
	if (!freerdp_get_fds(instance, rfds, &rcount, wfds, &wcount))
		return;
	for (int i = 0; i < rcount && i < 64; i++)
		shutdown((int)(intptr_t)rfds[i], SHUT_RDWR);
}

static void *watchdog_run(void *arg)
{
	Watchdog *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		uint64_t now = now_ns();
		uint64_t next = 0;

		if (w->abort_at_ns && now >= w->abort_at_ns) {
			w->abort_at_ns = 0;
			w->fired = true;
			watchdog_break_connect(w->instance);
		}
		if (w->backstop_at_ns && now >= w->backstop_at_ns) {
			Report r = { .result = "timeout", .connect_ms = -1, .first_frame_ms = -1,
				     .change_ms = -1, .error = "backstop" };
			note("a library call blocked past the deadline; giving up");
			report_print(&r, w->json);
			_exit(EXIT_TIMEOUT);
		}
		if (w->abort_at_ns)
			next = w->abort_at_ns;
		if (w->backstop_at_ns && (!next || w->backstop_at_ns < next))
			next = w->backstop_at_ns;
		if (!next) {
			pthread_cond_wait(&w->cond, &w->lock);
		} else {
			struct timespec ts = { .tv_sec = (time_t)(next / 1000000000u),
					       .tv_nsec = (long)(next % 1000000000u) };
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int watchdog_start(Watchdog *w, pthread_t *ret)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	return -pthread_create(ret, NULL, watchdog_run, w);
}

static void watchdog_set(Watchdog *w, uint64_t abort_at, uint64_t backstop_at)
{
	pthread_mutex_lock(&w->lock);
	w->abort_at_ns = abort_at;
	w->backstop_at_ns = backstop_at;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Disarms the connect abort; tells whether it had already fired. */
static bool watchdog_disarm(Watchdog *w)
{
	bool fired;

	pthread_mutex_lock(&w->lock);
	w->abort_at_ns = 0;
	fired = w->fired;
	pthread_mutex_unlock(&w->lock);
	return fired;
}

static void watchdog_stop(Watchdog *w, pthread_t t)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(t, NULL);
}

/* ---- pixels ---- */

static bool buffer_is_black(const rdpGdi *gdi)
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

static void pixel_at(const rdpGdi *gdi, unsigned x, unsigned y, uint8_t rgb[3])
{
	const BYTE *p = gdi->primary_buffer + (size_t)y * gdi->stride + 4u * x;
	rgb[0] = p[2];
	rgb[1] = p[1];
	rgb[2] = p[0];
}

/* Copies the frame as packed RGB; the caller frees. */
static uint8_t *frame_snapshot(rdpContext *ctx, unsigned *ret_w, unsigned *ret_h)
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

static int ppm_write(const char *path, const uint8_t *rgb, unsigned w, unsigned h)
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

/* ---- library callbacks ---- */

static BOOL on_begin_paint(rdpContext *ctx)
{
	ctx->gdi->primary->hdc->hwnd->invalid->null = TRUE;
	return TRUE;
}

/* Runs on the drdynvc thread under GFX, on the main thread otherwise; the library
 * holds update->mux around it. */
static BOOL on_end_paint(rdpContext *ctx)
{
	Client *c = (Client *)ctx;
	rdpGdi *gdi = ctx->gdi;
	uint64_t t = now_ns();

	if (gdi->primary->hdc->hwnd->invalid->null)
		return TRUE;
	atomic_store(&c->last_paint_ns, t);
	if (!atomic_load(&c->first_frame_ns) && !buffer_is_black(gdi))
		atomic_store(&c->first_frame_ns, t);
	atomic_fetch_add(&c->frames, 1);
	SetEvent(c->frame_event);
	return TRUE;
}

/* A client's DesktopResize is NULL, and GFX ResetGraphics calls it unchecked. */
static BOOL on_desktop_resize(rdpContext *ctx)
{
	rdpSettings *s = ctx->settings;
	return gdi_resize(ctx->gdi, freerdp_settings_get_uint32(s, FreeRDP_DesktopWidth),
			  freerdp_settings_get_uint32(s, FreeRDP_DesktopHeight));
}

static void on_channel_connected(void *context, ChannelConnectedEventArgs *e)
{
	rdpContext *ctx = context;
	if (ctx->gdi && strcmp(e->name, RDPGFX_DVC_CHANNEL_NAME) == 0)
		gdi_graphics_pipeline_init(ctx->gdi, (RdpgfxClientContext *)e->pInterface);
}

static void on_channel_disconnected(void *context, ChannelDisconnectedEventArgs *e)
{
	rdpContext *ctx = context;
	if (ctx->gdi && strcmp(e->name, RDPGFX_DVC_CHANNEL_NAME) == 0)
		gdi_graphics_pipeline_uninit(ctx->gdi, (RdpgfxClientContext *)e->pInterface);
}

static BOOL on_pre_connect(freerdp *instance)
{
	rdpContext *ctx = instance->context;
	Client *c = (Client *)ctx;

	if (c->opt->codec != CODEC_GFX)
		return TRUE;
	/* Both halves are needed: without the addins the server falls back to RFX,
	 * without the pipeline init one frame arrives and then nothing, silently. */
	PubSub_SubscribeChannelConnected(ctx->pubSub, on_channel_connected);
	PubSub_SubscribeChannelDisconnected(ctx->pubSub, on_channel_disconnected);
	return freerdp_client_load_addins(ctx->channels, ctx->settings);
}

static BOOL on_post_connect(freerdp *instance)
{
	rdpUpdate *u = instance->update;

	if (!gdi_init(instance, PIXEL_FORMAT_BGRX32)) {
		note("gdi_init failed");
		return FALSE;
	}
	u->BeginPaint = on_begin_paint;
	u->EndPaint = on_end_paint;
	u->DesktopResize = on_desktop_resize;
	return TRUE;
}

static void on_post_disconnect(freerdp *instance)
{
	gdi_free(instance);
}

static DWORD on_verify_certificate(freerdp *instance, const char *host, UINT16 port,
				   const char *common_name, const char *subject, const char *issuer,
				   const char *fingerprint, DWORD flags)
{
	return 2; /* accept for this session only; never store */
}

static DWORD on_verify_changed_certificate(freerdp *instance, const char *host, UINT16 port,
					   const char *common_name, const char *subject,
					   const char *issuer, const char *new_fingerprint,
					   const char *old_subject, const char *old_issuer,
					   const char *old_fingerprint, DWORD flags)
{
	return 2;
}

/* Never prompt: the credentials are on the command line or the logon fails. */
static BOOL on_authenticate(freerdp *instance, char **username, char **password, char **domain)
{
	return FALSE;
}

static int on_logon_error_info(freerdp *instance, UINT32 data, UINT32 type)
{
	Client *c = (Client *)instance->context;

	if (c->opt->verbose)
		note("logon error info: %s / %s", freerdp_get_logon_error_info_type(type),
		     freerdp_get_logon_error_info_data(data));
	if (type == LOGON_MSG_SESSION_CONTINUE)
		return 1;
	c->logon_error_seen = true;
	c->logon_error_data = data;
	c->logon_error_type = type;
	return 1;
}

static BOOL client_new(freerdp *instance, rdpContext *ctx)
{
	Client *c = (Client *)ctx;

	instance->PreConnect = on_pre_connect;
	instance->PostConnect = on_post_connect;
	instance->PostDisconnect = on_post_disconnect;
	instance->VerifyCertificateEx = on_verify_certificate;
	instance->VerifyChangedCertificateEx = on_verify_changed_certificate;
	instance->Authenticate = on_authenticate;
	instance->LogonErrorInfo = on_logon_error_info;
	c->frame_event = CreateEvent(NULL, TRUE, FALSE, NULL);
	return c->frame_event != NULL;
}

static void client_free(freerdp *instance, rdpContext *ctx)
{
	Client *c = (Client *)ctx;
	if (c->frame_event)
		CloseHandle(c->frame_event);
}

/* ---- event loop ---- */

typedef bool (*Predicate)(Client *c, void *arg);

/* Pumps the connection until pred holds (0), the deadline passes (-ETIMEDOUT) or the
 * session ends (-ECONNRESET). A NULL pred pumps until the deadline and returns 0. */
static int pump(Client *c, uint64_t deadline_ns, Predicate pred, void *arg)
{
	rdpContext *ctx = &c->common.context;

	for (;;) {
		HANDLE h[MAXIMUM_WAIT_OBJECTS];
		DWORD n;
		uint64_t now;

		if (pred && pred(c, arg))
			return 0;
		now = now_ns();
		if (now >= deadline_ns)
			return pred ? -ETIMEDOUT : 0;
		n = freerdp_get_event_handles(ctx, h, MAXIMUM_WAIT_OBJECTS - 1);
		if (n == 0) {
			note("freerdp_get_event_handles failed");
			return -ECONNRESET;
		}
		h[n++] = c->frame_event;
		DWORD wait_ms = (DWORD)((deadline_ns - now) / 1000000u) + 1;
		WaitForMultipleObjects(n, h, FALSE, wait_ms < 100 ? wait_ms : 100);
		ResetEvent(c->frame_event);
		if (!freerdp_check_event_handles(ctx) || freerdp_shall_disconnect(ctx->instance))
			return -ECONNRESET;
	}
}

static bool pred_first_frame(Client *c, void *arg)
{
	return atomic_load(&c->first_frame_ns) != 0;
}

static bool pred_any_paint(Client *c, void *arg)
{
	return atomic_load(&c->frames) > 0;
}

static bool pred_settled(Client *c, void *arg)
{
	uint64_t last = atomic_load(&c->last_paint_ns);
	return last && now_ns() - last >= (uint64_t)SETTLE_MS * 1000000u;
}

static bool pixel_matches(const PixelExpect *e, const uint8_t rgb[3])
{
	return abs(rgb[0] - e->r) <= (int)e->tol && abs(rgb[1] - e->g) <= (int)e->tol &&
	       abs(rgb[2] - e->b) <= (int)e->tol;
}

/* All --expect-pixel and --expect-not-black hold on the current frame. */
static bool pred_pixels(Client *c, void *arg)
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

typedef struct {
	const uint8_t *before;
	unsigned w, h;
} ChangeArg;

/* Differs from the snapshot by more than codec noise in at least one pixel. */
static bool pred_changed(Client *c, void *arg)
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
static void pixels_explain(Client *c)
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

/* ---- error classification ---- */

/* The server refused if it said why: a LogonErrorInfo other than "continue", or an
 * ERRINFO (class 1). A plain drop or client-side connect error (class 2) is the
 * network: a server that only drops the connection looks the same, by design of 2.11. */
static int classify_failure(Client *c, Report *r)
{
	rdpContext *ctx = &c->common.context;
	UINT32 last = freerdp_get_last_error(ctx);
	UINT32 info = freerdp_error_info(ctx->instance);

	r->last_error = freerdp_get_last_error_name(last);
	if (info)
		r->error_info = freerdp_get_error_info_name(info);
	if (c->logon_error_seen)
		r->logon_error = freerdp_get_logon_error_info_data(c->logon_error_data);
	note("session failed: %s (%s)%s%s", r->last_error, freerdp_get_last_error_string(last),
	     info ? ", server said " : "", info ? freerdp_get_error_info_string(info) : "");
	if (c->logon_error_seen || (last >> 16) == 1 || info != 0) {
		r->result = "refused";
		return EXIT_REFUSED;
	}
	r->result = "network";
	return EXIT_NETWORK;
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fputs("usage: rdp-client --host H --port P --user U --password PW [options]\n"
	      "A headless RDP client (TLS, certificate ignored) for end-to-end tests.\n"
	      "\n"
	      "  --domain D             logon domain\n"
	      "  --width W --height H   requested size (default 1024x768; the server decides)\n"
	      "  --timeout S            bound on every wait, in seconds (default 30)\n"
	      "  --codec legacy|rfx|gfx what to offer the server (default legacy: exact pixels)\n"
	      "  --connect-only         stop once the session is active\n"
	      "  --wait-frame           wait for the first non-black frame\n"
	      "  --expect-pixel X,Y,RRGGBB[,TOL]  pixel within TOL per channel (default 16);\n"
	      "                         repeatable; waits up to the timeout for it to hold\n"
	      "  --expect-not-black     the frame is not entirely black\n"
	      "  --click X,Y            move the pointer to X,Y and click before the keys\n"
	      "  --key NAME|SCANCODE    press and release a key; repeatable. NAME: a letter,\n"
	      "                         digit, enter, space, tab, esc, backspace, up, down,\n"
	      "                         left, right, F1..F24, or a winpr name (VK_PRIOR). SCANCODE\n"
	      "                         a set-1 make code (0x1e), 0xe0NN for extended keys\n"
	      "  --expect-change        after the keys, the screen must change\n"
	      "  --screenshot FILE.ppm  write the last frame as a binary PPM\n"
	      "  --hold S               stay connected S seconds before leaving\n"
	      "  --logoff               leave with a logoff (FreeRDP 2 has none: disconnects)\n"
	      "  --json                 print the result as JSON instead of key=value\n"
	      "  --verbose              FreeRDP's log at WARN on stderr\n"
	      "\n"
	      "Prints one line: result=ok connect_ms=N first_frame_ms=N width=N height=N ...\n"
	      "Exit status:\n"
	      "   0  ok\n"
	      "   2  usage error\n"
	      "  10  logon refused by the server (logon error info or an ERRINFO code)\n"
	      "  11  cannot connect, network error, or the server dropped the connection\n"
	      "  12  timeout: server silent, or no frame in time\n"
	      "  13  a pixel, not-black or change expectation failed\n",
	      f);
}

static int parse_uint(const char *s, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static int parse_pixel(const char *s, PixelExpect *ret)
{
	unsigned x, y, tol = 16;
	char hex[7];
	int n = 0;
	unsigned long rgb;
	char *end;

	if (sscanf(s, "%u,%u,%6[0-9a-fA-F]%n", &x, &y, hex, &n) != 3 || strlen(hex) != 6)
		return -EINVAL;
	if (s[n] == ',') {
		if (parse_uint(s + n + 1, 255, &tol) < 0)
			return -EINVAL;
	} else if (s[n]) {
		return -EINVAL;
	}
	rgb = strtoul(hex, &end, 16);
	*ret = (PixelExpect){ .x = x, .y = y, .r = (uint8_t)(rgb >> 16), .g = (uint8_t)(rgb >> 8),
			      .b = (uint8_t)rgb, .tol = tol };
	return 0;
}

static int parse_key(const char *s, UINT16 *ret)
{
	static const struct {
		const char *alias, *vk;
	} aliases[] = {
		{ "enter", "VK_RETURN" }, { "return", "VK_RETURN" }, { "space", "VK_SPACE" },
		{ "tab", "VK_TAB" },      { "esc", "VK_ESCAPE" },    { "escape", "VK_ESCAPE" },
		{ "backspace", "VK_BACK" }, { "up", "VK_UP" },       { "down", "VK_DOWN" },
		{ "left", "VK_LEFT" },    { "right", "VK_RIGHT" },   { "home", "VK_HOME" },
		{ "end", "VK_END" },      { "delete", "VK_DELETE" }, { "shift", "VK_LSHIFT" },
		{ "ctrl", "VK_LCONTROL" }, { "alt", "VK_LMENU" },
	};
	DWORD vk = 0, sc;
	unsigned code;

	if (s[0] >= '0' && s[0] <= '9' && s[1]) {
		/* A number of more than one digit is a scancode; a single digit is the key. */
		if (parse_uint(s, 0xffff, &code) < 0)
			return -EINVAL;
		if (code <= 0x7f)
			*ret = MAKE_RDP_SCANCODE(code, FALSE);
		else if ((code & 0xff00) == 0xe000 || (code & 0xff00) == KBDEXT)
			*ret = MAKE_RDP_SCANCODE(code & 0xff, TRUE);
		else
			return -EINVAL;
		return 0;
	}
	if (!s[1] && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		vk = VK_KEY_A + (DWORD)((s[0] | 0x20) - 'a');
	else if (!s[1] && s[0] >= '0' && s[0] <= '9')
		vk = VK_KEY_0 + (DWORD)(s[0] - '0');
	for (size_t i = 0; !vk && i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(s, aliases[i].alias) == 0)
			vk = GetVirtualKeyCodeFromName(aliases[i].vk);
	/* winpr answers VK_NONE, not 0, for a name it does not know. */
	if (!vk || vk == VK_NONE)
		vk = GetVirtualKeyCodeFromName(s);
	if ((!vk || vk == VK_NONE) && strlen(s) < 28) {
		/* "F12" or "prior" for winpr's "VK_F12", "VK_PRIOR". */
		char name[32] = "VK_";
		for (size_t i = 0; s[i]; i++)
			name[3 + i] = (char)((s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i]);
		vk = GetVirtualKeyCodeFromName(name);
	}
	if (!vk || vk == VK_NONE)
		return -EINVAL;
	/* Extended keys (arrows, Home, ...) are only in winpr's table under vk|KBDEXT. */
	sc = GetVirtualScanCodeFromVirtualKeyCode(vk, 4);
	if (!RDP_SCANCODE_CODE(sc))
		sc = GetVirtualScanCodeFromVirtualKeyCode(vk | KBDEXT, 4);
	if (!RDP_SCANCODE_CODE(sc))
		return -EINVAL;
	*ret = (UINT16)sc;
	return 0;
}

static int parse_options(int argc, char **argv, Options *o)
{
	enum {
		O_HOST = 256, O_PORT, O_USER, O_PASSWORD, O_DOMAIN, O_WIDTH, O_HEIGHT, O_TIMEOUT,
		O_CODEC, O_CONNECT_ONLY, O_WAIT_FRAME, O_PIXEL, O_NOT_BLACK, O_CLICK, O_KEY,
		O_CHANGE, O_SCREENSHOT, O_HOLD, O_LOGOFF, O_JSON, O_VERBOSE, O_HELP,
	};
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, O_HOST },
		{ "port", required_argument, NULL, O_PORT },
		{ "user", required_argument, NULL, O_USER },
		{ "password", required_argument, NULL, O_PASSWORD },
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "width", required_argument, NULL, O_WIDTH },
		{ "height", required_argument, NULL, O_HEIGHT },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "codec", required_argument, NULL, O_CODEC },
		{ "connect-only", no_argument, NULL, O_CONNECT_ONLY },
		{ "wait-frame", no_argument, NULL, O_WAIT_FRAME },
		{ "expect-pixel", required_argument, NULL, O_PIXEL },
		{ "expect-not-black", no_argument, NULL, O_NOT_BLACK },
		{ "click", required_argument, NULL, O_CLICK },
		{ "key", required_argument, NULL, O_KEY },
		{ "expect-change", no_argument, NULL, O_CHANGE },
		{ "screenshot", required_argument, NULL, O_SCREENSHOT },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "logoff", no_argument, NULL, O_LOGOFF },
		{ "json", no_argument, NULL, O_JSON },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	int opt;

	*o = (Options){ .port = 3389, .width = 1024, .height = 768, .timeout_s = 30 };
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = 0;
		switch (opt) {
		case O_HOST: o->host = optarg; break;
		case O_PORT: r = parse_uint(optarg, 65535, &o->port); break;
		case O_USER: o->user = optarg; break;
		case O_PASSWORD: o->password = optarg; break;
		case O_DOMAIN: o->domain = optarg; break;
		case O_WIDTH: r = parse_uint(optarg, 8192, &o->width); break;
		case O_HEIGHT: r = parse_uint(optarg, 8192, &o->height); break;
		case O_TIMEOUT: r = parse_uint(optarg, 3600, &o->timeout_s); break;
		case O_HOLD: r = parse_uint(optarg, 86400, &o->hold_s); break;
		case O_CODEC:
			if (strcmp(optarg, "legacy") == 0)
				o->codec = CODEC_LEGACY;
			else if (strcmp(optarg, "rfx") == 0)
				o->codec = CODEC_RFX;
			else if (strcmp(optarg, "gfx") == 0)
				o->codec = CODEC_GFX;
			else
				r = -EINVAL;
			break;
		case O_CONNECT_ONLY: o->connect_only = true; break;
		case O_WAIT_FRAME: o->wait_frame = true; break;
		case O_NOT_BLACK: o->expect_not_black = true; break;
		case O_CHANGE: o->expect_change = true; break;
		case O_LOGOFF: o->logoff = true; break;
		case O_JSON: o->json = true; break;
		case O_VERBOSE: o->verbose = true; break;
		case O_SCREENSHOT: o->screenshot = optarg; break;
		case O_PIXEL:
			if (o->n_pixels == MAX_PIXELS)
				r = -E2BIG;
			else
				r = parse_pixel(optarg, &o->pixels[o->n_pixels++]);
			break;
		case O_KEY:
			if (o->n_keys == MAX_KEYS)
				r = -E2BIG;
			else
				r = parse_key(optarg, &o->keys[o->n_keys++]);
			break;
		case O_CLICK: {
			int n = 0;
			if (sscanf(optarg, "%u,%u%n", &o->click_x, &o->click_y, &n) != 2 || optarg[n] ||
			    o->click_x > 0xffff || o->click_y > 0xffff)
				r = -EINVAL;
			o->click = true;
			break;
		}
		case 'h':
		case O_HELP: usage(stdout); exit(EXIT_OK);
		default: usage(stderr); return -EINVAL;
		}
		if (r < 0) {
			note("--%s %s: invalid value", longopts[opt - O_HOST].name, optarg);
			return r;
		}
	}
	if (optind < argc) {
		note("unexpected argument %s", argv[optind]);
		return -EINVAL;
	}
	if (!o->host || !o->user || !o->password) {
		note("--host, --user and --password are required (see --help)");
		return -EINVAL;
	}
	if (o->timeout_s == 0) {
		note("--timeout must be at least 1");
		return -EINVAL;
	}
	if (o->connect_only && (o->wait_frame || o->n_pixels || o->expect_not_black || o->n_keys ||
				o->click || o->expect_change || o->screenshot || o->hold_s)) {
		note("--connect-only excludes frame, pixel, key, screenshot and hold options");
		return -EINVAL;
	}
	if (o->expect_change && !o->n_keys && !o->click) {
		note("--expect-change needs a --key or --click to cause the change");
		return -EINVAL;
	}
	return 0;
}

/* ---- settings ---- */

static int config_dir_remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	remove(path);
	return 0;
}

static int settings_apply(rdpSettings *s, const Options *o, const char *config_dir)
{
	bool ok = true;
	UINT32 timeout_ms = o->timeout_s * 1000u;

	ok &= freerdp_settings_set_string(s, FreeRDP_ServerHostname, o->host);
	ok &= freerdp_settings_set_uint32(s, FreeRDP_ServerPort, o->port);
	ok &= freerdp_settings_set_string(s, FreeRDP_Username, o->user);
	ok &= freerdp_settings_set_string(s, FreeRDP_Password, o->password);
	if (o->domain)
		ok &= freerdp_settings_set_string(s, FreeRDP_Domain, o->domain);
	/* TLS setup writes <ConfigPath>/certs and /server: never HOME or XDG paths. */
	ok &= freerdp_settings_set_string(s, FreeRDP_ConfigPath, config_dir);
	ok &= freerdp_settings_set_bool(s, FreeRDP_IgnoreCertificate, TRUE);
	/* NLA+TLS offered, RDP security not: a TLS-only server picks TLS. */
	ok &= freerdp_settings_set_bool(s, FreeRDP_NlaSecurity, TRUE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_TlsSecurity, TRUE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_RdpSecurity, FALSE);
	ok &= freerdp_settings_set_uint32(s, FreeRDP_DesktopWidth, o->width);
	ok &= freerdp_settings_set_uint32(s, FreeRDP_DesktopHeight, o->height);
	ok &= freerdp_settings_set_uint32(s, FreeRDP_ColorDepth, 32);
	ok &= freerdp_settings_set_bool(s, FreeRDP_SoftwareGdi, TRUE);
	ok &= freerdp_settings_set_uint32(s, FreeRDP_TcpConnectTimeout, timeout_ms);
	ok &= freerdp_settings_set_uint32(s, FreeRDP_TcpAckTimeout, timeout_ms);
	ok &= freerdp_settings_set_bool(s, FreeRDP_AutoReconnectionEnabled, FALSE);
	/* Fewer channels: each static one costs an MCS join round trip and a thread. */
	ok &= freerdp_settings_set_bool(s, FreeRDP_RedirectClipboard, FALSE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_SupportHeartbeatPdu, FALSE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_NetworkAutoDetect, FALSE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_SupportMultitransport, FALSE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_DeviceRedirection, FALSE);
	ok &= freerdp_settings_set_bool(s, FreeRDP_AudioPlayback, FALSE);
	if (o->codec == CODEC_RFX) {
		ok &= freerdp_settings_set_bool(s, FreeRDP_RemoteFxCodec, TRUE);
		ok &= freerdp_settings_set_bool(s, FreeRDP_FastPathOutput, TRUE);
		ok &= freerdp_settings_set_bool(s, FreeRDP_FrameMarkerCommandEnabled, TRUE);
	} else if (o->codec == CODEC_GFX) {
		ok &= freerdp_settings_set_bool(s, FreeRDP_SupportGraphicsPipeline, TRUE);
		ok &= freerdp_settings_set_bool(s, FreeRDP_FastPathOutput, TRUE);
		ok &= freerdp_settings_set_bool(s, FreeRDP_GfxH264, TRUE);
	}
	return ok ? 0 : -EINVAL;
}

/* ---- the script ---- */

static void input_key(rdpInput *in, UINT16 sc)
{
	freerdp_input_send_keyboard_event_ex(in, TRUE, sc);
	freerdp_input_send_keyboard_event_ex(in, FALSE, sc);
}

static void input_click(rdpInput *in, unsigned x, unsigned y)
{
	freerdp_input_send_mouse_event(in, PTR_FLAGS_MOVE, (UINT16)x, (UINT16)y);
	freerdp_input_send_mouse_event(in, PTR_FLAGS_DOWN | PTR_FLAGS_BUTTON1, (UINT16)x, (UINT16)y);
	freerdp_input_send_mouse_event(in, PTR_FLAGS_BUTTON1, (UINT16)x, (UINT16)y);
}

/* Everything after a successful connect; fills r and returns the exit status. */
static int session_run(Client *c, Watchdog *w, Report *r)
{
	const Options *o = c->opt;
	rdpContext *ctx = &c->common.context;
	uint64_t span = (uint64_t)o->timeout_s * 1000000000u;
	uint64_t deadline = c->t0_ns + span;
	int st = EXIT_OK, k;

	watchdog_set(w, 0, deadline + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
	if (o->connect_only) {
		/* freerdp_connect returns TRUE even when the server refuses right after
		 * activation: give it until the first paint or CONNECT_GRACE_MS to say so. */
		uint64_t end = now_ns() + (uint64_t)CONNECT_GRACE_MS * 1000000u;
		k = pump(c, end < deadline ? end : deadline, pred_any_paint, NULL);
		return k == -ECONNRESET ? classify_failure(c, r) : EXIT_OK;
	}

	if (o->wait_frame) {
		k = pump(c, deadline, pred_first_frame, NULL);
		if (k == -ETIMEDOUT) {
			note("no non-black frame within %u s", o->timeout_s);
			r->result = "timeout";
			r->error = atomic_load(&c->frames) ? "frame_black" : "no_frame";
			return EXIT_TIMEOUT;
		}
		if (k < 0)
			return classify_failure(c, r);
		/* Let a partial first update finish before sampling. */
		pump(c, now_ns() + 2000000000u < deadline ? now_ns() + 2000000000u : deadline,
		     pred_settled, NULL);
	}

	if (o->n_pixels || o->expect_not_black) {
		k = pump(c, deadline, pred_pixels, NULL);
		if (k == -ETIMEDOUT && !atomic_load(&c->frames)) {
			note("no frame within %u s", o->timeout_s);
			r->result = "timeout";
			r->error = "no_frame";
			return EXIT_TIMEOUT;
		}
		if (k == -ETIMEDOUT) {
			pixels_explain(c);
			r->result = "mismatch";
			r->error = "pixel";
			st = EXIT_MISMATCH;
			goto screenshot;
		}
		if (k < 0)
			return classify_failure(c, r);
	}

	if (o->n_keys || o->click) {
		ChangeArg before = { 0 };
		uint64_t t_sent, key_deadline;

		if (o->expect_change) {
			/* Compare against a settled frame, not one still being drawn. */
			uint64_t settle_end = now_ns() + 3000000000u;
			k = pump(c, settle_end, pred_settled, NULL);
			if (k == -ECONNRESET)
				return classify_failure(c, r);
			before.before = frame_snapshot(ctx, &before.w, &before.h);
			if (!before.before) {
				note("no frame to compare against");
				r->result = "timeout";
				r->error = "no_frame";
				return EXIT_TIMEOUT;
			}
		}
		if (o->click)
			input_click(ctx->input, o->click_x, o->click_y);
		for (size_t i = 0; i < o->n_keys; i++)
			input_key(ctx->input, o->keys[i]);
		t_sent = now_ns();
		if (o->expect_change) {
			key_deadline = t_sent + span;
			watchdog_set(w, 0, key_deadline + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
			k = pump(c, key_deadline, pred_changed, &before);
			free((void *)before.before);
			if (k == -ECONNRESET)
				return classify_failure(c, r);
			if (k == -ETIMEDOUT) {
				note("screen did not change within %u s of the input", o->timeout_s);
				r->result = "mismatch";
				r->error = "no_change";
				st = EXIT_MISMATCH;
				goto screenshot;
			}
			r->change_ms = ms_since(t_sent, now_ns());
		}
	}

	if (o->hold_s) {
		uint64_t hold_end = now_ns() + (uint64_t)o->hold_s * 1000000000u;
		watchdog_set(w, 0, hold_end + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
		if (pump(c, hold_end, NULL, NULL) < 0)
			return classify_failure(c, r);
	}

screenshot:
	if (o->screenshot) {
		unsigned sw, sh;
		uint8_t *rgb;

		/* A screenshot taken mid-paint shows half a frame. */
		uint64_t settle_end = now_ns() + 1000000000u;
		watchdog_set(w, 0, settle_end + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
		if (pump(c, settle_end, pred_settled, NULL) == -ECONNRESET && st == EXIT_OK)
			return classify_failure(c, r);
		rgb = frame_snapshot(ctx, &sw, &sh);
		if (!rgb || ppm_write(o->screenshot, rgb, sw, sh) < 0) {
			free(rgb);
			if (st == EXIT_OK) {
				r->result = "error";
				r->error = "screenshot";
				st = EXIT_USAGE;
			}
		} else {
			free(rgb);
		}
	}
	return st;
}

int main(int argc, char **argv)
{
	Options opt;
	RDP_CLIENT_ENTRY_POINTS ep = { 0 };
	rdpContext *ctx;
	Client *c;
	Watchdog w = { 0 };
	pthread_t wt;
	char config_dir[] = "/tmp/rdp-client.XXXXXX";
	Report r = { .result = "ok", .connect_ms = -1, .first_frame_ms = -1, .change_ms = -1 };
	int st;
	BOOL connected;

	if (parse_options(argc, argv, &opt) < 0)
		return EXIT_USAGE;

	/* Otherwise the first primitives_get() runs a 300 ms YUV benchmark. */
	primitives_set_hints(PRIMITIVES_ONLY_CPU);
	if (!getenv("WLOG_LEVEL"))
		WLog_SetLogLevel(WLog_GetRoot(), opt.verbose ? WLOG_WARN : WLOG_OFF);

	if (!mkdtemp(config_dir)) {
		note("mkdtemp: %s", strerror(errno));
		return EXIT_NETWORK;
	}
	ep.Size = sizeof(ep);
	ep.Version = RDP_CLIENT_INTERFACE_VERSION;
	ep.ContextSize = sizeof(Client);
	ep.ClientNew = client_new;
	ep.ClientFree = client_free;
	ctx = freerdp_client_context_new(&ep);
	if (!ctx) {
		note("cannot create the FreeRDP context");
		nftw(config_dir, config_dir_remove_one, 8, FTW_DEPTH | FTW_PHYS);
		return EXIT_NETWORK;
	}
	c = (Client *)ctx;
	c->opt = &opt;
	if (settings_apply(ctx->settings, &opt, config_dir) < 0 || freerdp_client_start(ctx) != 0) {
		note("cannot apply the settings");
		st = EXIT_USAGE;
		r.result = "error";
		goto out_free;
	}

	w.instance = ctx->instance;
	w.json = opt.json;
	if (watchdog_start(&w, &wt) < 0) {
		note("cannot start the watchdog thread");
		st = EXIT_NETWORK;
		r.result = "error";
		goto out_stop;
	}

	c->t0_ns = now_ns();
	{
		uint64_t deadline = c->t0_ns + (uint64_t)opt.timeout_s * 1000000000u;
		watchdog_set(&w, deadline, deadline + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
	}
	connected = freerdp_connect(ctx->instance);
	if (watchdog_disarm(&w)) {
		note("no answer from %s:%u within %u s", opt.host, opt.port, opt.timeout_s);
		r.result = "timeout";
		r.error = "connect";
		st = EXIT_TIMEOUT;
		goto out_disconnect;
	}
	if (!connected) {
		st = classify_failure(c, &r);
		goto out_disconnect;
	}
	r.connect_ms = ms_since(c->t0_ns, now_ns());
	r.width = (UINT32)ctx->gdi->width;
	r.height = (UINT32)ctx->gdi->height;

	st = session_run(c, &w, &r);

	if (atomic_load(&c->first_frame_ns))
		r.first_frame_ms = ms_since(c->t0_ns, atomic_load(&c->first_frame_ns));
	if (ctx->gdi) {
		r.width = (UINT32)ctx->gdi->width;
		r.height = (UINT32)ctx->gdi->height;
	}
	if (opt.logoff && st == EXIT_OK)
		/* FreeRDP 2.11 exports no client shutdown-request PDU: the server sees the
		 * connection close, as with any disconnect. */
		r.logoff = "disconnect";

out_disconnect:
	/* freerdp_disconnect can block writing to a dead peer: keep the backstop. */
	watchdog_set(&w, 0, now_ns() + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
	freerdp_disconnect(ctx->instance);
	watchdog_stop(&w, wt);
out_stop:
	freerdp_client_stop(ctx);
out_free:
	freerdp_client_context_free(ctx);
	nftw(config_dir, config_dir_remove_one, 8, FTW_DEPTH | FTW_PHYS);
	report_print(&r, opt.json);
	return st;
}
