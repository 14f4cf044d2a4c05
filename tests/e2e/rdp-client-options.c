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

int parse_options(int argc, char **argv, Options *o)
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
