/* Benchmark: overlay create+destroy through Slate (overlay_create/overlay_destroy) against a bare
 * `qemu-img create` + unlink of the same overlay, per mode, interleaved in one run so both see the
 * same machine state. Prints one markdown section; bench/run adds the machine description. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"
#include "imaging/overlay.h"

extern char **environ;

typedef struct Series {
        double *create_ms, *total_ms;
        unsigned n, failures, retries;
} Series;

static double now_msf(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a copy, so the series keeps its run order. */
static double percentile(const double *v, unsigned n, double p)
{
        if (n == 0)
                return NAN;
        double *s = xmalloc0(n * sizeof *s);
        memcpy(s, v, n * sizeof *s);
        qsort(s, n, sizeof *s, cmp_double);
        unsigned rank = (unsigned)ceil(p / 100.0 * n);
        double r = s[rank ? rank - 1 : 0];
        free(s);
        return r;
}

/* What the bare baseline does: one qemu-img create, stderr to a file so the LUKS benchmark
 * failure can be recognised and retried exactly as Slate retries it. */
static int qemu_img_create_bare(const char *qemu_img, OverlayMode mode, const char *golden, const char *keyfile,
                                const char *path, const char *errlog, unsigned *retries)
{
        char *secret_obj = xasprintf("secret,id=sec0,file=%s,format=raw", keyfile);
        const char *argv[] = { qemu_img, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", golden,
                               mode == OVERLAY_ENCRYPTED ? "-o" : path,
                               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
                               "--object", secret_obj, path, NULL };
        if (mode != OVERLAY_ENCRYPTED)
                argv[10] = NULL;
        int r = -EIO;
        for (int attempt = 0; attempt < 400; attempt++) {
                posix_spawn_file_actions_t fa;
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_addopen(&fa, 2, errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                pid_t pid;
                int e = posix_spawn(&pid, qemu_img, &fa, NULL, (char *const *)argv, environ);
                posix_spawn_file_actions_destroy(&fa);
                if (e) {
                        r = -e;
                        break;
                }
                int st;
                while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                        ;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                        r = 0;
                        break;
                }
                char *log = NULL;
                bool cpu_usage = read_file_max(errlog, 65536, &log, NULL) == 0 &&
                                 strstr(log, "Unable to get accurate CPU usage");
                if (!cpu_usage)
                        fprintf(stderr, "bench: qemu-img create failed: %s\n", log ? log : "?");
                free(log);
                if (!cpu_usage)
                        break;
                (*retries)++;
                nanosleep(&(struct timespec){ .tv_nsec = 25000000 }, NULL);
        }
        free(secret_obj);
        return r;
}

/* overlay.c logs each LUKS retry at debug level; count them from a capture of stderr. */
static unsigned count_retries(const char *logfile)
{
        char *log = NULL;
        unsigned k = 0;
        if (read_file_max(logfile, 1 << 20, &log, NULL) == 0)
                for (const char *p = log; (p = strstr(p, "; retrying")); p++)
                        k++;
        free(log);
        return k;
}

static void run_slate(const char *qemu_img, OverlayMode mode, const char *golden, const char *dir,
                      const char *logfile, Series *s, bool record)
{
        Overlay *o = NULL;
        char *err = NULL;
        fflush(stderr);
        int saved = dup(2), lf = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(lf, 2);
        close(lf);
        double t0 = now_msf();
        int r = overlay_create(qemu_img, mode, golden, dir, "bench-slate", (uid_t)-1, (gid_t)-1, &o, &err);
        double t1 = now_msf();
        if (r == 0)
                r = overlay_destroy(o);
        double t2 = now_msf();
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        if (r < 0)
                fprintf(stderr, "bench: Slate overlay_create: %s\n", err ? err : strerror(-r));
        free(err);
        if (!record)
                return;
        s->retries += count_retries(logfile);
        if (r < 0) {
                s->failures++;
                return;
        }
        s->create_ms[s->n] = t1 - t0;
        s->total_ms[s->n++] = t2 - t0;
}

static void run_bare(const char *qemu_img, OverlayMode mode, const char *golden, const char *dir,
                     const char *keyfile, const char *errlog, Series *s, bool record)
{
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/bench-bare.qcow2", dir);
        unsigned retries = 0;
        double t0 = now_msf();
        int r = qemu_img_create_bare(qemu_img, mode, golden, keyfile, path, errlog, &retries);
        double t1 = now_msf();
        if (unlink(path) < 0 && r == 0)
                r = -errno;
        double t2 = now_msf();
        if (!record)
                return;
        s->retries += retries;
        if (r < 0) {
                s->failures++;
                return;
        }
        s->create_ms[s->n] = t1 - t0;
        s->total_ms[s->n++] = t2 - t0;
}

static void row(OverlayMode mode, const char *method, const Series *s)
{
        printf("| %s | %s | %u | %.1f | %.1f | %.1f | %.1f | %u | %u |\n", overlay_mode_to_string(mode), method, s->n,
               percentile(s->total_ms, s->n, 50), percentile(s->total_ms, s->n, 90),
               percentile(s->create_ms, s->n, 50), percentile(s->create_ms, s->n, 90), s->failures, s->retries);
}

static int usage(int r)
{
        fprintf(r ? stderr : stdout,
                "usage: bench_overlay [-n N] [-d DISK_DIR] [-r RAM_DIR] [-q QEMU_IMG] [-m MODE]...\n"
                "Time overlay create+destroy via Slate and via bare qemu-img create, per mode.\n"
                "  -n N         iterations per mode and method (default 30)\n"
                "  -d DISK_DIR  directory on disk for the golden and plain/encrypted overlays (default /var/tmp)\n"
                "  -r RAM_DIR   tmpfs directory for ram overlays (default /dev/shm)\n"
                "  -m MODE      plain, ram or encrypted; repeatable (default all three)\n");
        return r;
}

int main(int argc, char *argv[])
{
        unsigned n = 30;
        const char *disk = "/var/tmp", *ram = "/dev/shm", *qemu_img = QEMU_IMG_PATH;
        bool want[3] = { false, false, false }, any = false;
        int c;
        while ((c = getopt(argc, argv, "n:d:r:q:m:h")) != -1) {
                OverlayMode m;
                switch (c) {
                case 'n':
                        if (parse_uint(optarg, 100000, &n) < 0 || n == 0)
                                return usage(2);
                        break;
                case 'd': disk = optarg; break;
                case 'r': ram = optarg; break;
                case 'q': qemu_img = optarg; break;
                case 'm':
                        if (overlay_mode_from_string(optarg, &m) < 0)
                                return usage(2);
                        want[m] = any = true;
                        break;
                case 'h': return usage(0);
                default: return usage(2);
                }
        }
        if (!any)
                want[0] = want[1] = want[2] = true;
        log_set_level(LOG_LVL_DEBUG);

        char work[PATH_MAX], ramwork[PATH_MAX];
        snprintf(work, sizeof work, "%s/slate-bench.XXXXXX", disk);
        snprintf(ramwork, sizeof ramwork, "%s/slate-bench.XXXXXX", ram);
        if (!mkdtemp(work) || !mkdtemp(ramwork)) {
                fprintf(stderr, "bench: mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        char *golden = xasprintf("%s/golden.qcow2", work), *keyfile = xasprintf("%s/bare.key", work),
             *errlog = xasprintf("%s/qemu-img.err", work), *slatelog = xasprintf("%s/slate.log", work);
        /* A 1 GiB golden with 8 MiB of data: overlay creation reads only its header. */
        char *mk = xasprintf("%s create -q -f qcow2 %s 1G && qemu-io -c 'write -P 0x11 0 8M' %s >/dev/null", qemu_img,
                             golden, golden);
        if (system(mk) != 0) {
                fprintf(stderr, "bench: cannot create the golden with %s and qemu-io\n", qemu_img);
                return 1;
        }
        uint8_t key[32];
        char hex[65];
        random_bytes(key, sizeof key);
        hex_encode(key, sizeof key, hex);
        write_file_atomic(keyfile, hex, 64, 0600);

        bool ram_ok = fs_is_tmpfs(ramwork) == 1;
        printf("## Overlay create + destroy\n\n");
        printf("Slate = `overlay_create()` + `overlay_destroy()` (pre-created 0600 file, key page, fork/exec "
               "with a clean env, pipe for the key, LUKS retries). Bare = `posix_spawn(qemu-img create …)` + "
               "`unlink()` of the same overlay, LUKS key from a file, same retries. Golden: 1 GiB qcow2 with 8 MiB "
               "of data in %s; ram overlays in %s%s. N=%u per row, Slate and bare interleaved (alternating "
               "order), one warm-up each not counted. Times in ms.\n\n",
               work, ramwork, ram_ok ? " (tmpfs)" : " (NOT tmpfs: ram rows skipped)", n);
        printf("| mode | method | N | create+destroy median | p90 | create median | p90 | failures | LUKS "
               "retries |\n|---|---|---|---|---|---|---|---|---|\n");
        fflush(stdout);

        const OverlayMode order[] = { OVERLAY_PLAIN, OVERLAY_RAM, OVERLAY_ENCRYPTED };
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                OverlayMode m = order[k];
                if (!want[m] || (m == OVERLAY_RAM && !ram_ok))
                        continue;
                const char *dir = m == OVERLAY_RAM ? ramwork : work;
                Series sl = { xmalloc0(n * sizeof(double)), xmalloc0(n * sizeof(double)), 0, 0, 0 };
                Series ba = { xmalloc0(n * sizeof(double)), xmalloc0(n * sizeof(double)), 0, 0, 0 };
                run_slate(qemu_img, m, golden, dir, slatelog, &sl, false);
                run_bare(qemu_img, m, golden, dir, keyfile, errlog, &ba, false);
                for (unsigned i = 0; i < n; i++) {
                        if (i % 2 == 0) {
                                run_slate(qemu_img, m, golden, dir, slatelog, &sl, true);
                                run_bare(qemu_img, m, golden, dir, keyfile, errlog, &ba, true);
                        } else {
                                run_bare(qemu_img, m, golden, dir, keyfile, errlog, &ba, true);
                                run_slate(qemu_img, m, golden, dir, slatelog, &sl, true);
                        }
                }
                row(m, "Slate", &sl);
                row(m, "bare qemu-img", &ba);
                fflush(stdout);
        }
        printf("\n");
        rm_rf(work);
        rm_rf(ramwork);
        return 0;
}
