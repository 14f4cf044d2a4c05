/* Fuzz target: the listings an app capture reads back from the image (find -printf records and
 * dpkg-query lines, capture_diff.h). The image's own programs write them, so they are hostile.
 * The input is used both ways: as a file listing (then diffed against nothing and itself) and,
 * NUL-terminated, as a package listing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "imaging/capture_diff.h"

static void check_error(char *err)
{
        if (!err || strlen(err) > 1024)
                abort();
        for (const char *p = err; *p; p++)
                if ((unsigned char)*p < 0x20)
                        abort();
        free(err);
}

static int has_dotdot(const char *p)
{
        size_t n = strlen(p);
        return strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 || strstr(p, "/../") ||
               (n >= 3 && strcmp(p + n - 3, "/..") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf = malloc(size + 1), *err = NULL;
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = '\0';
        CaptureListing l, empty = { 0 };
        if (capture_listing_parse(buf, size, &l, &err) == 0) {
                CaptureDiff d;
                /* Against itself: nothing kept, nothing overridden. */
                if (err || capture_diff(&l, &l, &d, &err) < 0 || d.n_keep || d.n_overrides)
                        abort();
                capture_diff_free(&d);
                /* Against an empty image: every kept path is relative, without "..", and sorted. */
                if (capture_diff(&empty, &l, &d, &err) < 0)
                        abort();
                for (size_t i = 0; i < d.n_keep; i++)
                        if (!d.keep[i][0] || d.keep[i][0] == '/' || has_dotdot(d.keep[i]) ||
                            (i && strcmp(d.keep[i - 1], d.keep[i]) >= 0))
                                abort();
                capture_diff_free(&d);
        } else
                check_error(err);
        capture_listing_free(&l);

        char *text = malloc(size + 1), **q = NULL, **p = NULL;
        size_t n;
        err = NULL;
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (capture_packages_added("", text, &q, &p, &n, &err) == 0) {
                for (size_t i = 0; i < n; i++)
                        if (!q[i] || !p[i] || !strchr(p[i], '=') || strpbrk(q[i], " \t\n;'\"$`\\"))
                                abort();
                capture_strv_free(q);
                capture_strv_free(p);
        } else
                check_error(err);
        free(text);
        return 0;
}
