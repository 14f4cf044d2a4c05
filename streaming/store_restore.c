/* The block store's restore (store.h): a version's runs read from their packs a batch at a
 * time, opened, and written on a thread of its own; into a file with early writeback. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "streaming/store_int.h"

int store_write_fd(void *userdata, uint64_t offset, const void *buf, size_t len)
{
        return pwrite(*(int *)userdata, buf, len, (off_t)offset) == (ssize_t)len ? 0 : -errno;
}

/* A restore into a file: buffered, with the writeback of every 32 MiB started early (not waited
 * for), so the disk works while the next blocks are opened and the final fsync has little left.
 * (Direct I/O was measured slower here: one 4 MiB write in flight at a time waits on the disk.) */
typedef struct FdTarget {
        int fd;
        uint64_t pending_from, pending_to;
} FdTarget;

static int write_fd_target(void *userdata, uint64_t offset, const void *buf, size_t len)
{
        FdTarget *t = userdata;
        if (pwrite(t->fd, buf, len, (off_t)offset) != (ssize_t)len)
                return -errno;
        if (offset < t->pending_from || offset > t->pending_to) {
                t->pending_from = offset;
                t->pending_to = offset;
        }
        t->pending_to = offset + len;
        if (t->pending_to - t->pending_from >= (32u << 20)) {
                sync_file_range(t->fd, (off_t)t->pending_from, (off_t)(t->pending_to - t->pending_from),
                                SYNC_FILE_RANGE_WRITE);
                t->pending_from = t->pending_to;
        }
        return 0;
}

int store_restore_fd(Store *s, const char *name, int version, int fd, StoreStats *st, char **ret_error)
{
        FdTarget t = { .fd = fd };
        int r = store_restore(s, name, version, write_fd_target, &t, st, ret_error);
        if (r == 0 && fsync(fd) < 0 && errno != EINVAL) {
                r = -errno;
                *ret_error = xasprintf("fsync: %s", strerror(-r));
        }
        return r;
}

#define RESTORE_BATCH 1024      /* blocks read from a pack with one pread and written with one write */
#define RESTORE_RECORD_MAX (PACK_RECORD_HEADER + 1 + STORE_BLOCK + TAG_LEN)

/* A restore's writes go to a thread of their own: while it copies one batch into the target (the
 * kernel's copy into the page cache costs as much as opening the blocks), the next is opened. */
typedef struct Flusher {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        StoreWriteFn write;
        void *userdata;
        uint8_t *buf[2];
        int cur;                /* the buffer being filled */
        bool busy, stop;        /* a write is queued or running; the thread is to end */
        uint64_t off;
        size_t len;
        int result;             /* the first failed write's */
} Flusher;

static void *flusher_main(void *arg)
{
        Flusher *f = arg;
        pthread_mutex_lock(&f->mu);
        for (;;) {
                while (!f->busy && !f->stop)
                        pthread_cond_wait(&f->cv, &f->mu);
                if (!f->busy)
                        break;
                uint8_t *buf = f->buf[!f->cur];
                uint64_t off = f->off;
                size_t len = f->len;
                pthread_mutex_unlock(&f->mu);
                int r = f->result < 0 ? 0 : f->write(f->userdata, off, buf, len);
                pthread_mutex_lock(&f->mu);
                if (r < 0 && f->result == 0)
                        f->result = r;
                f->busy = false;
                pthread_cond_broadcast(&f->cv);
        }
        pthread_mutex_unlock(&f->mu);
        return NULL;
}

static int flusher_start(Flusher *f, StoreWriteFn write, void *userdata)
{
        *f = (Flusher){ .write = write, .userdata = userdata };
        for (int i = 0; i < 2; i++)     /* page-aligned: whole pages to copy into the page cache */
                if (posix_memalign((void **)&f->buf[i], 4096, (size_t)RESTORE_BATCH * STORE_BLOCK) != 0)
                        abort();
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        return -pthread_create(&f->thread, NULL, flusher_main, f);
}

/* Waits for the write in flight: its result (or an earlier one's). */
static int flusher_wait(Flusher *f)
{
        pthread_mutex_lock(&f->mu);
        while (f->busy)
                pthread_cond_wait(&f->cv, &f->mu);
        int r = f->result;
        pthread_mutex_unlock(&f->mu);
        return r;
}

/* Hands the filled buffer over (len bytes for offset) and gives the other one to fill. */
static int flusher_submit(Flusher *f, uint64_t off, size_t len)
{
        int r = flusher_wait(f);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->mu);
        f->off = off;
        f->len = len;
        f->cur = !f->cur;
        f->busy = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        return 0;
}

static int flusher_end(Flusher *f)
{
        int r = flusher_wait(f);
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        free(f->buf[0]);
        free(f->buf[1]);
        return r;
}

/* Blocks [disk_block, +n) from entries [entry, +n) of pack: read in batches of adjacent records,
 * opened (the tag checks each), written in runs. */
static int restore_run(Store *s, uint32_t pack, uint32_t entry, uint32_t n, uint64_t disk_block, uint8_t *rbuf,
                       Flusher *fl, StoreStats *st, uint64_t total, uint64_t *bad_block)
{
        int fd = store_pack_fd(s, pack);
        if (fd < 0)
                return fd;
        for (uint32_t i = 0; i < n;) {
                const PackEntry *e = &s->packs[pack].e[entry + i];
                uint64_t base = e->offset, end = base;
                uint32_t k = 0;
                while (i + k < n && k < RESTORE_BATCH) {
                        const PackEntry *f = &s->packs[pack].e[entry + i + k];
                        uint64_t fend = f->offset + PACK_RECORD_HEADER + f->len;
                        if (fend - base > (uint64_t)RESTORE_BATCH * RESTORE_RECORD_MAX)
                                break;
                        end = fend;
                        k++;
                }
                *bad_block = disk_block + i;
                if (k == 0 || pread(fd, rbuf, end - base, (off_t)base) != (ssize_t)(end - base))
                        return -EBADMSG;
                for (uint32_t j = 0; j < k; j++) {
                        const PackEntry *f = &s->packs[pack].e[entry + i + j];
                        const uint8_t *rec = rbuf + (f->offset - base);
                        size_t got;
                        *bad_block = disk_block + i + j;
                        int r = pack_record_check(rec, PACK_RECORD_HEADER + f->len, f);
                        if (r == 0)
                                r = store_unseal(s, f->id, rec + PACK_RECORD_HEADER, f->len,
                                           fl->buf[fl->cur] + (size_t)j * STORE_BLOCK, STORE_BLOCK, false, &got);
                        if (r < 0 || got != STORE_BLOCK)
                                return -EBADMSG;
                }
                int r = flusher_submit(fl, (disk_block + i) * STORE_BLOCK, (size_t)k * STORE_BLOCK);
                if (r < 0)
                        return r == -EBADMSG || r == -ENOENT ? -EIO : r;
                st->bytes_written += (uint64_t)k * STORE_BLOCK;
                store_progress(s, "restore", st->bytes_written, total);
                i += k;
        }
        return 0;
}

int store_restore(Store *s, const char *name, int version, StoreWriteFn write, void *userdata, StoreStats *st,
                  char **ret_error)
{
        *ret_error = NULL;
        *st = (StoreStats){ 0 };
        _cleanup_free_ uint8_t *buf = NULL;
        VersionHeader h;
        int r = store_version_load(s, name, version, &buf, &h);
        if (r < 0) {
                *ret_error = xasprintf("%s: version %d %s", name, version,
                                       r == -EBADMSG ? "is damaged (it does not parse or its MAC fails)"
                                                     : strerror(-r));
                return r;
        }
        uint64_t n_blocks = h.disk_size / STORE_BLOCK;
        /* The maps first: a missing or damaged one fails before anything is written, and the
         * progress knows the total. */
        MapRun **maps = xmalloc0(sizeof *maps * (h.n_maps + 1));
        size_t *n_runs = xmalloc0(sizeof *n_runs * (h.n_maps + 1));
        uint64_t total = 0;
        for (uint32_t m = 0; m < h.n_maps && r == 0; m++) {
                const uint8_t *map_id = h.maps + (size_t)m * ID_LEN;
                if (memcmp(map_id, store_zero_id, ID_LEN) == 0)
                        continue;
                uint32_t cnt = (uint32_t)MIN((uint64_t)h.map_blocks, n_blocks - (uint64_t)m * h.map_blocks);
                r = store_map_get(s, map_id, cnt, &maps[m], &n_runs[m]);
                if (r < 0) {
                        *ret_error = xasprintf("%s v%d: the map of blocks %llu.. is %s", name, version,
                                               (unsigned long long)m * h.map_blocks,
                                               r == -ENOENT ? "missing" : "damaged");
                        break;
                }
                for (size_t i = 0; i < n_runs[m]; i++)
                        if (maps[m][i].pack)
                                total += (uint64_t)maps[m][i].blocks * STORE_BLOCK;
        }
        _cleanup_free_ uint8_t *rbuf = r == 0 ? xmalloc0((size_t)RESTORE_BATCH * RESTORE_RECORD_MAX) : NULL;
        Flusher fl;
        bool flushing = r == 0 && (r = flusher_start(&fl, write, userdata)) == 0;
        if (r < 0 && !*ret_error)
                *ret_error = xasprintf("starting the writer: %s", strerror(-r));
        store_progress(s, "restore", 0, total);
        for (uint32_t m = 0; m < h.n_maps && r == 0; m++) {
                uint64_t block = (uint64_t)m * h.map_blocks;
                for (size_t i = 0; i < n_runs[m] && r == 0; i++) {
                        const MapRun *run = &maps[m][i];
                        uint64_t bad = block;
                        if (run->pack) {
                                for (uint32_t j = 0; j < run->blocks; j++)
                                        if (!store_entry(s, run->pack, run->entry + j)) {
                                                r = -ENOENT;
                                                bad = block + j;
                                                break;
                                        }
                                if (r == 0)
                                        r = restore_run(s, run->pack, run->entry, run->blocks, block, rbuf, &fl, st,
                                                        total, &bad);
                        }
                        if (r == -ENOENT || r == -EBADMSG)
                                *ret_error = xasprintf("%s v%d: block %llu is %s", name, version,
                                                       (unsigned long long)bad, r == -ENOENT ? "missing" : "damaged");
                        else if (r < 0)
                                *ret_error = xasprintf("writing block %llu: %s", (unsigned long long)bad, strerror(-r));
                        block += run->blocks;
                }
        }
        if (flushing) {
                int e = flusher_end(&fl);
                if (r == 0 && e < 0) {
                        r = e;
                        *ret_error = xasprintf("writing the disk: %s", strerror(-r));
                }
        }
        for (uint32_t m = 0; m < h.n_maps; m++)
                free(maps[m]);
        free(maps);
        free(n_runs);
        return r;
}
