/* Small helpers shared by every program: paths, files, randomness, secrets, time.
 * Nothing here logs; errors come back as negative errno. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* aborts on OOM */
void *xmalloc0(size_t n);
void *xrealloc(void *p, size_t n);              /* aborts on OOM */
char *xstrdup(const char *s);

int mkdir_p(const char *path, mode_t mode);
/* No error if missing. Everything below path may belong to someone hostile (a VM's run dir): it
 * is walked by directory fds, symlinks are removed and never followed, other filesystems are not
 * entered (-EXDEV), and no deeper than 256 levels (-ELOOP). path's own parents are trusted. */
int rm_rf(const char *path);
int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len);
/* CPU time (user + system, all threads) a process has had, ms, from /proc/PID/stat. */
int proc_cpu_ms(pid_t pid, uint64_t *ret_ms);
/* Through a fresh temporary file (O_EXCL, O_NOFOLLOW) renamed over path: nothing planted in
 * path's directory is written through. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

int random_bytes(void *buf, size_t n);          /* getrandom(), never fails short */
void hex_encode(const uint8_t *in, size_t n, char *out);   /* out: 2n+1 bytes */
/* Wipe a secret so the compiler cannot elide it. */
void secret_wipe(void *p, size_t n);
void strv_free(char **v, size_t n);             /* n strings and the array; NULL is fine */

uint64_t now_ms(void);                          /* CLOCK_MONOTONIC */
uint64_t now_realtime_s(void);

bool string_is_name(const char *s, size_t max); /* [A-Za-z0-9][A-Za-z0-9._-]*, for image/pool names */
int parse_size(const char *s, uint64_t *ret);   /* "512M", "2G", "1048576" → bytes */
int parse_uint(const char *s, unsigned max, unsigned *ret);
int fs_is_tmpfs(const char *path);              /* 1 yes, 0 no, <0 error */
