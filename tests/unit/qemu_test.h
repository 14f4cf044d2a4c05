/* What the unit tests against the real qemu-img share: a shell helper and a main() that
 * skips (77) without qemu-img or qemu-io. Test code only; never linked into a program. */
#pragma once

/* Run a shell command built like printf; its exit status, or -1 if it did not exit. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The test binary's main: skip without QEMU_IMG_PATH and qemu-io, else run every test. */
int qemu_test_main(int argc, char *argv[]);
