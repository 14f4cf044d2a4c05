/* Fuzz target: what slated reads back from a replica host (streaming/sftp.c): the output of
 * sftp's ls -1, which the far side controls, and a replicate destination as an admin (or a
 * control client) types it. The first byte picks which, and for a listing the section. Names
 * must come out as single path components, destinations as a host and an absolute path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common/util.h"
#include "streaming/sftp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        char *s = xmalloc0(size);
        memcpy(s, data + 1, size - 1);     /* NUL-terminated at the first NUL or the end */
        if (data[0] & 1) {
                size_t n;
                char **v = sftp_names(s, data[0] >> 1, &n);
                for (size_t i = 0; i < n; i++) {
                        if (!v[i][0] || strchr(v[i], '/') || strchr(v[i], '\n') || strcmp(v[i], ".") == 0 ||
                            strcmp(v[i], "..") == 0)
                                abort();
                        free(v[i]);
                }
                free(v);
        } else {
                Sftp f;
                int r = sftp_parse(s, "sftp", NULL, &f);
                if (r > 0) {
                        if (!f.host[0] || f.host[0] == '-' || f.path[0] != '/' || strpbrk(f.host, " \n\"'\\"))
                                abort();
                        char *q = sftp_quote(f.path);
                        if (q[0] != '"' || q[strlen(q) - 1] != '"')
                                abort();
                        free(q);
                        sftp_free(&f);
                }
        }
        free(s);
        return 0;
}
