/* rdp-client: a headless, scriptable RDP client for the end-to-end tests, built on
 * libfreerdp-client 2 with software gdi and no X display. It must never hang: every
 * wait has a deadline, and a watchdog thread breaks a connect the server left silent. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include <winpr/synch.h>
#include <winpr/wlog.h>

#include "rdp-client.h"


uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long ms_since(uint64_t t0, uint64_t t)
{
	return (long)((t - t0) / 1000000u);
}

void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rdp-client: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- result line ---- */


void report_print(const Report *r, bool json)
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
		{ "desktop_ms", NULL, r->desktop_ms, r->desktop_ms >= 0 },
		{ "change_ms", NULL, r->change_ms, r->change_ms >= 0 },
		{ "after_ms", NULL, r->after_ms, r->after_ms >= 0 },
		{ "black_frames", NULL, r->black_frames, r->black_frames >= 0 },
		{ "gfx_avc420", NULL, r->gfx_avc420, r->gfx_avc420 >= 0 },
		{ "gfx_planar", NULL, r->gfx_planar, r->gfx_planar >= 0 },
		{ "gfx_other", NULL, r->gfx_other, r->gfx_other >= 0 },
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
	if (c->opt->wait_desktop && !atomic_load(&c->desktop_ns) && !buffer_is_black(gdi) && !buffer_is_slate_screen(gdi))
		atomic_store(&c->desktop_ns, t);
	else if (c->opt->never_black && atomic_load(&c->frames) > 0 && buffer_is_black(gdi))
		atomic_fetch_add(&c->black_frames, 1);
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

typedef UINT (*SurfaceCommandFn)(RdpgfxClientContext *gfx, const RDPGFX_SURFACE_COMMAND *cmd);

/* Counts what the server sends through the pipeline, then lets the library decode it. */
static UINT on_gfx_surface_command(RdpgfxClientContext *gfx, const RDPGFX_SURFACE_COMMAND *cmd)
{
	/* gdi_graphics_pipeline_init made custom the gdi, whose context is ours. */
	Client *c = (Client *)((rdpGdi *)gfx->custom)->context;
	if (cmd->codecId == RDPGFX_CODECID_AVC420)
		atomic_fetch_add(&c->gfx_avc420, 1);
	else if (cmd->codecId == RDPGFX_CODECID_PLANAR)
		atomic_fetch_add(&c->gfx_planar, 1);
	else
		atomic_fetch_add(&c->gfx_other, 1);
	return ((SurfaceCommandFn)c->gfx_surface_command)(gfx, cmd);
}

static void on_channel_connected(void *context, ChannelConnectedEventArgs *e)
{
	rdpContext *ctx = context;
	if (ctx->gdi && strcmp(e->name, RDPGFX_DVC_CHANNEL_NAME) == 0) {
		RdpgfxClientContext *gfx = (RdpgfxClientContext *)e->pInterface;
		gdi_graphics_pipeline_init(ctx->gdi, gfx);
		((Client *)ctx)->gfx_surface_command = (void *)gfx->SurfaceCommand;
		gfx->SurfaceCommand = on_gfx_surface_command;
	}
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

static bool pred_desktop(Client *c, void *arg)
{
	return atomic_load(&c->desktop_ns) != 0;
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
	if (o->user)
		ok &= freerdp_settings_set_string(s, FreeRDP_Username, o->user);
	if (o->password)
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

/* The input steps in their order; a sleep keeps reading frames. */
static int input_steps(Client *c, uint64_t deadline)
{
	rdpInput *in = c->common.context.input;
	const Options *o = c->opt;

	for (size_t i = 0; i < o->n_keys; i++) {
		const InputStep *st = &o->steps[i];
		switch (st->kind) {
		case STEP_KEY: input_key(in, st->code); break;
		case STEP_SHIFTED_KEY:
			freerdp_input_send_keyboard_event_ex(in, TRUE, RDP_SCANCODE_LSHIFT);
			input_key(in, st->code);
			freerdp_input_send_keyboard_event_ex(in, FALSE, RDP_SCANCODE_LSHIFT);
			break;
		case STEP_UNICODE:
			freerdp_input_send_unicode_keyboard_event(in, 0, st->code);
			freerdp_input_send_unicode_keyboard_event(in, KBD_FLAGS_RELEASE, st->code);
			break;
		case STEP_SLEEP: {
			uint64_t end = now_ns() + (uint64_t)st->ms * 1000000u;
			if (pump(c, end < deadline ? end : deadline, NULL, NULL) < 0)
				return -ECONNRESET;
			break;
		}
		}
	}
	return 0;
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

	if (o->wait_frame || o->wait_desktop) {
		k = pump(c, deadline, o->wait_desktop ? pred_desktop : pred_first_frame, NULL);
		if (k == -ETIMEDOUT) {
			note("no non-black frame%s within %u s", o->wait_desktop ? " past slate-session's screens" : "",
			     o->timeout_s);
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
		watchdog_set(w, 0, deadline + span + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
		if (input_steps(c, deadline + span) < 0)
			return classify_failure(c, r);
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

	if (o->n_after) {
		PixelSet set = { o->after, o->n_after };
		uint64_t t_from = now_ns(), after_deadline = t_from + span;
		watchdog_set(w, 0, after_deadline + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
		k = pump(c, after_deadline, pred_pixel_set, &set);
		if (k == -ECONNRESET)
			return classify_failure(c, r);
		if (k == -ETIMEDOUT) {
			pixel_set_explain(c, &set);
			r->result = "mismatch";
			r->error = "after_pixel";
			st = EXIT_MISMATCH;
			goto screenshot;
		}
		r->after_ms = ms_since(t_from, now_ns());
	}

	if (o->hold_s) {
		uint64_t hold_end = now_ns() + (uint64_t)o->hold_s * 1000000000u;
		watchdog_set(w, 0, hold_end + (uint64_t)BACKSTOP_GRACE_MS * 1000000u);
		if (pump(c, hold_end, NULL, NULL) < 0)
			return classify_failure(c, r);
	}

screenshot:
	if (o->never_black && atomic_load(&c->black_frames) && st == EXIT_OK) {
		note("%u paints left the frame entirely black", atomic_load(&c->black_frames));
		r->result = "mismatch";
		r->error = "black_frame";
		st = EXIT_MISMATCH;
	}
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
	Report r = { .result = "ok", .connect_ms = -1, .first_frame_ms = -1, .desktop_ms = -1, .change_ms = -1, .after_ms = -1,
		     .black_frames = -1, .gfx_avc420 = -1, .gfx_planar = -1, .gfx_other = -1 };
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
	if (atomic_load(&c->desktop_ns))
		r.desktop_ms = ms_since(c->t0_ns, atomic_load(&c->desktop_ns));
	if (opt.never_black)
		r.black_frames = atomic_load(&c->black_frames);
	if (opt.codec == CODEC_GFX) {
		r.gfx_avc420 = atomic_load(&c->gfx_avc420);
		r.gfx_planar = atomic_load(&c->gfx_planar);
		r.gfx_other = atomic_load(&c->gfx_other);
	}
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
