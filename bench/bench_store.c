/* Benchmark helper for bench/sections/50-store.sh: backs disk images up into Slate's block store
 * (streaming/store.c) and restores them, works out the ideal (the changed or new 4 KiB blocks,
 * each zstd -1 compressed), makes the deterministic files of the workload, and times any command
 * (wall, CPU, peak RSS) the same way for Slate and the reference tools. It never measures itself:
 * the section runs `bench_store time` around every backup and restore, whoever makes it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zstd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "streaming/profile.h"
#include "streaming/profile_read.h"
#include "streaming/store.h"

#define BLOCK STORE_BLOCK
#define READ_CHUNK (4u << 20)   /* images are read 4 MiB at a time */
#define HASH_LEN 16             /* SHA-256 prefix: enough to tell 4 KiB blocks apart here */

/* Any 32 bytes will do: the store's own key is random and wrapped by this one. */
static const uint8_t host_key[STORE_HOST_KEY_LEN] = { 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42 };

static double now_msf(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int usage(int r)
{
        fprintf(r ? stderr : stdout,
                "usage: bench_store backup STORE NAME IMAGE [--parent V --dirty FILE] [--map-blocks N]\n"
                "       bench_store restore STORE NAME VERSION OUT\n"
                "       bench_store replicate STORE DEST\n"
                "       bench_store profile STORE NAME QCOW2 KEYHEX [--parent V]\n"
                "       bench_store diff A B [--extents FILE] [--granularity BYTES]\n"
                "       bench_store ideal [--seen FILE] IMAGE\n"
                "       bench_store files DIR SEED COUNT MIN_BYTES MAX_BYTES\n"
                "       bench_store file PATH SEED BYTES random|text\n"
                "       bench_store time -o FILE -- COMMAND [ARG...]\n"
                "backup and restore print key=value stats; diff and ideal print the changed (new) blocks,\n"
                "their bytes and the sum of each block zstd -1 compressed; time writes\n"
                "\"wall_ms cpu_ms peak_rss_kib exit\" to FILE and exits as COMMAND did.\n");
        return r;
}

static int fail(const char *what, const char *detail)
{
        fprintf(stderr, "bench_store: %s: %s\n", what, detail);
        return 1;
}

/* ---- the workload's files: deterministic, half of them compressible ---- */

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* "text": 16 symbols, 4 bits of entropy a byte (zstd -1 keeps ~60 %); "random": incompressible. */
static void fill(uint64_t *s, uint8_t *buf, size_t n, bool text)
{
        static const char sym[16] = "etaoinshrdlu .,\n";
        for (size_t i = 0; i < n; i += 8) {
                uint64_t v = rng_next(s);
                for (size_t j = 0; j < 8 && i + j < n; j++, v >>= 8)
                        buf[i + j] = text ? (uint8_t)sym[v & 15] : (uint8_t)v;
        }
}

static int write_file(const char *path, uint64_t *s, uint64_t size, bool text)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return fail(path, strerror(errno));
        _cleanup_free_ uint8_t *buf = xmalloc0(1 << 20);
        for (uint64_t done = 0; done < size;) {
                size_t n = (size_t)MIN((uint64_t)(1 << 20), size - done);
                fill(s, buf, n, text);
                if (write(fd, buf, n) != (ssize_t)n)
                        return fail(path, strerror(errno));
                done += n;
        }
        return 0;
}

static int cmd_file(int argc, char **argv)
{
        if (argc != 5 || (strcmp(argv[4], "random") && strcmp(argv[4], "text")))
                return usage(2);
        uint64_t seed = strtoull(argv[2], NULL, 10), size;
        if (parse_size(argv[3], &size) < 0)
                return usage(2);
        return write_file(argv[1], &seed, size, strcmp(argv[4], "text") == 0);
}

/* COUNT files in DIR/dNN/ (100 a directory), sizes log-uniform between MIN and MAX. */
static int cmd_files(int argc, char **argv)
{
        uint64_t lo, hi;
        if (argc != 6 || parse_size(argv[4], &lo) < 0 || parse_size(argv[5], &hi) < 0 || lo == 0 || hi < lo)
                return usage(2);
        uint64_t s = strtoull(argv[2], NULL, 10) * 7919 + 1;
        unsigned long count = strtoul(argv[3], NULL, 10);
        for (unsigned long i = 0; i < count; i++) {
                _cleanup_free_ char *dir = xasprintf("%s/d%02lu", argv[1], i / 100);
                if (i % 100 == 0 && mkdir_p(dir, 0755) < 0)
                        return fail(dir, strerror(errno));
                double u = (double)(rng_next(&s) >> 11) / (double)(1ull << 53);
                uint64_t size = (uint64_t)((double)lo * pow((double)hi / (double)lo, u));
                bool text = rng_next(&s) & 1;
                _cleanup_free_ char *path = xasprintf("%s/f%05lu.%s", dir, i, text ? "txt" : "bin");
                if (write_file(path, &s, size, text))
                        return 1;
        }
        return 0;
}

/* ---- ideal sizes ---- */

static size_t zstd_block(ZSTD_CCtx *z, const uint8_t *block)
{
        static uint8_t out[ZSTD_COMPRESSBOUND(BLOCK)];
        size_t n = ZSTD_compressCCtx(z, out, sizeof out, block, BLOCK, 1);
        return ZSTD_isError(n) || n > BLOCK ? BLOCK : n;       /* stored raw when it does not shrink */
}

static bool block_zero(const uint8_t *p)
{
        return p[0] == 0 && memcmp(p, p + 1, BLOCK - 1) == 0;
}

static int open_image(const char *path, uint64_t *size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                fail(path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (st.st_size % BLOCK) {
                fail(path, "size is not a multiple of 4 KiB");
                close(fd);
                return -1;
        }
        *size = (uint64_t)st.st_size;
        return fd;
}

static int read_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
        for (size_t done = 0; done < n;) {
                ssize_t r = pread(fd, buf + done, n - done, (off_t)(off + done));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -EIO;
                done += (size_t)r;
        }
        return 0;
}

/* Blocks that differ between A and B at the same offset (what a dirty bitmap reports), their
 * bytes raw and compressed; --extents writes them as "offset length" lines, rounded out to the
 * granularity (QEMU's dirty bitmaps default to 64 KiB) and merged. */
static int cmd_diff(int argc, char **argv)
{
        const char *extents = NULL;
        uint64_t gran = BLOCK;
        const char *a = NULL, *b = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--extents") == 0 && i + 1 < argc)
                        extents = argv[++i];
                else if (strcmp(argv[i], "--granularity") == 0 && i + 1 < argc && parse_size(argv[i + 1], &gran) == 0)
                        i++;
                else if (!a)
                        a = argv[i];
                else if (!b)
                        b = argv[i];
                else
                        return usage(2);
        }
        if (!b || gran < BLOCK || gran % BLOCK)
                return usage(2);
        uint64_t sa, sb;
        _cleanup_close_ int fa = open_image(a, &sa);
        _cleanup_close_ int fb = open_image(b, &sb);
        if (fa < 0 || fb < 0)
                return 1;
        if (sa != sb)
                return fail(b, "not the size of the first image");
        _cleanup_fclose_ FILE *ex = extents ? fopen(extents, "we") : NULL;
        if (extents && !ex)
                return fail(extents, strerror(errno));
        _cleanup_free_ uint8_t *ba = xmalloc0(READ_CHUNK), *bb = xmalloc0(READ_CHUNK);
        ZSTD_CCtx *z = ZSTD_createCCtx();
        uint64_t changed = 0, zbytes = 0, run_start = 0, run_end = 0, n_extents = 0;
        for (uint64_t off = 0; off < sa; off += READ_CHUNK) {
                size_t n = (size_t)MIN((uint64_t)READ_CHUNK, sa - off);
                if (read_full(fa, ba, n, off) < 0 || read_full(fb, bb, n, off) < 0)
                        return fail(a, "read failed");
                for (size_t i = 0; i < n; i += BLOCK) {
                        if (memcmp(ba + i, bb + i, BLOCK) == 0)
                                continue;
                        changed++;
                        zbytes += block_zero(bb + i) ? 0 : zstd_block(z, bb + i);
                        uint64_t s = (off + i) / gran * gran, e = MIN(s + gran, sa);
                        if (run_end && s <= run_end) {
                                run_end = MAX(run_end, e);
                                continue;
                        }
                        if (run_end && ex)
                                fprintf(ex, "%llu %llu\n", (unsigned long long)run_start,
                                        (unsigned long long)(run_end - run_start));
                        n_extents += run_end != 0;
                        run_start = s;
                        run_end = e;
                }
        }
        if (run_end && ex)
                fprintf(ex, "%llu %llu\n", (unsigned long long)run_start, (unsigned long long)(run_end - run_start));
        n_extents += run_end != 0;
        ZSTD_freeCCtx(z);
        printf("changed_blocks=%llu changed_bytes=%llu ideal_bytes=%llu extents=%llu\n", (unsigned long long)changed,
               (unsigned long long)(changed * BLOCK), (unsigned long long)zbytes, (unsigned long long)n_extents);
        return 0;
}

/* A set of block hashes: open addressing, an all-zero key marks a free slot. */
typedef struct HashSet {
        uint8_t *keys;
        size_t n, cap;
} HashSet;

static bool set_add(HashSet *h, const uint8_t *k);

static void set_grow(HashSet *h)
{
        HashSet old = *h;
        h->cap = old.cap ? old.cap * 2 : 1 << 16;
        h->keys = xmalloc0(h->cap * HASH_LEN);
        h->n = 0;
        for (size_t i = 0; i < old.cap; i++)
                if (old.keys[i * HASH_LEN] || memcmp(old.keys + i * HASH_LEN, old.keys + i * HASH_LEN + 1, HASH_LEN - 1))
                        set_add(h, old.keys + i * HASH_LEN);
        free(old.keys);
}

/* true if k was new */
static bool set_add(HashSet *h, const uint8_t *k)
{
        static const uint8_t empty[HASH_LEN];
        if ((h->n + 1) * 2 > h->cap)
                set_grow(h);
        uint64_t x;
        memcpy(&x, k, sizeof x);
        for (size_t i = x & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
                uint8_t *slot = h->keys + i * HASH_LEN;
                if (memcmp(slot, empty, HASH_LEN) == 0) {
                        memcpy(slot, k, HASH_LEN);
                        h->n++;
                        return true;
                }
                if (memcmp(slot, k, HASH_LEN) == 0)
                        return false;
        }
}

/* Distinct non-zero blocks of IMAGE that no earlier image (the --seen file) had: what an ideal
 * deduplicating store adds for it. The seen file then holds this image's blocks too. */
static int cmd_ideal(int argc, char **argv)
{
        const char *seen = NULL, *image = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--seen") == 0 && i + 1 < argc)
                        seen = argv[++i];
                else if (!image)
                        image = argv[i];
                else
                        return usage(2);
        }
        if (!image)
                return usage(2);
        HashSet h = { 0 };
        set_grow(&h);
        _cleanup_fclose_ FILE *sf = seen ? fopen(seen, "a+e") : NULL;
        if (seen && !sf)
                return fail(seen, strerror(errno));
        uint8_t k[HASH_LEN];
        if (sf) {
                rewind(sf);
                while (fread(k, HASH_LEN, 1, sf) == 1)
                        set_add(&h, k);
        }
        uint64_t size;
        _cleanup_close_ int fd = open_image(image, &size);
        if (fd < 0)
                return 1;
        _cleanup_free_ uint8_t *buf = xmalloc0(READ_CHUNK);
        ZSTD_CCtx *z = ZSTD_createCCtx();
        uint64_t nonzero = 0, fresh = 0, zbytes = 0;
        for (uint64_t off = 0; off < size; off += READ_CHUNK) {
                size_t n = (size_t)MIN((uint64_t)READ_CHUNK, size - off);
                if (read_full(fd, buf, n, off) < 0)
                        return fail(image, "read failed");
                for (size_t i = 0; i < n; i += BLOCK) {
                        if (block_zero(buf + i))
                                continue;
                        nonzero++;
                        uint8_t md[EVP_MAX_MD_SIZE];
                        if (EVP_Digest(buf + i, BLOCK, md, NULL, EVP_sha256(), NULL) != 1)
                                return fail(image, "sha256 failed");
                        if (!set_add(&h, md))
                                continue;
                        size_t c = zstd_block(z, buf + i);
                        fresh++;
                        zbytes += c;
                        if (sf)
                                fwrite(md, HASH_LEN, 1, sf);
                }
        }
        ZSTD_freeCCtx(z);
        free(h.keys);
        if (sf && fflush(sf) != 0)
                return fail(seen, strerror(errno));
        printf("nonzero_blocks=%llu new_blocks=%llu new_bytes=%llu ideal_bytes=%llu\n", (unsigned long long)nonzero,
               (unsigned long long)fresh, (unsigned long long)(fresh * BLOCK), (unsigned long long)zbytes);
        return 0;
}

/* ---- Slate ---- */

typedef struct Image {
        int fd;
} Image;

static int image_read(void *ud, uint64_t offset, void *buf, size_t len)
{
        return read_full(((Image *)ud)->fd, buf, len, offset);
}

static int read_extents(const char *path, StoreExtent **ret, size_t *ret_n)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        StoreExtent *v = NULL;
        size_t n = 0;
        unsigned long long o, l;
        while (fscanf(f, "%llu %llu", &o, &l) == 2) {
                v = xrealloc(v, sizeof *v * (n + 1));
                v[n++] = (StoreExtent){ .offset = o, .length = l };
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int cmd_backup(int argc, char **argv)
{
        int parent = 0;
        unsigned map_blocks = 0;
        const char *dirty = NULL, *pos[3] = { 0 };
        int npos = 0;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc)
                        parent = atoi(argv[++i]);
                else if (strcmp(argv[i], "--dirty") == 0 && i + 1 < argc)
                        dirty = argv[++i];
                else if (strcmp(argv[i], "--map-blocks") == 0 && i + 1 < argc)
                        map_blocks = (unsigned)strtoul(argv[++i], NULL, 10);
                else if (npos < 3)
                        pos[npos++] = argv[i];
                else
                        return usage(2);
        }
        if (npos != 3 || (parent > 0) != (dirty != NULL))
                return usage(2);
        _cleanup_free_ StoreExtent *ext = NULL;
        size_t n_ext = 0;
        if (dirty && read_extents(dirty, &ext, &n_ext) < 0)
                return fail(dirty, strerror(errno));
        uint64_t size;
        Image img = { .fd = open_image(pos[2], &size) };
        if (img.fd < 0)
                return 1;
        double t0 = now_msf();
        Store *s;
        _cleanup_free_ char *err = NULL;
        int r = store_open(pos[0], host_key, true, &s, &err);
        if (r < 0)
                return fail(pos[0], err);
        if (map_blocks && store_set_map_blocks(s, map_blocks) < 0)
                return fail("--map-blocks", "a power of two from 64 to 1024");
        double t1 = now_msf();
        StoreStats st;
        int v = 0;
        r = store_backup(s, pos[1], size, image_read, &img, parent, ext, n_ext, &st, &v, &err);
        double t2 = now_msf();
        close(img.fd);
        if (r < 0) {
                store_close(s);
                return fail(pos[1], err);
        }
        /* The version file's size, from the layout store.c documents (versions/NAME/N.ver). */
        _cleanup_free_ char *vpath = xasprintf("%s/versions/%s/%08d.ver", pos[0], pos[1], v);
        struct stat vs;
        StoreUsage u;
        store_usage(s, &u);
        store_close(s);
        printf("version=%d open_ms=%.1f backup_ms=%.1f blocks_read=%llu zero_blocks=%llu dup_blocks=%llu "
               "new_chunks=%llu new_bytes=%llu maps_reused=%llu version_bytes=%lld stored_bytes=%llu\n",
               v, t1 - t0, t2 - t1, (unsigned long long)st.blocks_read, (unsigned long long)st.zero_blocks,
               (unsigned long long)st.dup_blocks, (unsigned long long)st.new_chunks, (unsigned long long)st.new_bytes,
               (unsigned long long)st.maps_reused, stat(vpath, &vs) == 0 ? (long long)vs.st_size : -1LL,
               (unsigned long long)u.stored_bytes);
        return 0;
}

static int cmd_restore(int argc, char **argv)
{
        if (argc != 5)
                return usage(2);
        int v = atoi(argv[3]);
        double t0 = now_msf();
        Store *s;
        _cleanup_free_ char *err = NULL;
        int r = store_open(argv[1], host_key, false, &s, &err);
        if (r < 0)
                return fail(argv[1], err);
        double t_open = now_msf() - t0;
        uint64_t size;
        if (store_version_info(s, argv[2], v, &size, NULL) < 0) {
                store_close(s);
                return fail(argv[2], "no such version");
        }
        _cleanup_close_ int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
                store_close(s);
                return fail(argv[4], strerror(errno));
        }
        StoreStats st;
        r = store_restore_fd(s, argv[2], v, fd, &st, &err);
        store_close(s);
        if (r < 0)
                return fail(argv[2], err);
        printf("restore_ms=%.1f open_ms=%.1f disk_bytes=%llu bytes_written=%llu\n", now_msf() - t0, t_open,
               (unsigned long long)size, (unsigned long long)st.bytes_written);
        return 0;
}

static int cmd_replicate(int argc, char **argv)
{
        if (argc != 3)
                return usage(2);
        double t0 = now_msf();
        Store *s;
        _cleanup_free_ char *err = NULL;
        int r = store_open(argv[1], host_key, false, &s, &err);
        if (r < 0)
                return fail(argv[1], err);
        StoreReplicaStats rs;
        r = store_replicate(s, host_key, argv[2], &rs, &err);
        store_close(s);
        if (r < 0)
                return fail(argv[2], err);
        printf("replicate_ms=%.1f chunks_sent=%llu bytes_sent=%llu chunks_present=%llu versions_sent=%llu\n",
               now_msf() - t0, (unsigned long long)rs.chunks_sent, (unsigned long long)rs.bytes_sent,
               (unsigned long long)rs.chunks_present, (unsigned long long)rs.versions_sent);
        return 0;
}

/* What slated does at a logout (broker/backup.c backup_run), on an encrypted profile qcow2 with
 * its dirty bitmap, with the store already open (slated keeps it): qemu-nbd serves the closed
 * disk, the bitmap names the changed blocks (with --parent; else the allocated ones), the store
 * takes them, qemu-img clears the bitmap. Each part timed. */
static int cmd_profile(int argc, char **argv)
{
        int parent = 0;
        if (argc == 7 && strcmp(argv[5], "--parent") == 0)
                parent = atoi(argv[6]);
        else if (argc != 5)
                return usage(2);
        uint8_t key[PROFILE_KEY_LEN];
        const char *hex = argv[4];
        if (strlen(hex) != 2 * PROFILE_KEY_LEN)
                return fail("KEYHEX", "64 hex digits");
        for (size_t i = 0; i < PROFILE_KEY_LEN; i++) {
                unsigned x;
                if (sscanf(hex + 2 * i, "%2x", &x) != 1)
                        return fail("KEYHEX", "64 hex digits");
                key[i] = (uint8_t)x;
        }
        double t0 = now_msf();
        Store *s;
        _cleanup_free_ char *err = NULL;
        if (store_open(argv[1], host_key, true, &s, &err) < 0)
                return fail(argv[1], err);
        double t1 = now_msf();
        _cleanup_free_ char *sock = xasprintf("%s/.nbd", argv[1]);
        mkdir_p(sock, 0700);
        ProfileReader *rd;
        bool trusted;
        if (profile_reader_open("/usr/bin/qemu-nbd", argv[3], key, sock, &rd, &trusted, &err) < 0)
                return fail(argv[3], err);
        double t2 = now_msf();
        StoreExtent *ext = NULL;
        size_t n = 0;
        int r = parent > 0 ? (trusted ? profile_reader_dirty(rd, &ext, &n) : -EBADMSG)
                           : profile_reader_allocated(rd, &ext, &n);
        if (r < 0)
                return fail(argv[3], parent > 0 ? "no trusted dirty bitmap" : "block status failed");
        double t3 = now_msf();
        StoreStats st;
        int v = 0;
        r = store_backup(s, argv[2], profile_reader_size(rd), profile_reader_read, rd, parent, ext, n, &st, &v, &err);
        free(ext);
        profile_reader_close(rd);
        double t4 = now_msf();
        if (r < 0)
                return fail(argv[2], err);
        if (profile_bitmap("/usr/bin/qemu-img", argv[3], key, PROFILE_BITMAP_CLEAR, &err) < 0)
                return fail(argv[3], err);
        double t5 = now_msf();
        store_close(s);
        printf("version=%d store_open_ms=%.1f nbd_open_ms=%.1f extents_ms=%.1f backup_ms=%.1f bitmap_ms=%.1f "
               "logout_ms=%.1f blocks_read=%llu new_chunks=%llu new_bytes=%llu\n",
               v, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t1, (unsigned long long)st.blocks_read,
               (unsigned long long)st.new_chunks, (unsigned long long)st.new_bytes);
        return 0;
}

/* ---- one way to time every tool ---- */

static int cmd_time(int argc, char **argv)
{
        if (argc < 5 || strcmp(argv[1], "-o") || strcmp(argv[3], "--"))
                return usage(2);
        double t0 = now_msf();
        pid_t pid = fork();
        if (pid < 0)
                return fail("fork", strerror(errno));
        if (pid == 0) {
                execvp(argv[4], argv + 4);
                fprintf(stderr, "bench_store: %s: %s\n", argv[4], strerror(errno));
                _exit(127);
        }
        int status;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        return fail("wait4", strerror(errno));
        double wall = now_msf() - t0;
        double cpu = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
                     ru.ru_stime.tv_usec / 1e3;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        _cleanup_fclose_ FILE *f = fopen(argv[2], "we");
        if (!f)
                return fail(argv[2], strerror(errno));
        fprintf(f, "%.1f %.1f %ld %d\n", wall, cpu, ru.ru_maxrss, code);
        return code;
}

int main(int argc, char *argv[])
{
        if (argc < 2)
                return usage(2);
        const char *c = argv[1];
        argc--;
        argv++;
        static const struct {
                const char *name;
                int (*run)(int argc, char **argv);
        } cmds[] = {
                { "backup", cmd_backup }, { "restore", cmd_restore }, { "replicate", cmd_replicate },
                { "profile", cmd_profile }, { "diff", cmd_diff }, { "ideal", cmd_ideal }, { "files", cmd_files },
                { "file", cmd_file }, { "time", cmd_time },
        };
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
                if (strcmp(c, cmds[i].name) == 0)
                        return cmds[i].run(argc, argv);
        if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0)
                return usage(0);
        return usage(2);
}
