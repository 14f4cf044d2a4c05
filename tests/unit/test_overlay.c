/* Overlays against the real qemu-img/qemu-io: right backing file, LUKS really encrypts, keys are
 * wiped, ram mode stays on tmpfs, the golden never changes. Skips (77) without qemu-img.
 * The tests pass the overlay key to qemu-io in argv; the product never does. */
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
#include "imaging/luks.h"
#include "imaging/overlay.h"
#include "tests/unit/qemu_test.h"

static char tmpdir[256];
static char golden[300];

/* Set by the overlay.c release hook: what the key page held after the wipe. */
static char released_secret[OVERLAY_SECRET_LEN + 1];
static bool released;

void overlay_test_hook_release(const Overlay *o);
void overlay_test_hook_release(const Overlay *o)
{
        memcpy(released_secret, o->secret, sizeof released_secret);
        released = true;
}

static json_object *qemu_img_info(const char *path)
{
        char *cmd = xasprintf("%s info -U --output=json '%s'", QEMU_IMG_PATH, path);
        FILE *f = popen(cmd, "r");
        free(cmd);
        cr_assert_not_null(f);
        static char buf[65536];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        cr_assert_eq(pclose(f), 0, "qemu-img info %s failed", path);
        json_object *j = json_tokener_parse(buf);
        cr_assert_not_null(j);
        return j;
}

static const char *jstr(json_object *j, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(j, key, &v) ? json_object_get_string(v) : NULL;
}

static void setup(void)
{
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/slate-test-overlay.XXXXXX", base);
        cr_assert_not_null(mkdtemp(tmpdir));
        snprintf(golden, sizeof golden, "%s/golden.qcow2", tmpdir);
        cr_assert_eq(sh("%s create -q -f qcow2 %s 16M && qemu-io -c 'write -P 0x11 0 2M' %s >/dev/null",
                        QEMU_IMG_PATH, golden, golden), 0);
        released = false;
}

static void teardown(void)
{
        rm_rf(tmpdir);
}

static Overlay *create_ok(OverlayMode mode, const char *dir, const char *id)
{
        Overlay *o = NULL;
        char *err = NULL;
        int r = overlay_create(QEMU_IMG_PATH, mode, golden, dir, id, (uid_t)-1, (gid_t)-1, &o, &err);
        cr_assert_eq(r, 0, "overlay_create(%s): %s", overlay_mode_to_string(mode), err ? err : "?");
        cr_assert_null(err);
        cr_assert_not_null(o);
        return o;
}

static void assert_backed_by_golden(const char *path, bool encrypted)
{
        json_object *j = qemu_img_info(path);
        cr_assert_str_eq(jstr(j, "format"), "qcow2");
        cr_assert_str_eq(jstr(j, "backing-filename"), golden);
        cr_assert_str_eq(jstr(j, "backing-filename-format"), "qcow2");
        json_object *v;
        bool enc = json_object_object_get_ex(j, "encrypted", &v) && json_object_get_boolean(v);
        cr_assert_eq(enc, encrypted, "%s: encrypted=%d", path, enc);
        json_object_put(j);
}

static void assert_mode_0600(const char *path)
{
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600, "%s has mode %o", path, st.st_mode & 07777);
}

static char *golden_sha(void)
{
        char *h = xmalloc0(IMAGE_SHA256_HEX + 1);
        cr_assert_eq(image_sha256(golden, h), 0);
        return h;
}

/* qemu-io on an overlay: plain by file name, encrypted through --image-opts with the key. */
static int qemu_io(const Overlay *o, const char *cmd)
{
        if (o->mode != OVERLAY_ENCRYPTED)
                return sh("qemu-io -f qcow2 -c '%s' '%s' >/dev/null", cmd, o->path);
        return sh("qemu-io --object secret,id=s,data=%s --image-opts "
                  "driver=qcow2,file.filename=%s,encrypt.format=luks,encrypt.key-secret=s -c '%s' >/dev/null",
                  o->secret, o->path, cmd);
}

static bool file_contains(const char *path, const char *needle)
{
        char *data = NULL;
        size_t len = 0;
        cr_assert_eq(read_file_max(path, 256u << 20, &data, &len), 0);
        bool found = memmem(data, len, needle, strlen(needle)) != NULL;
        free(data);
        return found;
}

TestSuite(overlay, .init = setup, .fini = teardown, .timeout = 120);

Test(overlay, mode_names_round_trip)
{
        for (OverlayMode m = OVERLAY_ENCRYPTED; m <= OVERLAY_PLAIN; m++) {
                OverlayMode back;
                cr_assert_eq(overlay_mode_from_string(overlay_mode_to_string(m), &back), 0);
                cr_assert_eq(back, m);
        }
        OverlayMode x;
        cr_assert_eq(overlay_mode_from_string("luks", &x), -EINVAL);
}

Test(overlay, plain_overlay_has_absolute_golden_as_qcow2_backing)
{
        Overlay *o = create_ok(OVERLAY_PLAIN, tmpdir, "desk-1");
        cr_assert_eq(o->path[0], '/');
        cr_assert_str_eq(strrchr(o->path, '/'), "/desk-1.qcow2");
        assert_backed_by_golden(o->path, false);
        assert_mode_0600(o->path);
        uint64_t bytes = 0;
        cr_assert_eq(overlay_bytes(o->path, &bytes), 0);
        cr_assert_gt(bytes, 0);
        cr_assert_eq(o->secret[0], 0, "plain overlays have no key");
        cr_assert_eq(overlay_destroy(o), 0);
}

Test(overlay, ram_overlay_lives_on_tmpfs)
{
        if (fs_is_tmpfs("/dev/shm") != 1)
                cr_skip_test("/dev/shm is not tmpfs here");
        char shm[] = "/dev/shm/slate-test-overlay.XXXXXX";
        cr_assert_not_null(mkdtemp(shm));
        Overlay *o = create_ok(OVERLAY_RAM, shm, "desk-ram");
        cr_assert_eq(strncmp(o->path, shm, strlen(shm)), 0);
        assert_backed_by_golden(o->path, false);
        assert_mode_0600(o->path);
        char *path = xstrdup(o->path);
        cr_assert_eq(overlay_destroy(o), 0);
        cr_assert_eq(access(path, F_OK), -1, "destroy left %s", path);
        free(path);
        rm_rf(shm);
}

Test(overlay, ram_overlay_refused_off_tmpfs)
{
        if (fs_is_tmpfs(tmpdir) != 0)
                cr_skip_test("%s is tmpfs: cannot test the refusal here", tmpdir);
        Overlay *o = NULL;
        char *err = NULL;
        int r = overlay_create(QEMU_IMG_PATH, OVERLAY_RAM, golden, tmpdir, "desk-2", (uid_t)-1, (gid_t)-1, &o, &err);
        cr_assert_eq(r, -EXDEV);
        cr_assert_null(o);
        cr_assert_not_null(err);
        cr_assert_not_null(strstr(err, "is not on tmpfs"), "message: %s", err);
        char *path = xasprintf("%s/desk-2.qcow2", tmpdir);
        cr_assert_eq(access(path, F_OK), -1, "refused overlay left a file");
        free(path);
        free(err);
}

Test(overlay, encrypted_overlay_is_luks_with_random_hex_key)
{
        Overlay *a = create_ok(OVERLAY_ENCRYPTED, tmpdir, "desk-a");
        Overlay *b = create_ok(OVERLAY_ENCRYPTED, tmpdir, "desk-b");
        assert_backed_by_golden(a->path, true);
        assert_mode_0600(a->path);
        json_object *j = qemu_img_info(a->path), *fs, *data, *enc;
        cr_assert(json_object_object_get_ex(j, "format-specific", &fs) &&
                  json_object_object_get_ex(fs, "data", &data) && json_object_object_get_ex(data, "encrypt", &enc));
        cr_assert_str_eq(jstr(enc, "format"), "luks");
        json_object_put(j);

        cr_assert_eq(strlen(a->secret), OVERLAY_SECRET_LEN);
        cr_assert_eq(strspn(a->secret, "0123456789abcdef"), OVERLAY_SECRET_LEN);
        cr_assert_str_neq(a->secret, b->secret, "two overlays got the same key");
        /* The key opens the overlay, a wrong one does not. */
        cr_assert_eq(qemu_io(a, "read -P 0x11 0 64k"), 0);
        char saved[OVERLAY_SECRET_LEN + 1];
        memcpy(saved, a->secret, sizeof saved);
        memcpy(a->secret, b->secret, sizeof saved);
        cr_assert_neq(qemu_io(a, "read 0 4k"), 0, "a wrong key opened the overlay");
        memcpy(a->secret, saved, sizeof saved);
        cr_assert_eq(overlay_destroy(a), 0);
        cr_assert_eq(overlay_destroy(b), 0);
}

Test(overlay, destroy_removes_file_and_wipes_key)
{
        Overlay *o = create_ok(OVERLAY_ENCRYPTED, tmpdir, "desk-d");
        char *path = xstrdup(o->path);
        cr_assert_eq(access(path, F_OK), 0);
        cr_assert_eq(overlay_destroy(o), 0);
        cr_assert(released, "release hook not called");
        for (size_t i = 0; i < sizeof released_secret; i++)
                cr_assert_eq(released_secret[i], 0, "key byte %zu not wiped", i);
        cr_assert_eq(access(path, F_OK), -1, "destroy left %s", path);
        free(path);
}

Test(overlay, destroy_is_idempotent_on_a_missing_file)
{
        Overlay *o = create_ok(OVERLAY_PLAIN, tmpdir, "desk-gone");
        cr_assert_eq(unlink(o->path), 0);
        cr_assert_eq(overlay_destroy(o), 0);
}

Test(overlay, forget_wipes_key_but_keeps_file_until_discarded)
{
        Overlay *o = create_ok(OVERLAY_ENCRYPTED, tmpdir, "desk-f");
        char *path = xstrdup(o->path);
        overlay_forget(o);
        cr_assert(released);
        for (size_t i = 0; i < sizeof released_secret; i++)
                cr_assert_eq(released_secret[i], 0, "key byte %zu not wiped", i);
        cr_assert_eq(access(path, F_OK), 0, "forget removed the file");
        cr_assert_eq(overlay_discard_path(path), 0);
        cr_assert_eq(access(path, F_OK), -1);
        cr_assert_eq(overlay_discard_path(path), 0, "discard of a missing file is not an error");
        free(path);
}

Test(overlay, owner_gets_the_file)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to chown");
        Overlay *o = NULL;
        char *err = NULL;
        cr_assert_eq(overlay_create(QEMU_IMG_PATH, OVERLAY_ENCRYPTED, golden, tmpdir, "desk-o", 64055, 64056, &o, &err),
                     0, "%s", err ? err : "?");
        struct stat st;
        cr_assert_eq(stat(o->path, &st), 0);
        cr_assert_eq(st.st_uid, 64055u);
        cr_assert_eq(st.st_gid, 64056u);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(overlay_destroy(o), 0);
}

Test(overlay, bad_arguments_are_refused_with_a_reason)
{
        Overlay *o = NULL;
        char *err = NULL;
        cr_assert_eq(overlay_create(QEMU_IMG_PATH, OVERLAY_PLAIN, "golden.qcow2", tmpdir, "x", (uid_t)-1, (gid_t)-1,
                                    &o, &err), -EINVAL);
        cr_assert_not_null(strstr(err, "not absolute"), "%s", err);
        free(err);
        cr_assert_eq(overlay_create(QEMU_IMG_PATH, OVERLAY_PLAIN, golden, tmpdir, "../escape", (uid_t)-1, (gid_t)-1,
                                    &o, &err), -EINVAL);
        free(err);
        char *missing = xasprintf("%s/missing.qcow2", tmpdir);
        cr_assert_lt(overlay_create(QEMU_IMG_PATH, OVERLAY_PLAIN, missing, tmpdir, "m", (uid_t)-1, (gid_t)-1, &o, &err),
                     0);
        cr_assert_not_null(strstr(err, "qemu-img create"), "%s", err);
        char *path = xasprintf("%s/m.qcow2", tmpdir);
        cr_assert_eq(access(path, F_OK), -1, "failed create left %s", path);
        free(err);
        free(path);
        free(missing);
}

Test(overlay, writes_through_any_overlay_leave_the_golden_unchanged)
{
        char *before = golden_sha();
        Overlay *p = create_ok(OVERLAY_PLAIN, tmpdir, "w-plain");
        Overlay *e = create_ok(OVERLAY_ENCRYPTED, tmpdir, "w-enc");
        cr_assert_eq(qemu_io(p, "write -P 0x5a 0 1M"), 0);
        cr_assert_eq(qemu_io(e, "write -P 0x5a 0 1M"), 0);
        /* The writes landed (in the overlays) and the golden's data still shows through. */
        cr_assert_eq(qemu_io(p, "read -P 0x5a 0 1M"), 0);
        cr_assert_eq(qemu_io(e, "read -P 0x5a 0 1M"), 0);
        cr_assert_eq(qemu_io(e, "read -P 0x11 1M 1M"), 0);
        cr_assert_eq(sh("qemu-io -f qcow2 -r -c 'read -P 0x11 0 2M' '%s' >/dev/null", golden), 0);
        char *after = golden_sha();
        cr_assert_str_eq(before, after, "the golden changed");
        cr_assert_eq(overlay_destroy(p), 0);
        cr_assert_eq(overlay_destroy(e), 0);
        free(before);
        free(after);
}

Test(overlay, canary_is_readable_in_plain_and_absent_from_encrypted_file)
{
        uint8_t rnd[8];
        char hex[17], canary[64];
        cr_assert_eq(random_bytes(rnd, sizeof rnd), 0);
        hex_encode(rnd, sizeof rnd, hex);
        snprintf(canary, sizeof canary, "SLATE-CANARY-%s", hex);
        char *src = xasprintf("%s/canary.bin", tmpdir);
        FILE *f = fopen(src, "w");
        cr_assert_not_null(f);
        for (int i = 0; i < 65536 / 32; i++)
                fprintf(f, "%-31s\n", canary);
        fclose(f);

        Overlay *p = create_ok(OVERLAY_PLAIN, tmpdir, "c-plain");
        Overlay *e = create_ok(OVERLAY_ENCRYPTED, tmpdir, "c-enc");
        char *cmd = xasprintf("write -s %s 1M 64k", src);
        cr_assert_eq(qemu_io(p, cmd), 0);
        cr_assert_eq(qemu_io(e, cmd), 0);
        cr_assert(file_contains(p->path, canary), "canary missing from the plain overlay: the test is broken");
        cr_assert(!file_contains(e->path, canary), "canary readable in the encrypted overlay file");
        cr_assert_eq(overlay_destroy(p), 0);
        cr_assert_eq(overlay_destroy(e), 0);
        free(cmd);
        free(src);
}

static int count_blanks(void)
{
        char *cmd = xasprintf("test $(ls -A '%s/.blanks' 2>/dev/null | wc -l) -eq 1", tmpdir);
        int r = sh("%s", cmd);
        free(cmd);
        return r == 0 ? 1 : 0;
}

/* Encrypted overlays are copies of one blank, each rekeyed: the blank is made once per backing
 * file, and no two copies share a master key. Proof of the second: overlay B's data read through
 * A's LUKS header and key. Were the master key shared, it would read back as written. */
Test(overlay, copies_of_one_blank_share_no_master_key)
{
        Overlay *a = create_ok(OVERLAY_ENCRYPTED, tmpdir, "k-a");
        Overlay *b = create_ok(OVERLAY_ENCRYPTED, tmpdir, "k-b");
        cr_assert_eq(count_blanks(), 1, "expected one blank for one golden");
        cr_assert_eq(qemu_io(b, "write -P 0x77 0 64k"), 0);
        cr_assert_eq(qemu_io(b, "read -P 0x77 0 64k"), 0);

        int fa = open(a->path, O_RDONLY), fb = open(b->path, O_RDWR);
        cr_assert(fa >= 0 && fb >= 0);
        uint64_t off = 0, len = 0, off_b = 0, len_b = 0;
        char *err = NULL;
        cr_assert_eq(luks_qcow2_region(fa, &off, &len, &err), 0, "%s", err ? err : "");
        cr_assert_eq(luks_qcow2_region(fb, &off_b, &len_b, &err), 0, "%s", err ? err : "");
        cr_assert(off == off_b && len == len_b && len > 0 && len < (64u << 20));
        char *hdr = xmalloc0(len);
        cr_assert_eq(pread(fa, hdr, len, (off_t)off), (ssize_t)len);
        cr_assert_eq(pwrite(fb, hdr, len, (off_t)off), (ssize_t)len);
        close(fa);
        close(fb);
        free(hdr);
        char saved[OVERLAY_SECRET_LEN + 1];
        memcpy(saved, b->secret, sizeof saved);
        memcpy(b->secret, a->secret, sizeof saved);
        cr_assert_eq(qemu_io(b, "read 0 64k"), 0, "A's header and key did not open B's file");
        cr_assert_neq(qemu_io(b, "read -P 0x77 0 64k"), 0, "B's data decrypted with A's master key");
        memcpy(b->secret, saved, sizeof saved);
        cr_assert_eq(overlay_destroy(a), 0);
        cr_assert_eq(overlay_destroy(b), 0);
        cr_assert_eq(overlay_blanks_clear(tmpdir), 0);
        cr_assert_eq(count_blanks(), 0, "the blanks were not cleared");
}

/* Rekeying an overlay qemu-img made: its own key no longer opens it, the new one does, and the
 * header is LUKS as qemu-img reads it. A file that is not LUKS-in-qcow2 is refused, untouched. */
Test(overlay, rekey_replaces_the_only_key_and_refuses_other_files)
{
        char *path = xasprintf("%s/rk.qcow2", tmpdir), *key = xasprintf("%s/k1", tmpdir);
        /* Retried: qemu-img's LUKS benchmark fails now and then under load (see qemu_img.c). */
        cr_assert_eq(sh("printf old-key-0123 >'%s' && for i in $(seq 40); do %s create -q -f qcow2 -b '%s' -F qcow2 "
                        "--object secret,id=s,file='%s' -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 "
                        "'%s' 2>/dev/null && exit 0; sleep 0.05; done; exit 1",
                        key, QEMU_IMG_PATH, golden, key, path), 0);
        int fd = open(path, O_RDWR);
        cr_assert(fd >= 0);
        char *err = NULL;
        cr_assert_eq(luks_qcow2_rekey(fd, "new-key-4567", 12, &err), 0, "%s", err ? err : "");
        close(fd);
#define IO "qemu-io --object secret,id=s,data=%s --image-opts " \
           "driver=qcow2,file.filename=%s,encrypt.key-secret=s -c 'read -P 0x11 0 64k' >/dev/null 2>&1"
        cr_assert_eq(sh(IO, "new-key-4567", path), 0, "the new key does not open the rekeyed file");
        cr_assert_neq(sh(IO, "old-key-0123", path), 0, "the old key still opens the rekeyed file");
#undef IO

        char *plain = xasprintf("%s/plain.qcow2", tmpdir);
        cr_assert_eq(sh("%s create -q -f qcow2 '%s' 1M", QEMU_IMG_PATH, plain), 0);
        char *before = NULL, *after = NULL;
        size_t n1 = 0, n2 = 0;
        cr_assert_eq(read_file_max(plain, 1u << 20, &before, &n1), 0);
        fd = open(plain, O_RDWR);
        cr_assert_eq(luks_qcow2_rekey(fd, "k", 1, &err), -EPROTO);
        cr_assert_not_null(err);
        close(fd);
        cr_assert_eq(read_file_max(plain, 1u << 20, &after, &n2), 0);
        cr_assert(n1 == n2 && memcmp(before, after, n1) == 0, "a refused file was changed");
        free(err);
        free(before);
        free(after);
        free(plain);
        free(path);
        free(key);
}

int main(int argc, char *argv[])
{
        return qemu_test_main(argc, argv);
}
