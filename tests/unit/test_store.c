/* The block store (streaming/store.c) on real files: a backup restores bit for bit; a small edit
 * inside a 24 MB file adds only its changed blocks; a second disk holding the same files in
 * another layout shares their chunks; a damaged chunk is found by check and by restore, with
 * the affected version named; the store opens only with its host key. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/util.h"
#include "streaming/store.h"

static char dir[] = "/tmp/slate-store-XXXXXX";
static void setup(void) { cr_assert_not_null(mkdtemp(dir)); }
static void teardown(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "umount %s/small 2>/dev/null", dir);       /* the full-disk test's tmpfs */
        if (system(cmd) < 0)
                return;
        rm_rf(dir);
}
TestSuite(store, .init = setup, .fini = teardown);

static const uint8_t host[STORE_HOST_KEY_LEN] = { 1, 2, 3 };

static int read_fd(void *ud, uint64_t off, void *buf, size_t len)
{
        return pread(*(int *)ud, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

/* A disk image: size bytes, the given 4 KiB blocks filled from a seed, the rest zeros. */
static int disk_make(const char *name, uint64_t size, uint64_t first, uint64_t n, unsigned seed)
{
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t)size), 0);
        uint8_t b[STORE_BLOCK];
        for (uint64_t i = 0; i < n; i++) {
                srand(seed + (unsigned)i);
                for (size_t k = 0; k < sizeof b; k++)
                        b[k] = (uint8_t)rand();
                cr_assert_eq(pwrite(fd, b, sizeof b, (off_t)((first + i) * STORE_BLOCK)), (ssize_t)sizeof b);
        }
        return fd;
}

static void same_files(int a, int b, uint64_t size)
{
        static uint8_t x[1 << 16], y[1 << 16];
        for (uint64_t off = 0; off < size; off += sizeof x) {
                cr_assert_eq(pread(a, x, sizeof x, (off_t)off), (ssize_t)sizeof x);
                cr_assert_eq(pread(b, y, sizeof y, (off_t)off), (ssize_t)sizeof y);
                cr_assert(memcmp(x, y, sizeof x) == 0, "restored disk differs at %llu", (unsigned long long)off);
        }
}

static int restore_to(Store *s, const char *name, int v, uint64_t size, const char *file)
{
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, (off_t)size), 0);
        StoreStats st;
        char *err = NULL;
        int r = store_restore_fd(s, name, v, fd, &st, &err);
        cr_assert_eq(r, 0, "restore: %s", err);
        return fd;
}

#define SIZE (64ull << 20)      /* a 64 MiB disk: 16 maps */
#define FILE_BLOCKS 6144        /* a 24 MiB file */

Test(store, a_small_edit_adds_only_the_changed_blocks_and_restores_bit_for_bit)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("alice.img", SIZE, 100, FILE_BLOCKS, 7);
        StoreStats st;
        int v1, v2;
        cr_assert_eq(store_backup(s, "alice", SIZE, read_fd, &disk, 0, NULL, 0, &st, &v1, &err), 0, "%s", err);
        cr_assert_eq(v1, 1);
        cr_assert_eq(st.blocks_read, SIZE / STORE_BLOCK);
        cr_assert_eq(st.zero_blocks, SIZE / STORE_BLOCK - FILE_BLOCKS);
        cr_log_info("full: %llu chunks, %llu bytes", (unsigned long long)st.new_chunks, (unsigned long long)st.new_bytes);

        /* A few KiB changed inside the file: 3 blocks, two of them adjacent, across two maps. */
        uint8_t junk[STORE_BLOCK];
        memset(junk, 0x5a, sizeof junk);
        const uint64_t changed[] = { 100 + 10, 100 + 11, 100 + 3000 };
        StoreExtent dirty[3];
        for (int i = 0; i < 3; i++) {
                junk[0] = (uint8_t)i;
                cr_assert_eq(pwrite(disk, junk, 100, (off_t)(changed[i] * STORE_BLOCK + 500)), 100);
                dirty[i] = (StoreExtent){ changed[i] * STORE_BLOCK + 500, 100 };
        }
        cr_assert_eq(store_backup(s, "alice", SIZE, read_fd, &disk, v1, dirty, 3, &st, &v2, &err), 0, "%s", err);
        cr_assert_eq(v2, 2);
        cr_assert_eq(st.blocks_read, 3, "an incremental read %llu blocks", (unsigned long long)st.blocks_read);
        /* The 3 blocks and the 2 maps they are in: nothing else. */
        cr_assert_eq(st.new_chunks, 3 + 2, "new chunks: %llu", (unsigned long long)st.new_chunks);
        cr_assert_eq(st.maps_reused, SIZE / STORE_BLOCK / STORE_MAP_BLOCKS - 2);
        cr_log_info("incremental: %llu bytes added for 3 changed blocks", (unsigned long long)st.new_bytes);
        cr_assert_lt(st.new_bytes, 3 * (STORE_BLOCK + 200) + 2 * 40000);

        /* Both versions come back bit for bit (version 1 without the edit). */
        int out = restore_to(s, "alice", v2, SIZE, "v2.img");
        same_files(disk, out, SIZE);
        close(out);
        int again = disk_make("alice-v1.img", SIZE, 100, FILE_BLOCKS, 7);
        out = restore_to(s, "alice", v1, SIZE, "v1.img");
        same_files(again, out, SIZE);
        close(out);
        close(again);

        /* A store reopened (another process) knows every chunk: the same disk adds nothing. */
        store_close(s);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        int v3;
        cr_assert_eq(store_backup(s, "alice", SIZE, read_fd, &disk, 0, NULL, 0, &st, &v3, &err), 0, "%s", err);
        cr_assert_eq(st.new_chunks, 0, "a full backup of an unchanged disk stored %llu chunks",
                     (unsigned long long)st.new_chunks);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), 0, "check: %s", c.report);
        cr_assert_eq(c.versions, 3);
        store_check_free(&c);
        store_close(s);
        close(disk);
}

/* 40 MiB that does not compress: more than one pack (32 MiB), each written with its index. */
Test(store, a_disk_larger_than_a_pack_fills_several_and_restores_after_reopening)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        const uint64_t size = 48ull << 20, blocks = 10240;
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("big.img", size, 0, blocks, 11);
        StoreStats st;
        int v;
        cr_assert_eq(store_backup(s, "big", size, read_fd, &disk, 0, NULL, 0, &st, &v, &err), 0, "%s", err);
        cr_assert_eq(st.new_chunks, blocks + (blocks + STORE_MAP_BLOCKS - 1) / STORE_MAP_BLOCKS);
        StoreUsage u;
        store_usage(s, &u);
        cr_assert_geq(u.packs, 2, "%llu pack(s) for %llu bytes", (unsigned long long)u.packs,
                      (unsigned long long)u.stored_bytes);
        store_close(s);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        int out = restore_to(s, "big", v, size, "big-restored.img");
        same_files(disk, out, size);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), 0, "check: %s", c.report);
        store_check_free(&c);
        store_close(s);
        close(out);
        close(disk);
}

Test(store, another_disk_with_the_same_blocks_elsewhere_shares_them)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int a = disk_make("a.img", SIZE, 100, FILE_BLOCKS, 7);
        /* bob: the same file at another place (a separately built filesystem), 10 blocks of his own. */
        int b = disk_make("b.img", SIZE, 2049, FILE_BLOCKS, 7);
        uint8_t own[STORE_BLOCK];
        memset(own, 0x33, sizeof own);
        for (int i = 0; i < 10; i++) {
                own[0] = (uint8_t)i;
                cr_assert_eq(pwrite(b, own, sizeof own, (off_t)((9000 + i) * STORE_BLOCK)), (ssize_t)sizeof own);
        }
        StoreStats st;
        int v;
        cr_assert_eq(store_backup(s, "alice", SIZE, read_fd, &a, 0, NULL, 0, &st, &v, &err), 0, "%s", err);
        cr_assert_eq(store_backup(s, "bob", SIZE, read_fd, &b, 0, NULL, 0, &st, &v, &err), 0, "%s", err);
        cr_assert_eq(st.dup_blocks, FILE_BLOCKS, "shared: %llu", (unsigned long long)st.dup_blocks);
        /* His 10 blocks and his maps: no data chunk of the shared file again. */
        cr_assert_leq(st.new_chunks, 10 + SIZE / STORE_BLOCK / STORE_MAP_BLOCKS);
        int out = restore_to(s, "bob", v, SIZE, "bob.img");
        same_files(b, out, SIZE);
        close(out);
        store_close(s);
        close(a);
        close(b);
}

/* Flips one byte in the middle of every pack: check and restore find it and name the version. */
Test(store, a_damaged_chunk_is_reported_by_check_and_restore)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("d.img", 8ull << 20, 0, 64, 3);
        StoreStats st;
        int v;
        cr_assert_eq(store_backup(s, "carol", 8ull << 20, read_fd, &disk, 0, NULL, 0, &st, &v, &err), 0, "%s", err);
        store_close(s);
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "for p in %s/packs/*.pack; do printf '\\377' | dd of=$p bs=1 seek=50000 conv=notrunc 2>/dev/null; done",
                 sdir);
        cr_assert_eq(system(cmd), 0);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), -EBADMSG);
        cr_assert_eq(c.bad_chunks, 1, "bad chunks: %llu\n%s", (unsigned long long)c.bad_chunks, c.report);
        cr_assert(c.report && strstr(c.report, "carol v1: 1 chunk missing or damaged"), "report: %s", c.report);
        store_check_free(&c);
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        cr_assert_eq(store_restore_fd(s, "carol", v, fd, &st, &err), -EBADMSG);
        cr_assert(strstr(err, "carol v1: block ") && strstr(err, "is damaged"), "restore: %s", err);
        free(err);
        close(fd);
        store_close(s);
        close(disk);
}

/* A replica gets only what it lacks, resumes after an interruption, restores bit for bit. */
Test(store, replication_sends_only_missing_chunks)
{
        char sdir[256], rdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        snprintf(rdir, sizeof rdir, "%s/replica", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("r.img", SIZE, 100, FILE_BLOCKS, 5);
        StoreStats st;
        int v1, v2;
        cr_assert_eq(store_backup(s, "dave", SIZE, read_fd, &disk, 0, NULL, 0, &st, &v1, &err), 0, "%s", err);
        StoreReplicaStats rs;
        cr_assert_eq(store_replicate(s, host, rdir, &rs, &err), 0, "%s", err);
        cr_assert_eq(rs.chunks_present, 0);
        cr_assert_eq(rs.versions_sent, 1);
        uint64_t first = rs.chunks_sent;
        /* Nothing new: nothing sent. */
        cr_assert_eq(store_replicate(s, host, rdir, &rs, &err), 0, "%s", err);
        cr_assert_eq(rs.chunks_sent, 0);
        cr_assert_eq(rs.versions_sent, 0);
        cr_assert_eq(rs.chunks_present, first);
        /* One changed block: that block and its map. */
        uint8_t b[STORE_BLOCK];
        memset(b, 0x42, sizeof b);
        cr_assert_eq(pwrite(disk, b, sizeof b, 200 * STORE_BLOCK), (ssize_t)sizeof b);
        StoreExtent e = { 200 * STORE_BLOCK, STORE_BLOCK };
        cr_assert_eq(store_backup(s, "dave", SIZE, read_fd, &disk, v1, &e, 1, &st, &v2, &err), 0, "%s", err);
        cr_assert_eq(store_replicate(s, host, rdir, &rs, &err), 0, "%s", err);
        cr_assert_eq(rs.chunks_sent, 2, "sent %llu", (unsigned long long)rs.chunks_sent);
        cr_assert_eq(rs.versions_sent, 1);
        store_close(s);

        /* The replica alone (the original gone) restores the newest version bit for bit. */
        rm_rf(sdir);
        Store *r;
        cr_assert_eq(store_open(rdir, host, false, &r, &err), 0, "%s", err);
        int out = restore_to(r, "dave", v2, SIZE, "from-replica.img");
        same_files(disk, out, SIZE);
        close(out);
        StoreCheck c;
        cr_assert_eq(store_check(r, true, &c), 0, "%s", c.report);
        store_check_free(&c);
        store_close(r);
        close(disk);

        /* A store under another key is not a replica: refused. */
        const uint8_t other[STORE_HOST_KEY_LEN] = { 7 };
        char odir[256];
        snprintf(odir, sizeof odir, "%s/other", dir);
        cr_assert_eq(store_open(odir, other, true, &r, &err), 0, "%s", err);
        store_close(r);
        cr_assert_eq(store_open(rdir, host, false, &r, &err), 0, "%s", err);
        cr_assert_lt(store_replicate(r, host, odir, &rs, &err), 0);
        free(err);
        store_close(r);
}

/* Ten daily versions with one block rewritten each day: prune keeps the last three days (and
 * the week), removes the rest and exactly the chunks only they named; what is kept restores. */
Test(store, prune_keeps_the_policy_and_collects_only_dead_chunks)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("p.img", SIZE, 100, 64, 9);
        uint8_t b[STORE_BLOCK];
        StoreStats st;
        int v = 0;
        const uint64_t t0 = 1700000000;         /* a Tuesday */
        for (int day = 0; day < 10; day++) {
                memset(b, 0x10 + day, sizeof b);
                cr_assert_eq(pwrite(disk, b, sizeof b, 50 * STORE_BLOCK), (ssize_t)sizeof b);
                StoreExtent e = { 50 * STORE_BLOCK, STORE_BLOCK };
                store_set_time(s, t0 + (uint64_t)day * 86400);
                cr_assert_eq(store_backup(s, "erin", SIZE, read_fd, &disk, v, &e, v ? 1 : 0, &st, &v, &err), 0, "%s",
                             err);
        }
        StoreUsage before, after;
        store_usage(s, &before);
        StorePruneStats ps;
        cr_assert_eq(store_prune(s, 3, 1, &ps, &err), 0, "%s", err);
        cr_assert_eq(ps.versions_kept, 3, "kept %llu", (unsigned long long)ps.versions_kept);
        cr_assert_eq(ps.versions_removed, 7);
        /* Days 0-6: their block 50 and their map 0, nothing else. */
        cr_assert_eq(ps.chunks_removed, 14, "removed %llu chunks", (unsigned long long)ps.chunks_removed);
        store_usage(s, &after);
        cr_assert_eq(after.chunks, before.chunks - 14);
        int *vs;
        size_t n;
        cr_assert_eq(store_versions(s, "erin", &vs, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_eq(vs[0], 8);
        free(vs);
        int out = restore_to(s, "erin", 10, SIZE, "p10.img");
        same_files(disk, out, SIZE);
        close(out);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), 0, "%s", c.report);
        store_check_free(&c);
        /* Again: nothing more to take. And another process sees the same. */
        cr_assert_eq(store_prune(s, 3, 1, &ps, &err), 0, "%s", err);
        cr_assert_eq(ps.versions_removed + ps.chunks_removed + ps.packs_rewritten, 0);
        store_close(s);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        cr_assert_eq(store_check(s, true, &c), 0, "%s", c.report);
        cr_assert_eq(c.versions, 3);
        store_check_free(&c);
        store_close(s);
        close(disk);
}

static void die_here(void *userdata, const char *point) { _exit(42); }
static void die_at_first_pack(void *userdata, const char *point)
{
        if (strcmp(point, "pack-committed") == 0)
                _exit(42);
}

/* A replication killed after its first pack resumes: the next run sends only the rest. */
Test(store, an_interrupted_replication_resumes_without_resending)
{
        char sdir[256], rdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        snprintf(rdir, sizeof rdir, "%s/replica", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("big.img", SIZE, 0, 12000, 3);     /* 47 MiB of random blocks: two packs */
        StoreStats st;
        int v;
        cr_assert_eq(store_backup(s, "hal", SIZE, read_fd, &disk, 0, NULL, 0, &st, &v, &err), 0, "%s", err);
        uint64_t all = st.new_chunks;
        store_close(s);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                Store *c;
                char *e2 = NULL;
                StoreReplicaStats rs;
                if (store_open(sdir, host, false, &c, &e2) < 0)
                        _exit(1);
                store_set_crash_hook(c, die_at_first_pack, NULL);
                store_replicate(c, host, rdir, &rs, &e2);
                _exit(2);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42, "the replication did not stop after a pack (%d)",
                  status);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        StoreReplicaStats rs;
        cr_assert_eq(store_replicate(s, host, rdir, &rs, &err), 0, "%s", err);
        cr_assert_gt(rs.chunks_present, 0, "nothing of the first run was kept");
        cr_assert_eq(rs.chunks_present + rs.chunks_sent, all, "%llu present + %llu sent != %llu",
                     (unsigned long long)rs.chunks_present, (unsigned long long)rs.chunks_sent, (unsigned long long)all);
        cr_log_info("resumed: %llu chunks were there, %llu sent", (unsigned long long)rs.chunks_present,
                    (unsigned long long)rs.chunks_sent);
        store_close(s);
        cr_assert_eq(store_open(rdir, host, false, &s, &err), 0, "%s", err);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), 0, "%s", c.report);
        store_check_free(&c);
        int out = restore_to(s, "hal", v, SIZE, "hal.img");
        same_files(disk, out, SIZE);
        close(out);
        store_close(s);
        close(disk);
}

/* A prune killed after writing its new packs, before removing the old: the kept versions still
 * restore, the store checks clean, and the next prune finishes the job. */
Test(store, a_prune_killed_midway_leaves_a_sound_store)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int disk = disk_make("k.img", SIZE, 100, 64, 4);
        uint8_t b[STORE_BLOCK];
        StoreStats st;
        int v = 0;
        for (int day = 0; day < 4; day++) {
                memset(b, 0x20 + day, sizeof b);
                cr_assert_eq(pwrite(disk, b, sizeof b, 60 * STORE_BLOCK), (ssize_t)sizeof b);
                StoreExtent e = { 60 * STORE_BLOCK, STORE_BLOCK };
                store_set_time(s, 1700000000 + (uint64_t)day * 86400);
                cr_assert_eq(store_backup(s, "fay", SIZE, read_fd, &disk, v, &e, v ? 1 : 0, &st, &v, &err), 0, "%s", err);
        }
        store_close(s);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                Store *c;
                char *e2 = NULL;
                if (store_open(sdir, host, false, &c, &e2) < 0)
                        _exit(1);
                store_set_crash_hook(c, die_here, NULL);
                StorePruneStats ps;
                store_prune(c, 1, 0, &ps, &e2);
                _exit(2);       /* the hook did not fire */
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42, "the prune did not stop at its crash point (%d)",
                  status);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), 0, "after the crash: %s", c.report);
        store_check_free(&c);
        int out = restore_to(s, "fay", 4, SIZE, "k4.img");
        same_files(disk, out, SIZE);
        close(out);
        StorePruneStats ps;
        cr_assert_eq(store_prune(s, 1, 0, &ps, &err), 0, "%s", err);
        cr_assert_eq(store_check(s, true, &c), 0, "after the second prune: %s", c.report);
        store_check_free(&c);
        store_close(s);
        close(disk);
}

/* The store's disk fills up mid-backup: that backup fails with the reason, the versions before
 * it are untouched and the store checks clean. Needs root (a 4 MiB tmpfs). */
Test(store, a_full_disk_fails_the_backup_cleanly)
{
        char mnt[256], sdir[300], cmd[512], *err = NULL;
        snprintf(mnt, sizeof mnt, "%s/small", dir);
        mkdir(mnt, 0700);
        snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=4m tmpfs %s 2>/dev/null", mnt);
        if (geteuid() != 0 || system(cmd) != 0)
                cr_skip_test("cannot mount a small tmpfs (needs root)");
        snprintf(sdir, sizeof sdir, "%s/store", mnt);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        int small = disk_make("small.img", 8ull << 20, 0, 100, 1);      /* 400 KiB of data: fits */
        StoreStats st;
        int v1, v2;
        cr_assert_eq(store_backup(s, "gil", 8ull << 20, read_fd, &small, 0, NULL, 0, &st, &v1, &err), 0, "%s", err);
        int big = disk_make("big.img", SIZE, 0, 2048, 2);               /* 8 MiB of random data: does not */
        int r = store_backup(s, "gil", SIZE, read_fd, &big, 0, NULL, 0, &st, &v2, &err);
        cr_assert_lt(r, 0, "a backup larger than the disk succeeded");
        cr_assert(err && strstr(err, "No space left"), "error: %s", err);
        free(err);
        err = NULL;
        store_close(s);
        cr_assert_eq(store_open(sdir, host, false, &s, &err), 0, "%s", err);
        StoreCheck c;
        cr_assert_eq(store_check(s, true, &c), 0, "after ENOSPC: %s", c.report);
        cr_assert_eq(c.versions, 1);
        store_check_free(&c);
        int out = restore_to(s, "gil", v1, 8ull << 20, "small-back.img");
        same_files(small, out, 8ull << 20);
        close(out);
        store_close(s);
        close(small);
        close(big);
        snprintf(cmd, sizeof cmd, "umount %s", mnt);
        cr_assert_eq(system(cmd), 0);
}

Test(store, opens_only_with_its_host_key)
{
        char sdir[256], *err = NULL;
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        store_close(s);
        const uint8_t other[STORE_HOST_KEY_LEN] = { 9 };
        cr_assert_eq(store_open(sdir, other, false, &s, &err), -EBADMSG);
        cr_assert(strstr(err, "does not open with this host key"), "%s", err);
        free(err);
        struct stat st;
        cr_assert_eq(stat(sdir, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0700);
}

/* ---- a real profile disk: encrypted qcow2, read through qemu-nbd, its dirty bitmap ---- */

#include "streaming/profile.h"
#include "streaming/profile_read.h"

static bool have(const char *p) { return access(p, X_OK) == 0; }

/* qemu-io on the encrypted disk as QEMU would write it (persistent bitmaps loaded, updated,
 * stored on close); with crash, it aborts instead of closing (the bitmap stays in use). */
static void qemu_io_write(const char *disk, const uint8_t key[PROFILE_KEY_LEN], const char *cmds, bool crash)
{
        char pass[PROFILE_PASSPHRASE_LEN + 1], keyfile[256], cmd[1024];
        profile_passphrase(key, pass);
        snprintf(keyfile, sizeof keyfile, "%s/pass", dir);
        cr_assert_eq(write_file_atomic(keyfile, pass, strlen(pass), 0600), 0);
        snprintf(cmd, sizeof cmd,
                 "qemu-io --object secret,id=sec0,file=%s,format=raw --image-opts "
                 "'driver=qcow2,file.driver=file,file.filename=%s,encrypt.key-secret=sec0' %s %s >/dev/null 2>&1",
                 keyfile, disk, cmds, crash ? "-c abort" : "");
        int r = system(cmd);
        unlink(keyfile);
        if (!crash)
                cr_assert_eq(r, 0, "qemu-io %s failed", cmds);
}

TestSuite(profile_backup, .init = setup, .fini = teardown);

Test(profile_backup, the_dirty_bitmap_names_what_the_vm_wrote_and_a_crash_voids_it, .timeout = 120)
{
        if (!have("/usr/bin/qemu-nbd") || !have("/usr/bin/qemu-io") || !have("/usr/bin/qemu-img") ||
            !have("/sbin/mkfs.ext4"))
                cr_skip_test("qemu-nbd, qemu-io, qemu-img or mkfs.ext4 missing (apt-get install qemu-utils e2fsprogs)");
        char disk[256], sdir[256], *err = NULL;
        snprintf(disk, sizeof disk, "%s/profile.qcow2", dir);
        snprintf(sdir, sizeof sdir, "%s/store", dir);
        uint8_t key[PROFILE_KEY_LEN];
        random_bytes(key, sizeof key);
        cr_assert_eq(profile_disk_create("/usr/bin/qemu-img", NULL, disk, 64ull << 20, key, (uid_t)-1, (gid_t)-1, &err),
                     0, "%s", err);
        /* profile_disk_create gave it its dirty bitmap. */

        /* First backup: everything (the filesystem mkfs wrote). */
        Store *s;
        cr_assert_eq(store_open(sdir, host, true, &s, &err), 0, "%s", err);
        ProfileReader *rd;
        bool bitmap;
        cr_assert_eq(profile_reader_open("/usr/bin/qemu-nbd", disk, key, dir, &rd, &bitmap, &err), 0, "%s", err);
        cr_assert(bitmap, "a fresh bitmap is not offered");
        cr_assert_eq(profile_reader_size(rd), 64ull << 20);
        StoreStats st;
        int v1, v2;
        /* Only what the image allocates is read (a fresh disk is mostly holes). */
        StoreExtent *alloc;
        size_t n_alloc;
        cr_assert_eq(profile_reader_allocated(rd, &alloc, &n_alloc), 0);
        cr_assert_eq(store_backup(s, "p", 64ull << 20, profile_reader_read, rd, 0, alloc, n_alloc, &st, &v1, &err), 0,
                     "%s", err);
        free(alloc);
        cr_assert_lt(st.blocks_read, 16384 / 4, "a full backup of a fresh disk read %llu of 16384 blocks",
                     (unsigned long long)st.blocks_read);
        cr_log_info("full backup of a fresh 64 MiB profile: %llu blocks read", (unsigned long long)st.blocks_read);
        profile_reader_close(rd);
        cr_assert_eq(profile_bitmap("/usr/bin/qemu-img", disk, key, PROFILE_BITMAP_CLEAR, &err), 0, "%s", err);

        /* The VM writes 12 KiB in two places: the bitmap says exactly those blocks. */
        qemu_io_write(disk, key, "-c 'write -P 0x5a 1M 8k' -c 'write -P 0x33 40M 4k'", false);
        cr_assert_eq(profile_reader_open("/usr/bin/qemu-nbd", disk, key, dir, &rd, &bitmap, &err), 0, "%s", err);
        cr_assert(bitmap);
        StoreExtent *dirty;
        size_t n;
        cr_assert_eq(profile_reader_dirty(rd, &dirty, &n), 0);
        cr_assert_eq(n, 2, "dirty extents: %zu", n);
        cr_assert(dirty[0].offset == 1u << 20 && dirty[0].length == 8192, "%llu+%llu",
                  (unsigned long long)dirty[0].offset, (unsigned long long)dirty[0].length);
        cr_assert(dirty[1].offset == 40u << 20 && dirty[1].length == 4096);
        cr_assert_eq(store_backup(s, "p", 64ull << 20, profile_reader_read, rd, v1, dirty, n, &st, &v2, &err), 0, "%s",
                     err);
        cr_assert_eq(st.blocks_read, 3);
        free(dirty);
        profile_reader_close(rd);
        cr_assert_eq(profile_bitmap("/usr/bin/qemu-img", disk, key, PROFILE_BITMAP_CLEAR, &err), 0, "%s", err);

        /* The restored v2 is the disk's plaintext, bit for bit (compared through qemu-nbd). */
        int out = restore_to(s, "p", v2, 64ull << 20, "restored.img");
        cr_assert_eq(profile_reader_open("/usr/bin/qemu-nbd", disk, key, dir, &rd, &bitmap, &err), 0, "%s", err);
        static uint8_t a[1 << 20], b[1 << 20];
        for (uint64_t off = 0; off < (64ull << 20); off += sizeof a) {
                cr_assert_eq(profile_reader_read(rd, off, a, sizeof a), 0);
                cr_assert_eq(pread(out, b, sizeof b, (off_t)off), (ssize_t)sizeof b);
                cr_assert(memcmp(a, b, sizeof a) == 0, "restored profile differs at %llu", (unsigned long long)off);
        }
        profile_reader_close(rd);
        close(out);

        /* A VM that dies with the disk open leaves the bitmap in use: not trusted any more. */
        qemu_io_write(disk, key, "-c 'write -P 0x77 2M 4k'", true);
        cr_assert_eq(profile_reader_open("/usr/bin/qemu-nbd", disk, key, dir, &rd, &bitmap, &err), 0, "%s", err);
        cr_assert_not(bitmap, "an inconsistent bitmap was trusted");
        profile_reader_close(rd);
        cr_assert_eq(profile_bitmap("/usr/bin/qemu-img", disk, key, PROFILE_BITMAP_RESET, &err), 0, "%s", err);
        cr_assert_eq(profile_reader_open("/usr/bin/qemu-nbd", disk, key, dir, &rd, &bitmap, &err), 0, "%s", err);
        cr_assert(bitmap, "the bitmap was not made again");
        profile_reader_close(rd);
        store_close(s);
}
