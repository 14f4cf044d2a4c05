/* Replays a fuzz target's seed corpus under `make check` (no libFuzzer needed): every file in
 * $SLATE_SRCDIR/tests/fuzz/corpus/<FUZZ_NAME>/ and any file given on the command line.
 * `make fuzz` links the same targets with clang -fsanitize=fuzzer for real campaigns. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        char *buf;
        size_t len;
        int r = read_file_max(path, 16u << 20, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-r));
                return -1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        int n = 0, failed = 0;
        if (argc > 1) {
                for (int i = 1; i < argc; i++)
                        failed += run_file(argv[i]) < 0, n++;
        } else {
                const char *src = getenv("SLATE_SRCDIR");
                char *dir = xasprintf("%s/tests/fuzz/corpus/%s", src ? src : ".", FUZZ_NAME);
                DIR *d = opendir(dir);
                if (!d) {
                        fprintf(stderr, "%s: no seed corpus\n", dir);
                        return 1;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        char *p = xasprintf("%s/%s", dir, de->d_name);
                        failed += run_file(p) < 0;
                        n++;
                        free(p);
                }
                closedir(d);
                free(dir);
        }
        printf("%s: %d inputs replayed, %d unreadable\n", FUZZ_NAME, n, failed);
        return failed || n == 0 ? 1 : 0;
}
