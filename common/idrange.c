/* uid ranges for per-process identities (idrange.h). The bitmap never shrinks or grows after init;
 * the /proc scan is the only I/O besides the NSS check, and both are outside idrange_take's fast
 * path except when the cursor wraps. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/idrange.h"
#include "common/util.h"

#define NOBODY_ID 65534u

static bool bit_get(const uint8_t *m, uint32_t i) { return m[i / 8] & (1u << (i % 8)); }
static void bit_set(uint8_t *m, uint32_t i) { m[i / 8] |= (uint8_t)(1u << (i % 8)); }
static void bit_clear(uint8_t *m, uint32_t i) { m[i / 8] &= (uint8_t)~(1u << (i % 8)); }

int idrange_validate(uint32_t base, uint32_t count, char *why, size_t n)
{
        uint64_t end = (uint64_t)base + count;     /* one past the last id */
        if (count == 0)
                return snprintf(why, n, "the range is empty"), -EINVAL;
        if (base == 0)
                return snprintf(why, n, "the range holds uid 0 (root)"), -EINVAL;
        if (end > UINT32_MAX)
                return snprintf(why, n, "the range reaches uid %u ((uid_t)-1, \"no uid\")", UINT32_MAX), -EINVAL;
        if (base <= NOBODY_ID && NOBODY_ID < end)
                return snprintf(why, n, "the range holds uid %u (nobody)", NOBODY_ID), -EINVAL;
        return 0;
}

int idrange_check_unused(uint32_t base, uint32_t count, char *why, size_t n)
{
        uint64_t end = (uint64_t)base + count;
        int r = 0;
        struct passwd *pw;
        setpwent();
        while (r == 0 && (pw = getpwent()))
                if (pw->pw_uid >= base && pw->pw_uid < end) {
                        snprintf(why, n, "user %s has uid %u, inside the range", pw->pw_name, (unsigned)pw->pw_uid);
                        r = -EEXIST;
                }
        endpwent();
        struct group *gr;
        setgrent();
        while (r == 0 && (gr = getgrent()))
                if (gr->gr_gid >= base && gr->gr_gid < end) {
                        snprintf(why, n, "group %s has gid %u, inside the range", gr->gr_name, (unsigned)gr->gr_gid);
                        r = -EEXIST;
                }
        endgrent();
        return r;
}

void idrange_init(IdRange *r, uint32_t base, uint32_t count)
{
        *r = (IdRange){ .base = base, .count = count };
        if (count == 0)
                return;
        r->used = xmalloc0(count / 8 + 1);
        r->foreign = xmalloc0(count / 8 + 1);
        idrange_scan_proc(r, "/proc");
}

void idrange_free(IdRange *r)
{
        free(r->used);
        free(r->foreign);
        *r = (IdRange){ 0 };
}

bool idrange_contains(const IdRange *r, uint32_t id)
{
        return id >= r->base && id - r->base < r->count;
}

int idrange_take(IdRange *r, uint32_t *ret)
{
        if (r->in_use >= r->count)
                return -EAGAIN;
        /* At most two passes: the second after a rescan, which may free ids a previous slated's
         * children held. */
        for (int pass = 0; pass < 2; pass++) {
                for (uint32_t k = 0; k < r->count; k++) {
                        uint32_t i = r->next;
                        if (++r->next == r->count) {
                                r->next = 0;
                                idrange_scan_proc(r, "/proc");
                        }
                        if (!bit_get(r->used, i) && !bit_get(r->foreign, i)) {
                                bit_set(r->used, i);
                                r->in_use++;
                                *ret = r->base + i;
                                return 0;
                        }
                }
        }
        return -EAGAIN;
}

int idrange_claim(IdRange *r, uint32_t id)
{
        if (!idrange_contains(r, id))
                return -ERANGE;
        uint32_t i = id - r->base;
        if (bit_get(r->used, i))
                return -EEXIST;
        bit_set(r->used, i);
        bit_clear(r->foreign, i);
        r->in_use++;
        /* After a restart new ids start past the adopted ones, as they would have. */
        if (i >= r->next)
                r->next = (i + 1) % r->count;
        return 0;
}

void idrange_release(IdRange *r, uint32_t id)
{
        if (!idrange_contains(r, id))
                return;
        uint32_t i = id - r->base;
        if (bit_get(r->used, i)) {
                bit_clear(r->used, i);
                r->in_use--;
        }
}

static void mark(IdRange *r, unsigned long id, unsigned *marked)
{
        if (id > UINT32_MAX || !idrange_contains(r, (uint32_t)id))
                return;
        if (!bit_get(r->foreign, (uint32_t)(id - r->base)))
                (*marked)++;
        bit_set(r->foreign, (uint32_t)(id - r->base));
}

unsigned idrange_scan_proc(IdRange *r, const char *proc_dir)
{
        if (r->count == 0)
                return 0;
        memset(r->foreign, 0, r->count / 8 + 1);
        unsigned marked = 0;
        DIR *d = opendir(proc_dir);
        if (!d)
                return 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_name[0] < '1' || e->d_name[0] > '9')
                        continue;
                char path[300], line[256];
                snprintf(path, sizeof path, "%s/%s/status", proc_dir, e->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof line, f)) {
                        unsigned long ru, eu, su;
                        if (sscanf(line, "Uid: %lu %lu %lu", &ru, &eu, &su) == 3) {
                                mark(r, ru, &marked);
                                mark(r, eu, &marked);
                                mark(r, su, &marked);
                                break;
                        }
                }
                fclose(f);
        }
        closedir(d);
        return marked;
}
