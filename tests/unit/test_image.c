/* Golden image files against the real qemu-img: accepted formats, hostile files refused with a
 * reason, imports standalone and read-only with nothing left behind, SHA-256 as sha256sum says.
 * Skips (77) without qemu-img. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/util.h"
#include "imaging/image.h"
#include "imaging/qemu_img.h"
#include "tests/unit/qemu_test.h"

static char tmpdir[256];
static char base[300];          /* a 16 MiB qcow2 with 4 MiB of data */

static char *tmp(const char *name)
{
        return xasprintf("%s/%s", tmpdir, name);
}

static void setup(void)
{
        const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/slate-test-image.XXXXXX", t);
        cr_assert_not_null(mkdtemp(tmpdir));
        snprintf(base, sizeof base, "%s/base.qcow2", tmpdir);
        cr_assert_eq(sh("%s create -q -f qcow2 %s 16M && qemu-io -c 'write -P 0x11 0 4M' %s >/dev/null",
                        QEMU_IMG_PATH, base, base), 0);
}

static void teardown(void)
{
        rm_rf(tmpdir);
}

TestSuite(image, .init = setup, .fini = teardown, .timeout = 120);

static void probe_ok(const char *path, const char *format, uint64_t vsize)
{
        ImageInfo info;
        char *err = NULL;
        int r = image_probe(QEMU_IMG_PATH, path, &info, &err);
        cr_assert_eq(r, 0, "%s: %s", path, err ? err : "?");
        cr_assert_null(err);
        cr_assert_str_eq(info.format, format);
        cr_assert_eq(info.virtual_size, vsize);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(info.file_size, (uint64_t)st.st_size);
}

/* Refused with -EINVAL (or the given r) and a message containing want. */
static void probe_refused(const char *path, const char *want)
{
        ImageInfo info;
        char *err = NULL;
        int r = image_probe(QEMU_IMG_PATH, path, &info, &err);
        cr_assert_lt(r, 0, "%s was accepted", path);
        cr_assert_not_null(err);
        cr_assert_not_null(strstr(err, want), "%s: message \"%s\" lacks \"%s\"", path, err, want);
        free(err);
}

Test(image, probe_accepts_qcow2)
{
        probe_ok(base, "qcow2", 16u << 20);
}

Test(image, probe_accepts_a_raw_disk)
{
        char *p = tmp("disk.raw");
        cr_assert_eq(sh("truncate -s 4M %s", p), 0);
        probe_ok(p, "raw", 4u << 20);
        free(p);
}

Test(image, probe_accepts_vmdk_vdi_vhdx)
{
        const char *fmts[] = { "vmdk", "vdi", "vhdx" };
        for (size_t i = 0; i < 3; i++) {
                char *p = xasprintf("%s/disk.%s", tmpdir, fmts[i]);
                cr_assert_eq(sh("%s convert -f qcow2 -O %s %s %s", QEMU_IMG_PATH, fmts[i], base, p), 0);
                probe_ok(p, fmts[i], 16u << 20);
                free(p);
        }
}

Test(image, probe_refuses_random_bytes)
{
        char *p = tmp("random.bin");
        cr_assert_eq(sh("head -c 3072 /dev/urandom > %s", p), 0);
        probe_refused(p, "not a disk image");
        free(p);
}

Test(image, probe_refuses_an_empty_file_and_a_directory)
{
        char *p = tmp("empty");
        cr_assert_eq(sh(": > %s", p), 0);
        probe_refused(p, "not a disk image");
        probe_refused(tmpdir, "not a regular file");
        free(p);
}

Test(image, probe_refuses_a_truncated_qcow2)
{
        char *p = tmp("trunc.qcow2");
        cr_assert_eq(sh("head -c 65536 %s > %s", base, p), 0);
        probe_refused(p, "corrupt qcow2");
        free(p);
}

Test(image, probe_refuses_backing_files)
{
        char *ov = tmp("overlay.qcow2"), *pw = tmp("passwd.qcow2");
        cr_assert_eq(sh("%s create -q -f qcow2 -F qcow2 -b %s %s", QEMU_IMG_PATH, base, ov), 0);
        probe_refused(ov, "refusing an image with a backing file");
        /* A published file that would have QEMU read a host file as the disk. */
        cr_assert_eq(sh("%s create -q -f qcow2 -F raw -u -b /etc/passwd %s 1M", QEMU_IMG_PATH, pw), 0);
        probe_refused(pw, "backing file (/etc/passwd)");
        free(ov);
        free(pw);
}

Test(image, probe_refuses_references_to_other_host_files)
{
        char *df = tmp("datafile.qcow2"), *data = tmp("datafile.raw"), *vm = tmp("flat.vmdk");
        cr_assert_eq(sh("%s create -q -f qcow2 -o data_file=%s,data_file_raw=on %s 4M", QEMU_IMG_PATH, data, df), 0);
        probe_refused(df, "external data file");
        FILE *f = fopen(vm, "w");
        cr_assert_not_null(f);
        fprintf(f, "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                   "createType=\"monolithicFlat\"\n\nRW 8 FLAT \"/etc/passwd\" 0\n");
        fclose(f);
        /* qemu-img info opens a vmdk's extents: in its sandbox there is no /etc/passwd. */
        probe_refused(vm, "Could not open '/etc/passwd'");
        free(df);
        free(data);
        free(vm);
}

Test(image, probe_refuses_encrypted_and_unsupported_formats)
{
        char *enc = tmp("enc.qcow2"), *qed = tmp("disk.qed");
        /* Retried: qemu-img's LUKS benchmark fails now and then (see overlay.c). */
        cr_assert_eq(sh("for i in 1 2 3 4 5 6 7 8 9 10; do %s create -q -f qcow2 --object secret,id=s,data=pw "
                        "-o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 %s 4M 2>/dev/null "
                        "&& exit 0; sleep 0.05; done; exit 1", QEMU_IMG_PATH, enc), 0);
        probe_refused(enc, "encrypted");
        cr_assert_eq(sh("%s create -q -f qed %s 4M", QEMU_IMG_PATH, qed), 0);
        probe_refused(qed, "unsupported image format qed");
        free(enc);
        free(qed);
}

static void assert_standalone_readonly_qcow2(const char *dest)
{
        struct stat st;
        cr_assert_eq(stat(dest, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0444, "mode %o", st.st_mode & 07777);
        char *cmd = xasprintf("%s info --output=json %s", QEMU_IMG_PATH, dest);
        FILE *f = popen(cmd, "r");
        char buf[16384];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        cr_assert_eq(pclose(f), 0);
        json_object *j = json_tokener_parse(buf), *v;
        cr_assert_not_null(j);
        cr_assert(json_object_object_get_ex(j, "format", &v));
        cr_assert_str_eq(json_object_get_string(v), "qcow2");
        cr_assert(!json_object_object_get_ex(j, "backing-filename", &v), "import kept a backing file");
        json_object_put(j);
        char *partial = xasprintf("%s.partial", dest);
        cr_assert_eq(access(partial, F_OK), -1, "%s left behind", partial);
        free(partial);
        free(cmd);
}

Test(image, import_writes_a_standalone_readonly_qcow2_with_the_same_content)
{
        const char *fmts[] = { "qcow2", "vmdk", "raw" };
        for (size_t i = 0; i < 3; i++) {
                char *src = xasprintf("%s/src.%s", tmpdir, fmts[i]), *dest = xasprintf("%s/v%zu.qcow2", tmpdir, i);
                cr_assert_eq(sh("%s convert -f qcow2 -O %s %s %s", QEMU_IMG_PATH, fmts[i], base, src), 0);
                ImageInfo info;
                char *err = NULL;
                cr_assert_eq(image_probe(QEMU_IMG_PATH, src, &info, &err), 0, "%s", err ? err : "?");
                cr_assert_eq(image_import(QEMU_IMG_PATH, src, &info, dest, &err), 0, "%s", err ? err : "?");
                cr_assert_null(err);
                assert_standalone_readonly_qcow2(dest);
                cr_assert_eq(sh("%s compare -q -f %s -F qcow2 %s %s", QEMU_IMG_PATH, fmts[i], src, dest), 0,
                             "%s import differs from its source", fmts[i]);
                free(src);
                free(dest);
        }
}

Test(image, import_failure_leaves_nothing_behind)
{
        /* The file changed after probe (or the caller lied): convert fails midway. */
        char *src = tmp("garbage.qcow2"), *dest = tmp("v1.qcow2"), *partial = tmp("v1.qcow2.partial");
        cr_assert_eq(sh("head -c 1048576 /dev/urandom > %s", src), 0);
        ImageInfo info = { .format = "qcow2", .virtual_size = 1u << 20, .file_size = 1u << 20 };
        char *err = NULL;
        cr_assert_lt(image_import(QEMU_IMG_PATH, src, &info, dest, &err), 0);
        cr_assert_not_null(err);
        cr_assert_eq(access(dest, F_OK), -1, "dest exists after a failed import");
        cr_assert_eq(access(partial, F_OK), -1, "partial left after a failed import");
        free(err);
        free(src);
        free(dest);
        free(partial);
}

Test(image, import_reads_no_host_file_even_unchecked)
{
        /* The probe's refusal of a backing file is not the only guard: imported without it, a
         * qcow2 backed by a host file (0600, the kind of file only root reads) still cannot
         * read that file, which its sandbox does not have. Before the sandbox, convert copied it. */
        char *secret = tmp("secret.raw"), *src = tmp("backed.qcow2"), *dest = tmp("v1.qcow2");
        char *partial = tmp("v1.qcow2.partial"), *outdir = tmp("v1.qcow2.partial.out");
        cr_assert_eq(sh("head -c 1048576 /dev/zero | tr '\\0' S > %s && chmod 600 %s", secret, secret), 0);
        cr_assert_eq(sh("%s create -q -f qcow2 -F raw -b %s %s", QEMU_IMG_PATH, secret, src), 0);
        ImageInfo info = { .format = "qcow2", .virtual_size = 1u << 20 };
        char *err = NULL;
        int r = image_import(QEMU_IMG_PATH, src, &info, dest, &err);
        cr_assert_lt(r, 0, "imported %s with its backing file %s read into it", src, secret);
        cr_assert_not_null(strstr(err, "No such file or directory"), "%s", err);
        cr_assert_eq(access(dest, F_OK), -1, "dest exists after a failed import");
        cr_assert_eq(access(partial, F_OK), -1, "partial left after a failed import");
        cr_assert_eq(access(outdir, F_OK), -1, "the sandbox's output dir left after a failed import");
        free(err);
        free(secret);
        free(src);
        free(dest);
        free(partial);
        free(outdir);
}

Test(image, import_never_overwrites_a_version)
{
        char *dest = tmp("v1.qcow2");
        cr_assert_eq(sh("echo keep > %s", dest), 0);
        ImageInfo info;
        char *err = NULL;
        cr_assert_eq(image_probe(QEMU_IMG_PATH, base, &info, &err), 0);
        cr_assert_eq(image_import(QEMU_IMG_PATH, base, &info, dest, &err), -EEXIST);
        cr_assert_not_null(strstr(err, "already exists"), "%s", err);
        cr_assert_eq(sh("grep -qx keep %s", dest), 0, "existing version was touched");
        free(err);
        free(dest);
}

Test(image, sha256_matches_sha256sum)
{
        char *big = tmp("big.bin");
        /* Over one 1 MiB read so the streaming path is exercised. */
        cr_assert_eq(sh("head -c 3500000 /dev/urandom > %s", big), 0);
        const char *files[] = { base, big };
        for (size_t i = 0; i < 2; i++) {
                char hex[IMAGE_SHA256_HEX + 1];
                cr_assert_eq(image_sha256(files[i], hex), 0);
                char *cmd = xasprintf("sha256sum %s", files[i]);
                FILE *f = popen(cmd, "r");
                char want[IMAGE_SHA256_HEX + 1] = { 0 };
                cr_assert_eq(fread(want, 1, IMAGE_SHA256_HEX, f), (size_t)IMAGE_SHA256_HEX);
                pclose(f);
                cr_assert_str_eq(hex, want, "%s", files[i]);
                free(cmd);
        }
        char hex[IMAGE_SHA256_HEX + 1];
        char *missing = tmp("missing");
        cr_assert_eq(image_sha256(missing, hex), -ENOENT);
        free(missing);
        free(big);
}

/* The runner under every qemu-img call: clean environment, secret fd, limits, bounded output. */
Test(image, runner_strips_preload_and_passes_only_fd3)
{
        setenv("LD_PRELOAD", "", 1);
        setenv("PAM_WRAPPER_SERVICE_DIR", "/x", 1);
        int p[2];
        cr_assert_eq(pipe(p), 0);
        cr_assert_eq(write(p[1], "sekrit", 6), 6);
        close(p[1]);
        const char *argv[] = { "/bin/sh", "-c", "env; cat /dev/fd/3; ls /proc/self/fd", NULL };
        QemuImgRun o = { .fd3 = p[0], .stdout_max = 65536 };
        char *out = NULL, *err = NULL;
        cr_assert_eq(qemu_img_run(argv, &o, &out, &err), 0, "%s", err);
        cr_assert_null(strstr(out, "LD_PRELOAD"), "%s", out);
        cr_assert_null(strstr(out, "PAM_WRAPPER"), "%s", out);
        cr_assert_not_null(strstr(out, "LC_ALL=C"));
        cr_assert_not_null(strstr(out, "sekrit"));
        /* fds 0-3 plus the one ls opens for /proc/self/fd */
        cr_assert_not_null(strstr(out, "sekrit0\n1\n2\n3\n"), "%s", out);
        cr_assert_null(strstr(out, "\n5\n"), "a stray fd reached the child: %s", out);
        close(p[0]);
        free(out);
        free(err);
        unsetenv("LD_PRELOAD");
}

Test(image, runner_enforces_cpu_limit_and_output_bound)
{
        const char *spin[] = { "/bin/sh", "-c", "while :; do :; done", NULL };
        QemuImgRun o = { .fd3 = -1, .limit_cpu_s = 1 };
        char *err = NULL;
        cr_assert_eq(qemu_img_run(spin, &o, NULL, &err), -ETIME);
        cr_assert_not_null(strstr(err, "CPU time limit"), "%s", err);
        free(err);
        const char *chatty[] = { "/usr/bin/yes", NULL };
        QemuImgRun c = { .fd3 = -1, .stdout_max = 4096 };
        cr_assert_eq(qemu_img_run(chatty, &c, NULL, &err), -EFBIG);
        free(err);
        const char *fails[] = { "/bin/sh", "-c", "echo boom >&2; exit 3", NULL };
        cr_assert_eq(qemu_img_run(fails, &c, NULL, &err), -EIO);
        cr_assert_eq(c.exit_code, 3);
        cr_assert_str_eq(err, "boom");
        free(err);
        const char *missing[] = { "/nonexistent/qemu-img", NULL };
        cr_assert_eq(qemu_img_run(missing, NULL, NULL, &err), -ENOENT);
        free(err);
}

Test(image, sandboxed_runner_keeps_its_limits_and_leaves_nothing_running)
{
        /* In the sandbox qemu-img is PID 1 of its namespace behind a relay: a CPU limit still
         * stops it, output over the bound still kills it (all of it: the run returns, so no
         * process inside kept the pipes open), and a missing program is still -ENOENT. */
        int fd = open(base, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        QemuImgSandbox sb = { .input_fd = fd };
        const char *spin[] = { "/bin/sh", "-c", "while :; do :; done", NULL };
        QemuImgRun o = { .fd3 = -1, .limit_cpu_s = 1, .sandbox = &sb };
        char *err = NULL;
        cr_assert_eq(qemu_img_run(spin, &o, NULL, &err), -ETIME, "%s", err);
        free(err);
        const char *chatty[] = { "/bin/sh", "-c", "sleep 600 & exec /usr/bin/yes", NULL };
        QemuImgRun c = { .fd3 = -1, .stdout_max = 4096, .sandbox = &sb };
        uint64_t t0 = now_ms();
        cr_assert_eq(qemu_img_run(chatty, &c, NULL, &err), -EFBIG, "%s", err);
        cr_assert_lt(now_ms() - t0, 10000, "a process of the sandbox outlived the kill");
        free(err);
        const char *missing[] = { "/nonexistent/qemu-img", NULL };
        QemuImgRun m = { .fd3 = -1, .sandbox = &sb };
        cr_assert_eq(qemu_img_run(missing, &m, NULL, &err), -ENOENT, "%s", err);
        free(err);
        close(fd);
}

/* image_info_check: the pure check of `qemu-img info --output=json`, on hand-written replies. */
TestSuite(image_info, .timeout = 30);

#define ABS "/srv/images/disk.img"

static int check(const char *json, uint64_t file_size, ImageInfo *info, char **err)
{
        return image_info_check(json, strlen(json), ABS, file_size, info, err);
}

static void info_refused(const char *json, uint64_t file_size, int want_r, const char *want)
{
        ImageInfo info;
        char *err = NULL;
        int r = check(json, file_size, &info, &err);
        cr_assert_eq(r, want_r, "%s: r=%d (%s)", json, r, err ? err : "accepted");
        cr_assert_not_null(err);
        cr_assert_not_null(strstr(err, want), "message \"%s\" lacks \"%s\"", err, want);
        free(err);
}

Test(image_info, accepts_a_good_qcow2)
{
        const char *j = "{\n    \"virtual-size\": 16777216,\n    \"filename\": \"" ABS "\",\n"
                        "    \"cluster-size\": 65536,\n    \"format\": \"qcow2\",\n    \"actual-size\": 4399104,\n"
                        "    \"format-specific\": {\n        \"type\": \"qcow2\",\n        \"data\": {\n"
                        "            \"compat\": \"1.1\",\n            \"compression-type\": \"zlib\",\n"
                        "            \"lazy-refcounts\": false,\n            \"refcount-bits\": 16,\n"
                        "            \"corrupt\": false,\n            \"extended-l2\": false\n        }\n    },\n"
                        "    \"dirty-flag\": false\n}\n";
        ImageInfo info;
        char *err = NULL;
        cr_assert_eq(check(j, 4399104, &info, &err), 0, "%s", err ? err : "");
        cr_assert_null(err);
        cr_assert_str_eq(info.format, "qcow2");
        cr_assert_eq(info.virtual_size, 16777216);
        cr_assert_eq(info.file_size, 4399104);
        /* A NULL ret_error is allowed. */
        cr_assert_eq(check(j, 4399104, &info, NULL), 0);
}

Test(image_info, accepts_a_raw_disk_and_a_vmdk_whose_extent_is_itself)
{
        ImageInfo info;
        cr_assert_eq(check("{\"format\": \"raw\", \"virtual-size\": 4194304}", 4194304, &info, NULL), 0);
        cr_assert_str_eq(info.format, "raw");
        cr_assert_eq(check("{\"format\": \"vmdk\", \"virtual-size\": 16777216, \"format-specific\": {\"type\": "
                           "\"vmdk\", \"data\": {\"extents\": [{\"filename\": \"" ABS "\", \"format\": "
                           "\"SPARSE\"}]}}}", 65536, &info, NULL), 0);
        cr_assert_str_eq(info.format, "vmdk");
}

Test(image_info, refuses_a_backing_file)
{
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 1048576, \"backing-filename\": \"/etc/passwd\", "
                     "\"backing-filename-format\": \"raw\"}", 196608, -EINVAL, "backing file (/etc/passwd)");
        /* Whatever its type: QEMU would still open something. */
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 1048576, \"backing-filename\": 7}", 196608, -EINVAL,
                     "refusing an image with a backing file");
        /* Control bytes in the name are escaped, not written to the log. */
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 1048576, \"backing-filename\": \"a\\nb\\u001b[31m\"}",
                     196608, -EINVAL, "(a\\x0ab\\x1b[31m)");
}

Test(image_info, refuses_an_encrypted_image)
{
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 4194304, \"encrypted\": true}", 262144, -EINVAL,
                     "refusing an encrypted image");
        ImageInfo info;
        cr_assert_eq(check("{\"format\": \"qcow2\", \"virtual-size\": 4194304, \"encrypted\": false}", 1, &info, NULL),
                     0);
}

Test(image_info, refuses_a_qcow2_data_file)
{
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 4194304, \"format-specific\": {\"type\": \"qcow2\", "
                     "\"data\": {\"compat\": \"1.1\", \"data-file\": \"/var/tmp/datafile.raw\", \"data-file-raw\": "
                     "true}}}", 196608, -EINVAL, "external data file (/var/tmp/datafile.raw)");
}

Test(image_info, refuses_a_vmdk_with_a_foreign_extent)
{
        info_refused("{\"format\": \"vmdk\", \"virtual-size\": 4096, \"format-specific\": {\"type\": \"vmdk\", "
                     "\"data\": {\"extents\": [{\"filename\": \"/etc/passwd\", \"format\": \"FLAT\"}]}}}", 120,
                     -EINVAL, "refers to another file (/etc/passwd)");
        /* The second extent counts as much as the first. */
        info_refused("{\"format\": \"vmdk\", \"virtual-size\": 4096, \"format-specific\": {\"data\": {\"extents\": "
                     "[{\"filename\": \"" ABS "\"}, {\"filename\": \"/dev/sda\"}]}}}", 120, -EINVAL, "(/dev/sda)");
        info_refused("{\"format\": \"vmdk\", \"virtual-size\": 4096, \"format-specific\": {\"data\": {\"extents\": "
                     "[{\"format\": \"FLAT\"}]}}}", 120, -EINVAL, "(unnamed extent)");
        /* A NUL escaped in the JSON string must not make "/srv/images/disk.img\0x" equal to the file. */
        info_refused("{\"format\": \"vmdk\", \"virtual-size\": 4096, \"format-specific\": {\"data\": {\"extents\": "
                     "[{\"filename\": \"" ABS "\\u0000x\"}]}}}", 120, -EINVAL, "refers to another file");
}

Test(image_info, refuses_unsupported_formats_and_raw_that_is_not_a_disk)
{
        info_refused("{\"format\": \"qed\", \"virtual-size\": 4194304}", 4096, -EINVAL,
                     "unsupported image format qed");
        info_refused("{\"format\": \"raw\", \"virtual-size\": 3072}", 3072, -EINVAL, "at 3072 bytes it is not");
        info_refused("{\"format\": \"raw\", \"virtual-size\": 1048577}", 1048577, -EINVAL, "sized like a raw disk");
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 0}", 196608, -EINVAL, "virtual size is 0");
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": -5}", 196608, -EINVAL, "virtual size is 0");
}

Test(image_info, refuses_json_that_is_not_an_object_or_lacks_fields)
{
        const char *bad[] = {
                "", "   ", "[]", "[{\"format\": \"qcow2\", \"virtual-size\": 1}]", "\"qcow2\"", "42", "null",
                "{", "{\"format\": \"qcow2\", \"virtual-size\": 1", "{}", "{\"format\": \"qcow2\"}",
                "{\"virtual-size\": 1048576}", "{\"format\": 5, \"virtual-size\": 1048576}",
                "{\"format\": \"qcow2\", \"virtual-size\": \"1048576\"}",
                "{\"format\": null, \"virtual-size\": 1048576}",
                "{\"format\": \"qcow2\", \"virtual-size\": 1048576} trailing",
                "{\"format\": \"qcow2\", \"virtual-size\": 1048576}{}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                info_refused(bad[i], 1 << 20, -EBADMSG, "qemu-img info gave unexpected output");
        /* A NUL byte in the reply itself. */
        const char nul[] = "{\"format\": \"qcow2\"\0, \"virtual-size\": 1048576}";
        char *err = NULL;
        ImageInfo info;
        cr_assert_eq(image_info_check(nul, sizeof nul - 1, ABS, 1 << 20, &info, &err), -EBADMSG);
        free(err);
}

Test(image_info, huge_numbers)
{
        /* Past int64: json-c gives a double or an unsigned int, neither a usable size. */
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 1e999}", 1, -EBADMSG, "unexpected output");
        info_refused("{\"format\": \"qcow2\", \"virtual-size\": 1.5}", 1, -EBADMSG, "unexpected output");
        ImageInfo info;
        char *err = NULL;
        int r = check("{\"format\": \"qcow2\", \"virtual-size\": 99999999999999999999999999999}", 1, &info, &err);
        /* Whatever json-c makes of it, it is never a negative or wrapped size. */
        if (r == 0)
                cr_assert_leq(info.virtual_size, (uint64_t)INT64_MAX);
        free(err);
        cr_assert_eq(check("{\"format\": \"qcow2\", \"virtual-size\": 9223372036854775807}", 1, &info, NULL), 0);
        cr_assert_eq(info.virtual_size, (uint64_t)INT64_MAX);
        /* A file size that is not a multiple of 512 but huge: still refused as raw. */
        info_refused("{\"format\": \"raw\", \"virtual-size\": 1048576}", UINT64_MAX, -EINVAL, "sized like a raw disk");
}

Test(image_info, deeply_nested_junk_and_long_names)
{
        size_t depth = 100000;
        char *j = xmalloc0(depth * 2 + 64);
        strcpy(j, "{\"format\": \"qcow2\", \"virtual-size\": 1, \"x\": ");
        size_t n = strlen(j);
        memset(j + n, '[', depth);
        memset(j + n + depth, ']', depth);
        strcpy(j + n + 2 * depth, "}");
        info_refused(j, 1, -EBADMSG, "unexpected output");
        /* Moderately nested junk under an unknown key is ignored. */
        cr_assert_eq(check("{\"format\": \"qcow2\", \"virtual-size\": 1, \"x\": [[[{\"a\": [1, {}]}]]]}", 1,
                           &(ImageInfo){ 0 }, NULL), 0);
        free(j);
        /* Over the size limit: refused before parsing. */
        char *big = xmalloc0(IMAGE_INFO_JSON_MAX + 2);
        memset(big, ' ', IMAGE_INFO_JSON_MAX + 1);
        big[0] = '{';
        big[IMAGE_INFO_JSON_MAX] = '}';
        info_refused(big, 1, -EBADMSG, "unexpected output");
        free(big);
        /* A long hostile name is cut short in the message. */
        char *longname = xmalloc0(20000);
        strcpy(longname, "{\"format\": \"qcow2\", \"virtual-size\": 1, \"backing-filename\": \"");
        memset(longname + strlen(longname), 'a', 10000);
        strcat(longname, "\"}");
        char *err = NULL;
        cr_assert_eq(check(longname, 1, &(ImageInfo){ 0 }, &err), -EINVAL);
        cr_assert_lt(strlen(err), 1024, "%zu", strlen(err));
        cr_assert_not_null(strstr(err, "aaa...)"));
        free(err);
        free(longname);
}

int main(int argc, char *argv[])
{
        return qemu_test_main(argc, argv);
}
