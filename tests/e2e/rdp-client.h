/* Private to rdp-client: the options, the client context and the few functions its
 * three files share. Never included outside tests/e2e. */
#ifndef SLATE_TESTS_E2E_RDP_CLIENT_H
#define SLATE_TESTS_E2E_RDP_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <freerdp/client.h>
#include <freerdp/freerdp.h>

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 2,
	EXIT_REFUSED = 10,
	EXIT_NETWORK = 11,
	EXIT_TIMEOUT = 12,
	EXIT_MISMATCH = 13,
};

#define MAX_PIXELS 64
/* Input steps (keys, typed characters, pauses): room for a 10,000-key paste and then some. */
#define MAX_STEPS 20000
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

typedef enum { STEP_KEY, STEP_SHIFTED_KEY, STEP_UNICODE, STEP_SLEEP } StepKind;

typedef struct {
	StepKind kind;
	UINT16 code;     /* RDP scancode (STEP_*KEY), UTF-16 unit (STEP_UNICODE) */
	unsigned ms;     /* STEP_SLEEP */
} InputStep;

typedef struct {
	const char *host, *user, *password, *domain;
	bool no_password;
	unsigned port, width, height, timeout_s, hold_s;
	Codec codec;
	bool connect_only, wait_frame, wait_desktop, expect_not_black, expect_change, logoff, json, verbose;
	PixelExpect pixels[MAX_PIXELS];
	size_t n_pixels;
	InputStep *steps;  /* --key, --type, --unicode, --paste, --sleep in their order */
	size_t n_keys;     /* steps */
	PixelExpect after[MAX_PIXELS]; /* --after-pixel: once the steps are sent */
	size_t n_after;
	bool never_black;
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
	atomic_uint_fast64_t desktop_ns;   /* first paint that is not slate-session's own screen */
	uint64_t t0_ns;
	atomic_uint black_frames;          /* paints after the first that left the frame all black */
	bool logon_error_seen;             /* LOGON_FAILED_BAD_PASSWORD is 0: a flag, not the data */
	UINT32 logon_error_data, logon_error_type;
	/* GFX surface commands received, by codec (counted before the library decodes them) */
	atomic_uint gfx_avc420, gfx_planar, gfx_other;
	void *gfx_surface_command;         /* the library's handler, called after counting */
} Client;

typedef struct {
	const char *result;
	long connect_ms, first_frame_ms, desktop_ms, change_ms, after_ms;
	long black_frames;
	long gfx_avc420, gfx_planar, gfx_other;   /* -1: no GFX */
	unsigned width, height;
	const char *error, *last_error, *error_info, *logon_error;
	const char *logoff;
} Report;

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	freerdp *instance;
	uint64_t abort_at_ns;    /* break freerdp_connect at this time; 0 = disarmed */
	uint64_t backstop_at_ns; /* exit the process at this time; 0 = disarmed */
	bool fired, stop;
	bool json;
} Watchdog;

void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);
void report_print(const Report *r, bool json);
/* rdp-client-watchdog.c */
int watchdog_start(Watchdog *w, pthread_t *ret);
void watchdog_set(Watchdog *w, uint64_t abort_at, uint64_t backstop_at);
bool watchdog_disarm(Watchdog *w);
void watchdog_stop(Watchdog *w, pthread_t t);

/* rdp-client-options.c: the command line, including the key-name table. */
int parse_options(int argc, char **argv, Options *o);

/* rdp-client-frame.c: checks on the software-gdi frame and screenshots. Callers that
 * may race a paint take update->mux, except where a function says it does. */
bool buffer_is_black(const rdpGdi *gdi);
/* slate-session's progress or logon screen: mostly its backdrop, #152233 (SCREEN_BACKDROP). */
#define SLATE_BACKDROP_R 0x15
#define SLATE_BACKDROP_G 0x22
#define SLATE_BACKDROP_B 0x33
bool buffer_is_slate_screen(const rdpGdi *gdi);
/* Copies the frame as packed RGB under update->mux; the caller frees. */
uint8_t *frame_snapshot(rdpContext *ctx, unsigned *ret_w, unsigned *ret_h);
int ppm_write(const char *path, const uint8_t *rgb, unsigned w, unsigned h);

typedef struct {
	const uint8_t *before;
	unsigned w, h;
} ChangeArg;

/* Predicates for pump(); each takes update->mux. */
bool pred_pixels(Client *c, void *arg);
/* arg: a PixelSet */
typedef struct {
	const PixelExpect *p;
	size_t n;
} PixelSet;
bool pred_pixel_set(Client *c, void *arg);
void pixel_set_explain(Client *c, const PixelSet *set);
bool pred_changed(Client *c, void *arg);
void pixels_explain(Client *c);

#endif
