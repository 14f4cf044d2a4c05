/* rdp-client's command line: --help, the key-name table and option checks. Parses
 * only; nothing here touches the network. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <freerdp/scancode.h>
#include <winpr/input.h>

#include "rdp-client.h"

static void usage(FILE *f)
{
	fputs("usage: rdp-client --host H --port P --user U (--password PW | --no-password) [options]\n"
	      "A headless RDP client (TLS, certificate ignored) for end-to-end tests.\n"
	      "\n"
	      "  --domain D             logon domain\n"
	      "  --width W --height H   requested size (default 1024x768; the server decides)\n"
	      "  --timeout S            bound on every wait, in seconds (default 30)\n"
	      "  --codec legacy|rfx|gfx what to offer the server (default legacy: exact pixels)\n"
	      "  --connect-only         stop once the session is active\n"
	      "  --wait-frame           wait for the first non-black frame (slate-session's\n"
	      "                         progress or logon screen counts)\n"
	      "  --wait-desktop         wait for the first non-black frame that is not mostly\n"
	      "                         slate-session's backdrop (#152233): the desktop\n"
	      "  --expect-pixel X,Y,RRGGBB[,TOL]  pixel within TOL per channel (default 16);\n"
	      "                         repeatable; waits up to the timeout for it to hold\n"
	      "  --expect-not-black     the frame is not entirely black\n"
	      "  --click X,Y            move the pointer to X,Y and click before the keys\n"
	      "  --key NAME|SCANCODE    press and release a key; repeatable. NAME: a letter,\n"
	      "                         digit, enter, space, tab, esc, backspace, up, down,\n"
	      "                         left, right, F1..F24, or a winpr name (VK_PRIOR). SCANCODE\n"
	      "                         a set-1 make code (0x1e), 0xe0NN for extended keys\n"
	      "  --type TEXT            type TEXT as US-layout scancodes (Shift where needed)\n"
	      "  --unicode TEXT         type TEXT as Unicode keyboard events\n"
	      "  --paste N              type N 'x' keys at once (a paste)\n"
	      "  --sleep MS             between input steps: keep reading frames for MS\n"
	      "                         (--key, --type, --unicode, --paste, --sleep run in their order)\n"
	      "  --after-pixel X,Y,RRGGBB[,TOL]  after the input, wait for this pixel; repeatable\n"
	      "  --no-password          send no password (the server may show its logon screen);\n"
	      "                         --user may then be left out\n"
	      "  --expect-never-black   no paint after the first leaves the frame entirely black\n"
	      "  --expect-change        after the keys, the screen must change\n"
	      "  --screenshot FILE.ppm  write the last frame as a binary PPM\n"
	      "  --hold S               stay connected S seconds before leaving\n"
	      "  --logoff               leave with a logoff (FreeRDP 2 has none: disconnects)\n"
	      "  --json                 print the result as JSON instead of key=value\n"
	      "  --verbose              FreeRDP's log at WARN on stderr\n"
	      "\n"
	      "Prints one line: result=ok connect_ms=N first_frame_ms=N width=N height=N ...\n"
	      "(with --codec gfx also gfx_avc420=N gfx_planar=N gfx_other=N: surface commands\n"
	      "received through the graphics pipeline, by codec)\n"
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

static int step_add(Options *o, StepKind kind, UINT16 code, unsigned ms)
{
	if (o->n_keys == MAX_STEPS)
		return -E2BIG;
	if (!o->steps && !(o->steps = calloc(MAX_STEPS, sizeof *o->steps)))
		return -ENOMEM;
	o->steps[o->n_keys++] = (InputStep){ .kind = kind, .code = code, .ms = ms };
	return 0;
}

/* A US layout: each printable ASCII character as a set-1 scancode, shifted or not. */
static int type_text(Options *o, const char *s)
{
	static const char *const rows[2][5] = {
		{ "1234567890-=", "qwertyuiop[]", "asdfghjkl;'`", "\\", "zxcvbnm,./" },
		{ "!@#$%^&*()_+", "QWERTYUIOP{}", "ASDFGHJKL:\"~", "|", "ZXCVBNM<>?" },
	};
	static const UINT16 first[5] = { 0x02, 0x10, 0x1E, 0x2B, 0x2C };

	for (; *s; s++) {
		int r = -EINVAL;
		if (*s == ' ')
			r = step_add(o, STEP_KEY, 0x39, 0);
		for (int sh = 0; r == -EINVAL && sh < 2; sh++)
			for (int row = 0; r == -EINVAL && row < 5; row++) {
				const char *p = strchr(rows[sh][row], *s);
				if (p)
					r = step_add(o, sh ? STEP_SHIFTED_KEY : STEP_KEY,
						     (UINT16)(first[row] + (p - rows[sh][row])), 0);
			}
		if (r < 0) {
			note("--type: cannot type '%c' on a US layout (use --unicode)", *s);
			return r;
		}
	}
	return 0;
}

/* UTF-8 into UTF-16 units (the Basic Multilingual Plane is enough for the tests). */
static int type_unicode(Options *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned cp, n;
		if (*p < 0x80) { cp = *p; n = 1; }
		else if ((*p & 0xE0) == 0xC0 && p[1]) { cp = (*p & 0x1Fu) << 6 | (p[1] & 0x3Fu); n = 2; }
		else if ((*p & 0xF0) == 0xE0 && p[1] && p[2]) {
			cp = (*p & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
			n = 3;
		} else {
			note("--unicode: only UTF-8 of the Basic Multilingual Plane");
			return -EINVAL;
		}
		int r = step_add(o, STEP_UNICODE, (UINT16)cp, 0);
		if (r < 0)
			return r;
		p += n;
	}
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

int parse_options(int argc, char **argv, Options *o)
{
	enum {
		O_HOST = 256, O_PORT, O_USER, O_PASSWORD, O_DOMAIN, O_WIDTH, O_HEIGHT, O_TIMEOUT,
		O_CODEC, O_CONNECT_ONLY, O_WAIT_FRAME, O_PIXEL, O_NOT_BLACK, O_CLICK, O_KEY,
		O_CHANGE, O_SCREENSHOT, O_HOLD, O_LOGOFF, O_JSON, O_VERBOSE, O_HELP,
		O_TYPE, O_UNICODE, O_PASTE, O_SLEEP, O_AFTER, O_NO_PASSWORD, O_NEVER_BLACK, O_WAIT_DESKTOP,
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
		{ "type", required_argument, NULL, O_TYPE },
		{ "unicode", required_argument, NULL, O_UNICODE },
		{ "paste", required_argument, NULL, O_PASTE },
		{ "sleep", required_argument, NULL, O_SLEEP },
		{ "after-pixel", required_argument, NULL, O_AFTER },
		{ "no-password", no_argument, NULL, O_NO_PASSWORD },
		{ "expect-never-black", no_argument, NULL, O_NEVER_BLACK },
		{ "wait-desktop", no_argument, NULL, O_WAIT_DESKTOP },
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
		case O_KEY: {
			UINT16 sc;
			r = parse_key(optarg, &sc);
			if (r == 0)
				r = step_add(o, STEP_KEY, sc, 0);
			break;
		}
		case O_TYPE: r = type_text(o, optarg); break;
		case O_UNICODE: r = type_unicode(o, optarg); break;
		case O_PASTE: {
			unsigned n;
			r = parse_uint(optarg, MAX_STEPS, &n);
			for (unsigned i = 0; r == 0 && i < n; i++)
				r = step_add(o, STEP_KEY, 0x2D, 0);
			break;
		}
		case O_SLEEP: {
			unsigned ms;
			r = parse_uint(optarg, 600000, &ms);
			if (r == 0)
				r = step_add(o, STEP_SLEEP, 0, ms);
			break;
		}
		case O_AFTER:
			if (o->n_after == MAX_PIXELS)
				r = -E2BIG;
			else
				r = parse_pixel(optarg, &o->after[o->n_after++]);
			break;
		case O_NO_PASSWORD: o->no_password = true; break;
		case O_NEVER_BLACK: o->never_black = true; break;
		case O_WAIT_DESKTOP: o->wait_desktop = true; break;
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
	if (!o->host || (!o->no_password && (!o->user || !o->password)) || (o->no_password && o->password)) {
		note("--host, --user and --password (or --no-password) are required (see --help)");
		return -EINVAL;
	}
	if (o->timeout_s == 0) {
		note("--timeout must be at least 1");
		return -EINVAL;
	}
	if (o->connect_only && (o->wait_frame || o->wait_desktop || o->n_pixels || o->expect_not_black || o->n_keys ||
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
