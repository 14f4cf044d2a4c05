/* App capture: the listing parser and diff on hostile and ordinary input (no appliance), and one
 * real capture of GNU hello into the minimal Debian fixture (test_capture.sh builds it, with the
 * hello .deb offered so no mirror is needed, and turns a launch failure into a skip). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "config.h"
#include "imaging/capture.h"
#include "imaging/capture_diff.h"

static CaptureListing listing(const char *text, size_t len)
{
        char *buf = xmalloc0(len + 1);
        memcpy(buf, text, len);
        CaptureListing l;
        char *err = NULL;
        cr_assert_eq(capture_listing_parse(buf, len, &l, &err), 0, "%s", err ? err : "");
        return l;
}

#define L(s) listing(s, sizeof s - 1)

Test(capture, listing_refuses_dotdot_relative_and_truncated_records)
{
#define R(s) { s, sizeof s - 1 }
        static const struct {
                const char *text;
                size_t len;
        } bad[] = {
                R("f 644 0 0 3 1.5 \0/usr/../etc/shadow\0"), R("f 644 0 0 3 1.5 \0usr/bin/x\0"),
                R("f 644 0 0 3 1.5 \0/usr/bin/x"), R("f 644 0 0 3 \0/x\0"), R("f 999 0 0 3 1.5 \0/x\0"),
                R("c 644 0 0 x 1.5 \0/x\0"), R("f 644 0 0 3 1.5 target\0/x\0"),
                R("f 644 0 0 3 1.5 \0/x\0f 644 0 0 3 1.5 \0/x\0"),
        };
#undef R
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *buf = xmalloc0(bad[i].len + 1), *err = NULL;
                memcpy(buf, bad[i].text, bad[i].len);
                CaptureListing l;
                cr_expect_lt(capture_listing_parse(buf, bad[i].len, &l, &err), 0, "record %zu accepted", i);
                cr_expect_not_null(err);
                free(err);
                capture_listing_free(&l);
        }
}

Test(capture, diff_keeps_new_and_changed_files_with_parents_and_lists_overrides)
{
        CaptureListing before = L("d 755 0 0 4096 1.0 \0/\0d 755 0 0 4096 1.0 \0/usr\0d 755 0 0 4096 1.0 \0/usr/bin\0"
                                  "f 755 0 0 10 1.0 \0/usr/bin/ls\0f 644 0 0 10 1.0 \0/etc/motd\0"
                                  "f 644 0 0 100 1.0 \0/var/lib/dpkg/status\0f 644 0 0 5 1.0 \0/etc/ld.so.cache\0"
                                  "f 644 0 0 5 1.0 \0/etc/gone\0");
        CaptureListing after = L("d 755 0 0 4096 2.0 \0/\0d 755 0 0 4096 2.0 \0/usr\0d 755 0 0 4096 2.0 \0/usr/bin\0"
                                 "f 755 0 0 10 1.0 \0/usr/bin/ls\0f 644 0 0 11 2.0 \0/etc/motd\0"
                                 "f 644 0 0 180 2.0 \0/var/lib/dpkg/status\0f 644 0 0 6 2.0 \0/etc/ld.so.cache\0"
                                 "f 755 0 0 9 1.0 \0/usr/bin/hello\0l 777 0 0 5 1.0 hello\0/usr/bin/hi\0"
                                 "d 755 0 0 4096 2.0 \0/usr/share/hello\0f 644 0 0 1 1.0 \0/usr/share/hello/a b\n\0");
        CaptureDiff d;
        char *err = NULL;
        cr_assert_eq(capture_diff(&before, &after, &d, &err), 0);
        const char *keep[] = { "etc", "etc/ld.so.cache", "etc/motd", "usr", "usr/bin", "usr/bin/hello", "usr/bin/hi",
                               "usr/share", "usr/share/hello", "usr/share/hello/a b\n" };
        cr_assert_eq(d.n_keep, ELEMENTSOF(keep));
        for (size_t i = 0; i < ELEMENTSOF(keep); i++)
                cr_expect_str_eq(d.keep[i], keep[i]);
        /* motd changed, gone removed; ld.so.cache is regenerated and dpkg's status is its own. */
        cr_assert_eq(d.n_overrides, 2);
        cr_expect_str_eq(d.overrides[0], "etc/gone");
        cr_expect_str_eq(d.overrides[1], "etc/motd");
        capture_diff_free(&d);
        capture_listing_free(&before);
        capture_listing_free(&after);
}

Test(capture, packages_added_are_new_installs_and_bad_lines_are_refused)
{
        const char *before = "ii \tlibc6:amd64\tlibc6\t2.36-9\nii \tbash\tbash\t5.2.15-2\nrc \told\told\t1.0\n";
        const char *after = "ii \tlibc6:amd64\tlibc6\t2.36-9\nii \tbash\tbash\t5.2.15-2\nii \thello\thello\t2.10-3\n"
                            "ii \told\told\t1.0\n";
        char **q = NULL, **p = NULL, *err = NULL;
        size_t n;
        cr_assert_eq(capture_packages_added(before, after, &q, &p, &n, &err), 0, "%s", err ? err : "");
        cr_assert_eq(n, 2);
        cr_expect_str_eq(p[0], "hello=2.10-3");
        cr_expect_str_eq(p[1], "old=1.0");
        cr_expect_str_eq(q[0], "hello");
        capture_strv_free(q);
        capture_strv_free(p);
        cr_expect_lt(capture_packages_added(before, "ii \thello; rm -rf /\thello\t1\n", &q, &p, &n, &err), 0);
        cr_expect_lt(capture_packages_added(before, "ii \thello\n", &q, &p, &n, &err), 0);
}

Test(capture, package_names_follow_debian_policy)
{
        cr_expect(capture_package_name_ok("hello"));
        cr_expect(capture_package_name_ok("libstdc++6"));
        cr_expect(capture_package_name_ok("g++-12"));
        cr_expect_not(capture_package_name_ok("-o"));
        cr_expect_not(capture_package_name_ok("Hello"));
        cr_expect_not(capture_package_name_ok("a;b"));
        cr_expect_not(capture_package_name_ok("a b"));
        cr_expect_not(capture_package_name_ok(""));
}

static char *sha256(const char *path)
{
        _cleanup_free_ char *cmd = xasprintf("sha256sum '%s'", path);
        FILE *f = popen(cmd, "r");
        cr_assert_not_null(f);
        char buf[65] = { 0 };
        cr_assert_eq(fread(buf, 1, 64, f), 64);
        pclose(f);
        return xstrdup(buf);
}

static bool has(char **v, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

static void progress(void *userdata, const char *step, int percent)
{
        (*(int *)userdata)++;
        fprintf(stderr, "capture: %3d%% %s\n", percent, step);
}

Test(capture, hello_from_the_debian_fixture_is_captured_without_apt_state_or_overrides, .timeout = 900)
{
        const char *golden = getenv("SLATE_CAPTURE_GOLDEN"), *debs = getenv("SLATE_CAPTURE_DEBS"),
                   *work = getenv("SLATE_CAPTURE_WORK"), *skip = getenv("SLATE_CAPTURE_SKIP");
        if (!golden || !debs || !work || !skip)
                cr_skip_test("run through test_capture.sh (it builds the Debian fixture)");
        cr_assert_eq(mkdir(work, 0700), 0);
        /* SLATE_CAPTURE_ONLINE=1 (by hand, not in make check): no debs offered, so apt-get update
         * and the download from the mirror are measured too. */
        if (getenv("SLATE_CAPTURE_ONLINE"))
                debs = NULL;
        _cleanup_free_ char *sum_before = sha256(golden);
        const char *pkgs[] = { "hello" };
        int steps = 0;
        CaptureRequest req = {
                .qemu_img = QEMU_IMG_PATH, .golden = golden, .work_dir = work, .packages = pkgs, .n_packages = 1,
                .deb_dir = debs, .progress = progress, .userdata = &steps,
                .appliance = { .kernel = getenv("SLATE_CAPTURE_KERNEL"), .modules = getenv("SLATE_CAPTURE_MODULES"),
                               .force_tcg = true },
        };
        char *err = NULL;
        cr_assert_eq(appliance_env_apply(&req.appliance, &err), 0);
        CaptureResult res;
        uint64_t t0 = now_ms();
        int r = capture_run(&req, &res, &err);
        if (r < 0 && err && strstr(err, "starting the libguestfs appliance")) {
                FILE *f = fopen(skip, "w");
                fprintf(f, "libguestfs cannot launch here: %s\n", err);
                fclose(f);
                cr_skip_test("%s", err);
        }
        cr_assert_eq(r, 0, "capture failed: %s", err ? err : "");
        fprintf(stderr, "capture: %llu ms in all; steps %s\n", (unsigned long long)(now_ms() - t0),
                json_object_to_json_string(res.timings_ms));
        cr_expect_geq(steps, 6);

        cr_assert_eq(res.n_packages, 1, "packages: %zu", res.n_packages);
        cr_expect_eq(strncmp(res.packages[0], "hello=", 6), 0, "%s", res.packages[0]);
        cr_expect(has(res.executables, res.n_executables, "usr/bin/hello"));
        cr_expect_eq(res.n_overrides, 0, "overrides: %zu, first %s", res.n_overrides,
                     res.n_overrides ? res.overrides[0] : "");
        const char *present[] = { "usr/bin/hello", "var/lib/dpkg/info/hello.list", "var/lib/dpkg/status-layer" };
        for (size_t i = 0; i < ELEMENTSOF(present); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", res.tree, present[i]);
                cr_expect_eq(access(p, F_OK), 0, "%s missing from the tree", present[i]);
        }
        const char *absent[] = { "var/lib/apt/lists", "var/cache/apt", "var/log", "var/lib/dpkg/status",
                                 "var/tmp/slate-capture", "usr/sbin/policy-rc.d" };
        for (size_t i = 0; i < ELEMENTSOF(absent); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", res.tree, absent[i]);
                cr_expect_neq(access(p, F_OK), 0, "%s is in the tree", absent[i]);
        }
        _cleanup_free_ char *status = NULL, *status_path = xasprintf("%s/var/lib/dpkg/status-layer", res.tree);
        size_t len;
        cr_assert_eq(read_file_max(status_path, 1 << 20, &status, &len), 0);
        cr_expect(strstr(status, "Package: hello\n") && strstr(status, "Status: install ok installed\n"), "%s", status);
        /* Only the tree is left in the work dir, and the golden is byte for byte what it was. */
        _cleanup_free_ char *overlay = xasprintf("%s/overlay.qcow2", work);
        cr_expect_neq(access(overlay, F_OK), 0);
        _cleanup_free_ char *sum_after = sha256(golden);
        cr_expect_str_eq(sum_after, sum_before);
        capture_result_free(&res);
}
