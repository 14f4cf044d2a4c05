/* common/util's file helpers that root uses inside a VM's run dir: rm_rf removes the dir while
 * that VM's QEMU may still be writing in it, write_file_atomic puts the app layer stack there. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"

/* Files in the outside directory, and of the same names in the tree's subdirectory: a remove
 * of tree/sub/NAME that resolves through a swapped-in symlink hits one of them. */
#define N_FILES 64
#define RACE_ROUNDS 200

static char base[64];

static void setup(void)
{
        snprintf(base, sizeof base, "/tmp/slate-rmrf.XXXXXX");
        cr_assert_not_null(mkdtemp(base));
}

static void teardown(void)
{
        if (base[0])
                rm_rf(base);
}

TestSuite(rm_rf, .init = setup, .fini = teardown);

static void touch(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, "x", 1), 1);
        close(fd);
}

static void fill(const char *dir)
{
        for (int i = 0; i < N_FILES; i++) {
                _cleanup_free_ char *p = xasprintf("%s/f%03d", dir, i);
                touch(p);
        }
}

static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

Test(rm_rf, a_missing_path_is_not_an_error)
{
        _cleanup_free_ char *p = xasprintf("%s/nothing", base);
        cr_assert_eq(rm_rf(p), 0);
}

Test(rm_rf, removes_a_tree_and_a_single_file)
{
        _cleanup_free_ char *t = xasprintf("%s/tree", base), *deep = xasprintf("%s/tree/a/b/c", base);
        cr_assert_eq(mkdir_p(deep, 0700), 0);
        fill(deep);
        _cleanup_free_ char *sock = xasprintf("%s/tree/a/fifo", base);
        cr_assert_eq(mkfifo(sock, 0600), 0);
        cr_assert_eq(rm_rf(t), 0);
        cr_assert_eq(access(t, F_OK), -1, "the tree is still there");
        _cleanup_free_ char *f = xasprintf("%s/file", base);
        touch(f);
        cr_assert_eq(rm_rf(f), 0);
        cr_assert_eq(access(f, F_OK), -1);
}

/* A VM leaves symlinks to a directory and a file of the host in its run dir: the links go,
 * what they point at stays. */
Test(rm_rf, symlinks_in_the_tree_are_removed_never_followed)
{
        _cleanup_free_ char *out = xasprintf("%s/outside", base), *outsub = xasprintf("%s/outside/sub", base);
        _cleanup_free_ char *secret = xasprintf("%s/outside/secret", base);
        cr_assert_eq(mkdir_p(outsub, 0700), 0);
        fill(outsub);
        touch(secret);
        _cleanup_free_ char *t = xasprintf("%s/tree", base), *deep = xasprintf("%s/tree/a/b", base);
        cr_assert_eq(mkdir_p(deep, 0700), 0);
        const char *links[][2] = {
                { out, "tree/dirlink" }, { secret, "tree/filelink" }, { outsub, "tree/a/b/sublink" },
                { secret, "tree/a/b/secret" }, { "../../../outside", "tree/a/b/rellink" },
        };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                _cleanup_free_ char *l = xasprintf("%s/%s", base, links[i][1]);
                cr_assert_eq(symlink(links[i][0], l), 0, "%s", l);
        }
        cr_assert_eq(rm_rf(t), 0);
        cr_assert_eq(access(t, F_OK), -1, "the tree is still there");
        cr_assert_eq(count_entries(outsub), N_FILES, "files outside the tree were removed");
        cr_assert_eq(access(secret, F_OK), 0, "a file outside the tree was removed");
        /* The path itself a symlink: the link goes, not its target's contents. */
        _cleanup_free_ char *l = xasprintf("%s/toplink", base);
        cr_assert_eq(symlink(outsub, l), 0);
        cr_assert_eq(rm_rf(l), 0);
        cr_assert_eq(access(l, F_OK), -1);
        cr_assert_eq(count_entries(outsub), N_FILES);
}

/* The attack: while root walks the tree, the VM keeps renaming a subdirectory away and putting a
 * symlink to a host directory in its place. A walk by path (nftw, remove("tree/sub/f001")) ends
 * up deleting the host directory's files of the same names; a walk by directory fds cannot. */
Test(rm_rf, a_symlink_swapped_in_mid_walk_is_never_followed, .timeout = 120)
{
        _cleanup_free_ char *out = xasprintf("%s/outside", base), *t = xasprintf("%s/tree", base);
        _cleanup_free_ char *sub = xasprintf("%s/tree/sub", base), *hold = xasprintf("%s/tree/hold", base);
        _cleanup_free_ char *deep = xasprintf("%s/tree/sub/d", base);
        cr_assert_eq(mkdir(out, 0700), 0);
        fill(out);
        uint64_t t0 = now_ms();
        int failures_seen = 0;
        for (int round = 0; round < RACE_ROUNDS; round++) {
                cr_assert_eq(mkdir_p(deep, 0700), 0);
                fill(sub);
                fill(deep);
                pid_t pid = fork();
                cr_assert_geq(pid, 0);
                if (pid == 0) {
                        alarm(30);
                        for (;;) {
                                if (rename(sub, hold) < 0) {
                                        sched_yield();
                                        continue;
                                }
                                if (symlink(out, sub) == 0) {
                                        sched_yield();
                                        unlink(sub);
                                }
                                rename(hold, sub);
                        }
                }
                if (rm_rf(t) < 0)
                        failures_seen++;        /* the swaps may leave it unable to finish: fine */
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                int left = count_entries(out);
                cr_assert_eq(left, N_FILES, "round %d: %d of the %d files outside the tree were removed", round,
                             N_FILES - left, N_FILES);
                cr_assert_eq(rm_rf(t), 0, "round %d: the tree could not be removed once the swaps stopped", round);
        }
        cr_log_info("%d rounds in %llu ms, %d ended early with an error", RACE_ROUNDS,
                    (unsigned long long)(now_ms() - t0), failures_seen);
}

/* Something mounted inside (a VM cannot mount, but a stale mount must not be emptied either). */
Test(rm_rf, does_not_enter_another_filesystem)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to mount a tmpfs");
        _cleanup_free_ char *t = xasprintf("%s/tree", base), *mnt = xasprintf("%s/tree/mnt", base);
        cr_assert_eq(mkdir_p(mnt, 0700), 0);
        if (mount("none", mnt, "tmpfs", 0, "size=1m") < 0)
                cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
        fill(mnt);
        int r = rm_rf(t);
        int left = count_entries(mnt);
        umount(mnt);
        cr_assert_eq(left, N_FILES, "files on the mounted filesystem were removed");
        cr_assert_eq(r, -EXDEV, "rm_rf: %s", strerror(-r));
        cr_assert_eq(rm_rf(t), 0);
}

Test(rm_rf, a_tree_deeper_than_the_limit_is_refused_not_overflowed)
{
        _cleanup_free_ char *t = xasprintf("%s/tree", base);
        cr_assert_eq(mkdir(t, 0700), 0);
        int fd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (int i = 0; i < 300; i++) {
                cr_assert_eq(mkdirat(fd, "d", 0700), 0);
                int n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                cr_assert_geq(n, 0);
                close(fd);
                fd = n;
        }
        close(fd);
        cr_assert_eq(rm_rf(t), -ELOOP);
        /* Shallower than the limit now: the rest goes in a second call. */
        _cleanup_free_ char *mid = xasprintf("%s/tree", base);
        for (int i = 0; i < 200; i++) {
                char *m = xasprintf("%s/d", mid);
                free(mid);
                mid = m;
        }
        cr_assert_eq(rm_rf(mid), 0);
        cr_assert_eq(rm_rf(t), 0);
}

/* The layer stack (apps.vmdk) is written into the VM's run dir. Its temporary name is guessable
 * (slated's pid): a VM that puts a symlink there must not get root to write through it. */
Test(write_file_atomic, never_writes_through_a_planted_temporary_symlink)
{
        char dir[] = "/tmp/slate-wfa.XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        _cleanup_free_ char *victim = xasprintf("%s/victim", dir), *path = xasprintf("%s/apps.vmdk", dir);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        cr_assert_eq(write_file_atomic(victim, "precious", 8, 0600), 0);
        cr_assert_eq(symlink(victim, tmp), 0);
        cr_assert_eq(write_file_atomic(path, "stack", 5, 0644), 0);
        _cleanup_free_ char *v = NULL, *w = NULL;
        cr_assert_eq(read_file_max(victim, 64, &v, NULL), 0);
        cr_assert_str_eq(v, "precious", "root wrote through a symlink planted at the temporary name");
        struct stat st;
        cr_assert_eq(lstat(path, &st), 0);
        cr_assert(S_ISREG(st.st_mode), "the file is not a plain file of its own");
        cr_assert_eq(read_file_max(path, 64, &w, NULL), 0);
        cr_assert_str_eq(w, "stack");
        cr_assert_eq(rm_rf(dir), 0);
}

Test(proc_cpu_ms, counts_this_process_cpu)
{
        uint64_t a, b;
        cr_assert_eq(proc_cpu_ms(getpid(), &a), 0);
        /* Burn about 300 ms of CPU. */
        struct timespec t0, t;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        volatile unsigned long x = 0;
        do {
                for (int i = 0; i < 100000; i++)
                        x += (unsigned long)i;
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
        cr_assert_eq(proc_cpu_ms(getpid(), &b), 0);
        cr_assert_geq(b - a, 200, "%llu ms of CPU counted for 300", (unsigned long long)(b - a));
        cr_assert_leq(b - a, 800);
        cr_assert_eq(proc_cpu_ms(0x7ffffff0, &a), -ENOENT);
}
