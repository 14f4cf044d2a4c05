/* Internal to imaging/: run qemu-img as a child process and collect what it said.
 * Never passes a secret in argv or the environment: secrets go through an inherited fd. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A run on a hostile file (a published image): qemu-img sees that file alone, read-only, as
 * QEMU_IMG_INPUT, and can write only output_dir, seen as QEMU_IMG_OUTPUT_DIR; no network, no other
 * host file, no capability (common/sandbox.h). It runs as nobody when others may read the file,
 * else as the file's owner. output_dir: an empty directory the caller made, given to that
 * identity for the run; what is in it afterwards is the caller's to check and take over. */
typedef struct QemuImgSandbox {
        int input_fd;
        const char *output_dir;          /* NULL: nothing writable */
} QemuImgSandbox;
#define QEMU_IMG_INPUT "/in/image"
#define QEMU_IMG_OUTPUT_DIR "/out"

typedef struct QemuImgRun {
        int fd3;                 /* >= 0: made fd 3 in the child (e.g. the read end of a secret pipe);
                                  * not with a sandbox, whose input takes fd 3 */
        uint64_t limit_as;       /* RLIMIT_AS for the child in bytes, 0 = inherit */
        unsigned limit_cpu_s;    /* RLIMIT_CPU for the child in seconds, 0 = inherit */
        size_t stdout_max;       /* 0: stdout goes to /dev/null; else captured, more is an error */
        const QemuImgSandbox *sandbox; /* NULL: slated's own files, run as before */
        int exit_code;           /* out: the exit status when it exited, else -1 */
} QemuImgRun;

/* Run argv (argv[0] is the qemu-img path) and wait for it. 0 when it exited 0.
 * opts may be NULL (no limits, no capture). Otherwise a negative errno: -EIO (non-zero exit), -ETIME (CPU limit), -ENOMEM (killed, likely
 * the memory limit), -EFBIG (stdout over stdout_max), or the errno of a failed pipe/fork/exec.
 * *ret_stdout (optional) gets the captured stdout; *ret_stderr (optional) the end of stderr,
 * trimmed, bounded, never NULL on return. Does not log: callers know the context. */
int qemu_img_run(const char *const *argv, QemuImgRun *opts, char **ret_stdout, char **ret_stderr);

/* qemu-img fails a LUKS create now and then with "Unable to get accurate CPU usage" (its PBKDF2
 * benchmark read 0 ms): run argv with secret on a fresh pipe as fd 3 (argv names
 * "secret,id=sec0,file=/dev/fd/3,format=raw"), retrying that failure for up to 10 s.
 * before_attempt (optional) runs before each attempt (a failed create deletes its file).
 * *ret_stderr says why on failure, with the number of attempts. */
/* before_attempt for qemu_img_run_keyed: create the file 0600 (owned by owner:group unless
 * owner is -1) before qemu-img fills it; qemu-img keeps an existing inode, so the file is never
 * readable by others, even for a moment. userdata: a QemuImgPrecreate. */
typedef struct QemuImgPrecreate {
        const char *path;
        uid_t owner;
        gid_t group;
} QemuImgPrecreate;
int qemu_img_precreate(void *userdata);

int qemu_img_run_keyed(const char *const *argv, const void *secret, size_t secret_len,
                       int (*before_attempt)(void *userdata), void *userdata, char **ret_stderr);
