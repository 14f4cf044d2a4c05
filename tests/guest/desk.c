/* The test desktop (desk.h): session screens on /dev/fb0, keyboards from evdev. Only the agent's
 * main loop calls in here; nothing blocks except the sync at the end of a session. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/input.h>
#include <linux/kd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tests/guest/desk.h"
#include "common/spawn.h"
#include "common/username.h"

#define log_desk(...) (fprintf(stderr, "slate-agent: desk: " __VA_ARGS__), fputc('\n', stderr))

uint32_t desk_user_rgb(const char *user)
{
        uint32_t h = 0x811c9dc5u;
        for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
                h ^= *p;
                h *= 0x01000193u;
        }
        /* Mid-range channels: never black or white, so the name (white) always reads. */
        uint32_t r = 0x40 + (h >> 16 & 0x7f), g = 0x40 + (h >> 8 & 0x7f), b = 0x40 + (h & 0x7f);
        return r << 16 | g << 8 | b;
}

uint32_t desk_keybox_rgb(uint32_t n)
{
        static const uint32_t palette[] = { 0x000000, 0xff0000, 0x00ff00, 0x0000ff };
        return palette[n % 4];
}

/* Largest scale up to 4 at which s fits the screen with a 20-pixel margin on each side. */
static unsigned text_scale(const Fb *fb, const char *s)
{
        unsigned scale = 4;
        while (scale > 1 && fb_text_width(s, scale) + 40 > fb->width)
                scale--;
        return scale;
}

static void text_centred(Fb *fb, const char *s, uint32_t rgb)
{
        unsigned scale = text_scale(fb, s);
        int x = ((int)fb->width - (int)fb_text_width(s, scale)) / 2;
        int y = ((int)fb->height - FB_FONT_H * (int)scale) / 2;
        fb_text(fb, x, y, scale, s, rgb);
}

static void draw_ready(Desk *d)
{
        fb_fill(&d->fb, 0, 0, (int)d->fb.width, (int)d->fb.height, DESK_READY_BG);
        text_centred(&d->fb, "slate ready", DESK_TEXT_RGB);
}

static void draw_keybox(Desk *d)
{
        fb_fill(&d->fb, DESK_KEYBOX_X, DESK_KEYBOX_Y, DESK_KEYBOX_SIZE, DESK_KEYBOX_SIZE, desk_keybox_rgb(d->keys));
}

static void draw_session(Desk *d)
{
        fb_fill(&d->fb, 0, 0, (int)d->fb.width, (int)d->fb.height, desk_user_rgb(d->user));
        text_centred(&d->fb, d->user, DESK_TEXT_RGB);
        fb_text(&d->fb, 20, (int)d->fb.height - 20 - 2 * FB_FONT_H, 2, "F12: log out", DESK_TEXT_RGB);
        draw_keybox(d);
}

void desk_init(Desk *d)
{
        *d = (Desk){ .fb = { .fd = -1 }, .tty_fd = -1 };
        int r = fb_open(DESK_FB_PATH, &d->fb);
        if (r < 0) {
                log_desk("%s: %s; sessions cannot start", DESK_FB_PATH, strerror(-r));
                return;
        }
        /* KD_GRAPHICS stops fbcon drawing text and the cursor over the desktop. */
        d->tty_fd = open("/dev/tty0", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (d->tty_fd < 0 || ioctl(d->tty_fd, KDSETMODE, KD_GRAPHICS) < 0)
                log_desk("/dev/tty0: cannot switch to graphics mode (%s); the console may draw over the desktop",
                         strerror(errno));
        log_desk("%s: %ux%u, %u bpp", DESK_FB_PATH, d->fb.width, d->fb.height, d->fb.bytes_pp * 8);
        draw_ready(d);
}

void desk_done(Desk *d)
{
        desk_session_stop(d);
        if (d->tty_fd >= 0) {
                ioctl(d->tty_fd, KDSETMODE, KD_TEXT);
                close(d->tty_fd);
                d->tty_fd = -1;
        }
        fb_close(&d->fb);
}

/* Without udev or devtmpfs nobody makes the event nodes: make them from sysfs. */
static void input_nodes(void)
{
        DIR *dir = opendir("/sys/class/input");
        if (!dir)
                return;
        mkdir(DESK_INPUT_DIR, 0755);
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (strncmp(de->d_name, "event", 5) != 0)
                        continue;
                char path[PATH_MAX], buf[32] = "";
                unsigned maj, min;
                snprintf(path, sizeof path, "/sys/class/input/%s/dev", de->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                bool ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%u:%u", &maj, &min) == 2;
                fclose(f);
                snprintf(path, sizeof path, DESK_INPUT_DIR "/%s", de->d_name);
                if (ok && mknod(path, S_IFCHR | 0600, makedev(maj, min)) < 0 && errno != EEXIST)
                        log_desk("%s: %s", path, strerror(errno));
        }
        closedir(dir);
}

static bool bit_set(const unsigned long *bits, unsigned n)
{
        return bits[n / (8 * sizeof *bits)] >> (n % (8 * sizeof *bits)) & 1;
}

/* Opens and grabs every keyboard: while grabbed, the kernel's console keyboard sees nothing, so
 * Ctrl+Alt+Del in a session cannot reach PID 1. Tablets and mice are left alone. */
static void input_open(Desk *d)
{
        DIR *dir = opendir(DESK_INPUT_DIR);
        if (!dir) {
                input_nodes();
                dir = opendir(DESK_INPUT_DIR);
        }
        if (!dir) {
                log_desk(DESK_INPUT_DIR ": %s; no keyboard", strerror(errno));
                return;
        }
        struct dirent *de;
        while ((de = readdir(dir)) && d->n_input < DESK_INPUT_MAX) {
                if (strncmp(de->d_name, "event", 5) != 0)
                        continue;
                char path[PATH_MAX];
                snprintf(path, sizeof path, DESK_INPUT_DIR "/%s", de->d_name);
                int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        continue;
                unsigned long keys[KEY_CNT / (8 * sizeof(unsigned long)) + 1] = { 0 };
                if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys) < 0 || !bit_set(keys, KEY_F12)) {
                        close(fd);
                        continue;
                }
                if (ioctl(fd, EVIOCGRAB, 1) < 0)
                        log_desk("%s: cannot grab (%s)", path, strerror(errno));
                d->input[d->n_input++] = fd;
        }
        closedir(dir);
        if (d->n_input == 0)
                log_desk("no keyboard found in " DESK_INPUT_DIR);
}

static void input_close(Desk *d)
{
        for (unsigned i = 0; i < d->n_input; i++)
                close(d->input[i]); /* closing releases the grab */
        d->n_input = 0;
}

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The session hook (README "Session hook"): run as root with the user's USER and HOME, its first
 * line of output appended to detail as "; hook N ms: LINE" (cut to fit; N is how long it ran,
 * which a benchmark takes out of the agent step: it is the test's work, not Slate's). Its stdout is read to EOF or
 * the timeout; what it left running in the background stays (that is how `writer` churns). */
static void hook_run(const char *user, char *detail, size_t size)
{
        if (access(DESK_HOOK_PATH, X_OK) < 0)
                return;
        char env_user[sizeof "USER=" + USER_NAME_MAX], env_home[sizeof "HOME=/home/" + USER_NAME_MAX];
        snprintf(env_user, sizeof env_user, "USER=%s", user);
        snprintf(env_home, sizeof env_home, "HOME=/home/%s", user);
        const char *envp[] = { env_user, env_home, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", NULL };
        const char *argv[] = { DESK_HOOK_PATH, NULL };
        SpawnOpts so = { .argv = argv, .envp = envp, .fd3 = -1, .new_session = true, .default_signals = true,
                         .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_PIPE, SPAWN_STDIO_INHERIT } };
        SpawnChild child;
        int r = spawn_start(&so, &child);
        if (r < 0) {
                log_desk(DESK_HOOK_PATH ": %s", strerror(-r));
                return;
        }
        char out[AGENT_STRING_MAX + 1];
        size_t len = 0;
        uint64_t t0 = mono_ms(), deadline = t0 + DESK_HOOK_TIMEOUT_MS;
        bool timed_out = false;
        for (;;) {
                uint64_t now = mono_ms();
                if (now >= deadline) {
                        timed_out = true;
                        break;
                }
                struct pollfd p = { .fd = child.fds[1], .events = POLLIN };
                if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
                        break;
                if (!p.revents)
                        continue;
                char buf[512];
                ssize_t n = read(child.fds[1], buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                /* Only the first line is kept; the rest is read and dropped. */
                for (ssize_t i = 0; i < n && len < sizeof out - 1 && !memchr(out, '\n', len); i++)
                        out[len++] = buf[i];
        }
        spawn_child_close(&child);
        out[len] = 0;
        out[strcspn(out, "\r\n")] = 0;
        for (char *c = out; *c; c++)
                if (!(*c >= 0x20 && *c < 0x7f))
                        *c = '?';
        int status = 0;
        while ((r = spawn_wait(child.pid, WNOHANG, &status)) == 0 && !timed_out && mono_ms() < deadline)
                usleep(10000);
        if (r == 0) {
                kill(-child.pid, SIGKILL);
                spawn_wait(child.pid, 0, &status);
                timed_out = true;
        }
        log_desk(DESK_HOOK_PATH " for %s: %s%s", user, out, timed_out ? " (timed out)" : "");
        size_t l = strlen(detail);
        if (l < size)
                snprintf(detail + l, size - l, "; hook %llu ms: %s%s", (unsigned long long)(mono_ms() - t0),
                         timed_out ? "(timed out) " : "", out);
}

int desk_session_start(Desk *d, const char *user, unsigned width, unsigned height, char *detail, size_t size)
{
        if (!user_name_valid(user)) {
                snprintf(detail, size, "invalid user name");
                return -EINVAL;
        }
        if (d->active) {
                if (strcmp(d->user, user) != 0) {
                        snprintf(detail, size, "a session for %s is running", d->user);
                        return -EBUSY;
                }
                snprintf(detail, size, "already running: %ux%u", d->fb.width, d->fb.height);
                return 0; /* the host repeated itself: same answer */
        }
        if (!d->fb.map) {
                snprintf(detail, size, "no framebuffer (%s)", DESK_FB_PATH);
                return -ENODEV;
        }
        snprintf(d->user, sizeof d->user, "%s", user);
        d->keys = 0;
        d->active = true;
        input_open(d);
        draw_session(d);
        /* The screen is what the framebuffer has; the host learns both. */
        if (width && height && (width != d->fb.width || height != d->fb.height))
                snprintf(detail, size, "%ux%u (asked %ux%u)", d->fb.width, d->fb.height, width, height);
        else
                snprintf(detail, size, "%ux%u", d->fb.width, d->fb.height);
        hook_run(user, detail, size);
        return 0;
}

int desk_usable_delay_ms(const Desk *d)
{
        if (!strncmp(d->user, "never", 5))
                return -1;
        return strncmp(d->user, "slow", 4) ? 0 : DESK_SLOW_USABLE_MS;
}

void desk_session_stop(Desk *d)
{
        if (!d->active)
                return;
        input_close(d);
        sync();
        d->active = false;
        d->user[0] = 0;
        draw_ready(d);
}

unsigned desk_pollfds(const Desk *d, struct pollfd *pfd, unsigned max)
{
        unsigned n = 0;
        for (; n < d->n_input && n < max; n++)
                pfd[n] = (struct pollfd){ .fd = d->input[n], .events = POLLIN };
        return n;
}

int desk_input(Desk *d, int fd)
{
        struct input_event ev[32];
        ssize_t n = read(fd, ev, sizeof ev);
        if (n < 0 && errno == ENODEV) {
                /* Unplugged: stop polling it. */
                for (unsigned i = 0; i < d->n_input; i++)
                        if (d->input[i] == fd) {
                                close(fd);
                                d->input[i] = d->input[--d->n_input];
                                break;
                        }
                return 0;
        }
        for (size_t i = 0; n > 0 && i < (size_t)n / sizeof *ev; i++) {
                /* Presses only (1); releases (0) and autorepeat (2) change nothing. */
                if (ev[i].type != EV_KEY || ev[i].value != 1 || ev[i].code >= BTN_MISC)
                        continue;
                if (ev[i].code == KEY_F12)
                        return 1;
                d->keys++;
                draw_keybox(d);
        }
        return 0;
}
