/* Shared by test_image and test_overlay: both drive the real qemu-img and qemu-io. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/unit/qemu_test.h"

int sh(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *cmd;
        cr_assert(vasprintf(&cmd, fmt, ap) >= 0);
        va_end(ap);
        int st = system(cmd);
        free(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int qemu_test_main(int argc, char *argv[])
{
        if (access(QEMU_IMG_PATH, X_OK) < 0 || system("command -v qemu-io >/dev/null") != 0) {
                fprintf(stderr, "SKIP: %s or qemu-io missing (apt-get install qemu-utils)\n", QEMU_IMG_PATH);
                return 77;
        }
        struct criterion_test_set *tests = criterion_initialize();
        int result = 0;
        if (criterion_handle_args(argc, argv, true))
                result = !criterion_run_all_tests(tests);
        criterion_finalize(tests);
        return result;
}
