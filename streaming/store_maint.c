/* The block store's maintenance (store.h): replication, prune and check, on the insides
 * store_int.h shares with store.c. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "streaming/profile.h"
#include "streaming/store_int.h"

/* ---- replication ---- */

static int copy_file(const char *from, const char *to, size_t max)
{
        char *data = NULL;
        size_t len;
        int r = read_file_max(from, max, &data, &len);
        if (r == 0)
                r = write_file_atomic(to, data, len, 0600);
        free(data);
        return r;
}

int store_replicate(Store *s, const uint8_t host_key[STORE_HOST_KEY_LEN], const char *dest_dir,
                    StoreReplicaStats *st, char **ret_error)
{
        *ret_error = NULL;
        *st = (StoreReplicaStats){ 0 };
        _cleanup_free_ char *key = xasprintf("%s/" KEY_FILE, s->dir), *dkey = xasprintf("%s/" KEY_FILE, dest_dir);
        int r;
        if (access(dkey, F_OK) < 0) {
                if ((r = mkdir_p(dest_dir, 0700)) < 0 || (r = copy_file(key, dkey, PROFILE_WRAPPED_MAX)) < 0) {
                        *ret_error = xasprintf("%s: %s", dest_dir, strerror(-r));
                        return r;
                }
        }
        Store *d;
        if ((r = store_open(dest_dir, host_key, true, &d, ret_error)) < 0)
                return r;
        d->crash = s->crash;
        /* The same ids only under the same key: a store made by another key is not a replica. */
        if (memcmp(d->k_id, s->k_id, sizeof s->k_id) != 0) {
                *ret_error = xasprintf("%s holds another store (another key): not a replica of this one", dest_dir);
                store_close(d);
                return -EEXIST;
        }
        uint8_t plain[PLAIN_MAX];
        for (size_t i = 0; i < s->cap_locs && r == 0; i++) {
                Loc *l = &s->locs[i];
                if (l->pack == UINT32_MAX)
                        continue;
                if (store_index_find(d, l->id) || store_pending_has(d, l->id)) {
                        st->chunks_present++;
                        continue;
                }
                size_t got;
                uint64_t added;
                if ((r = store_chunk_get(s, l->id, plain, sizeof plain, &got)) < 0) {
                        *ret_error = xasprintf("pack %s: the chunk at %llu does not open or is not its id",
                                               s->packs[l->pack].name, (unsigned long long)l->off);
                        break;
                }
                if ((r = store_chunk_put(d, l->id, plain, got, &added, ret_error)) == 0) {
                        st->chunks_sent++;
                        st->bytes_sent += added;
                }
        }
        if (r == 0)
                r = store_pending_commit(d, ret_error);
        /* Then the versions, each only once its chunks are there. */
        char **names = NULL;
        size_t nn = 0;
        if (r == 0)
                store_names(s, &names, &nn);
        for (size_t k = 0; k < nn && r == 0; k++) {
                const char *name = names[k];
                int *vs;
                size_t n;
                if (store_versions(s, name, &vs, &n) < 0)
                        continue;
                _cleanup_free_ char *ddir = xasprintf("%s/versions/%s", dest_dir, name);
                for (size_t i = 0; i < n && r == 0; i++) {
                        _cleanup_free_ char *from = store_version_path(s, name, vs[i]),
                                            *to = store_version_path(d, name, vs[i]);
                        if (access(to, F_OK) == 0)
                                continue;
                        if ((r = mkdir_p(ddir, 0700)) < 0 ||
                            (r = copy_file(from, to, 64 + (size_t)VERSION_MAPS_MAX * ID_LEN)) < 0 ||
                            (r = store_fsync_dir(ddir)) < 0)
                                *ret_error = xasprintf("%s: %s", to, strerror(-r));
                        else
                                st->versions_sent++;
                }
                free(vs);
        }
        strv_free(names, nn);
        if (r < 0)
                store_pending_reset(d);
        store_close(d);
        return r;
}

/* ---- prune ---- */

void store_set_time(Store *s, uint64_t t) { s->fixed_time = t; }
void store_set_crash_hook(Store *s, void (*crash)(const char *point)) { s->crash = crash; }

/* Marks every chunk a version names (its maps and their blocks) in live (one flag per slot of
 * the index). -EBADMSG when a map cannot be read: then nothing may be collected. */
static int mark_version(Store *s, const char *name, int v, uint8_t *live)
{
        _cleanup_free_ uint8_t *buf = NULL;
        VersionHeader h;
        int r = store_version_load(s, name, v, &buf, &h);
        if (r < 0)
                return r;
        uint8_t ids[MAP_BYTES];
        for (uint32_t m = 0; m < h.n_maps; m++) {
                const uint8_t *map_id = h.maps + (size_t)m * ID_LEN;
                if (memcmp(map_id, store_zero_id, ID_LEN) == 0)
                        continue;
                Loc *l = store_index_find(s, map_id);
                size_t got;
                if (!l || store_chunk_get(s, map_id, ids, sizeof ids, &got) < 0 || got != (size_t)h.map_blocks * ID_LEN)
                        return -EBADMSG;
                live[l - s->locs] = 1;
                for (size_t i = 0; i < h.map_blocks; i++) {
                        Loc *b = store_index_find(s, ids + i * ID_LEN);
                        if (b)
                                live[b - s->locs] = 1;
                }
        }
        return 0;
}

#define DAY 86400u

/* Which of a name's versions (ascending, with their times) the policy keeps: keep[i]. */
static void prune_policy(const uint64_t *created, size_t n, unsigned keep_daily, unsigned keep_weekly, bool *keep)
{
        if (n == 0)
                return;
        keep[n - 1] = true;     /* the newest always: the next incremental counts from it */
        uint64_t newest = created[n - 1];
        uint64_t last_day = UINT64_MAX, last_week = UINT64_MAX;
        unsigned days = 0, weeks = 0;
        for (size_t k = n; k-- > 0;) {
                uint64_t day = created[k] / DAY, week = created[k] / (7 * DAY);
                if (day != last_day && days < keep_daily && newest / DAY - day < keep_daily) {
                        keep[k] = true;
                        days++;
                }
                if (week != last_week && weeks < keep_weekly && newest / (7 * DAY) - week < keep_weekly) {
                        keep[k] = true;
                        weeks++;
                }
                last_day = day;
                last_week = week;
        }
}

int store_prune(Store *s, unsigned keep_daily, unsigned keep_weekly, StorePruneStats *st, char **ret_error)
{
        *ret_error = NULL;
        *st = (StorePruneStats){ 0 };
        StoreUsage before;
        store_usage(s, &before);
        _cleanup_free_ char *vdir = xasprintf("%s/versions", s->dir);
        _cleanup_free_ uint8_t *live = xmalloc0(s->cap_locs ? s->cap_locs : 1);
        char **names = NULL;
        size_t nn = 0;
        store_names(s, &names, &nn);
        int r = 0;
        /* 1. Versions the policy drops go (each unlinked, the dir fsync'd), the rest are marked. */
        for (size_t k = 0; k < nn && r == 0; k++) {
                const char *name = names[k];
                int *vs;
                size_t n;
                if (store_versions(s, name, &vs, &n) < 0)
                        continue;
                uint64_t *created = xmalloc0(sizeof *created * (n + 1));
                bool *keep = xmalloc0(sizeof *keep * (n + 1));
                for (size_t i = 0; i < n; i++) {
                        uint64_t size;
                        if (store_version_info(s, name, vs[i], &size, &created[i]) < 0)
                                keep[i] = true;         /* a version that does not open is never removed here */
                }
                prune_policy(created, n, keep_daily, keep_weekly, keep);
                _cleanup_free_ char *ndir = xasprintf("%s/%s", vdir, name);
                for (size_t i = 0; i < n && r == 0; i++) {
                        if (keep[i]) {
                                st->versions_kept++;
                                int m = mark_version(s, name, vs[i], live);
                                if (m == -EBADMSG) {
                                        *ret_error = xasprintf("%s v%d names a chunk that cannot be read: nothing "
                                                               "collected (run store check)", name, vs[i]);
                                        r = m;
                                }
                                continue;
                        }
                        _cleanup_free_ char *path = store_version_path(s, name, vs[i]);
                        if (unlink(path) < 0 && errno != ENOENT) {
                                r = -errno;
                                *ret_error = xasprintf("%s: %s", path, strerror(-r));
                        } else {
                                st->versions_removed++;
                        }
                }
                if (r == 0)
                        store_fsync_dir(ndir);
                free(vs);
                free(created);
                free(keep);
        }
        strv_free(names, nn);
        if (r < 0 || s->bad_packs) {
                if (r == 0)
                        *ret_error = xstrdup("a pack's index cannot be read: nothing collected (run store check)");
                return r < 0 ? r : -EBADMSG;
        }
        /* 2. Packs: untouched when all their chunks live; else their live chunks go to new packs
         * (committed first), then the old pack is removed. */
        size_t n_old = s->n_packs;
        uint64_t *live_in = xmalloc0(sizeof *live_in * (n_old + 1)), *all_in = xmalloc0(sizeof *all_in * (n_old + 1));
        for (size_t i = 0; i < s->cap_locs; i++)
                if (s->locs[i].pack != UINT32_MAX) {
                        all_in[s->locs[i].pack]++;
                        live_in[s->locs[i].pack] += live[i];
                }
        uint8_t plain[PLAIN_MAX];
        for (size_t i = 0; i < s->cap_locs && r == 0; i++) {
                Loc *l = &s->locs[i];
                if (l->pack == UINT32_MAX || !live[i] || live_in[l->pack] == all_in[l->pack])
                        continue;
                size_t got;
                uint8_t id[ID_LEN];
                memcpy(id, l->id, ID_LEN);
                if ((r = store_chunk_get(s, id, plain, sizeof plain, &got)) < 0) {
                        *ret_error = xasprintf("pack %s: a live chunk does not open", s->packs[l->pack].name);
                        break;
                }
                /* Into a new pack: the index points at the old one until the reload below. */
                uint64_t added;
                r = store_pending_append(s, id, plain, got, &added, ret_error);
        }
        if (r == 0)
                r = store_pending_commit(s, ret_error);
        if (r == 0 && s->crash)
                s->crash("prune-packs-written");
        for (size_t p = 0; p < n_old && r == 0; p++) {
                if (live_in[p] == all_in[p])
                        continue;
                _cleanup_free_ char *path = store_pack_path(s, s->packs[p].name);
                st->chunks_removed += all_in[p] - live_in[p];
                st->packs_removed++;
                if (s->packs[p].fd >= 0) {
                        close(s->packs[p].fd);
                        s->packs[p].fd = -1;
                }
                if (unlink(path) < 0 && errno != ENOENT) {
                        r = -errno;
                        *ret_error = xasprintf("%s: %s", path, strerror(-r));
                }
        }
        free(live_in);
        free(all_in);
        if (r == 0) {
                _cleanup_free_ char *pdir = xasprintf("%s/packs", s->dir);
                store_fsync_dir(pdir);
        }
        if (r < 0)
                store_pending_reset(s);
        /* The index again from the packs on disk: moved chunks at their new place, gone ones gone. */
        int e = store_reload(s);
        if (r == 0 && e < 0) {
                r = e;
                *ret_error = xstrdup("reloading the pack indexes failed");
        }
        StoreUsage after;
        store_usage(s, &after);
        st->bytes_freed = before.stored_bytes > after.stored_bytes ? before.stored_bytes - after.stored_bytes : 0;
        return r;
}

/* ---- check ---- */

static void report(StoreCheck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(StoreCheck *c, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *line = NULL;
        if (vasprintf(&line, fmt, ap) < 0)
                line = NULL;
        va_end(ap);
        if (!line)
                return;
        char *all = xasprintf("%s%s\n", c->report ? c->report : "", line);
        free(c->report);
        free(line);
        c->report = all;
}

/* Every chunk a version names: present, and (read_data) opening to its id. */
static void check_version(Store *s, const char *name, int v, bool read_data, StoreCheck *c)
{
        _cleanup_free_ uint8_t *buf = NULL;
        VersionHeader h;
        if (store_version_load(s, name, v, &buf, &h) < 0) {
                c->bad_versions++;
                report(c, "%s v%d: the version file does not parse or its MAC fails", name, v);
                return;
        }
        uint8_t ids[MAP_BYTES], block[STORE_BLOCK];
        uint64_t bad = 0;
        for (uint32_t m = 0; m < h.n_maps; m++) {
                const uint8_t *map_id = h.maps + (size_t)m * ID_LEN;
                if (memcmp(map_id, store_zero_id, ID_LEN) == 0)
                        continue;
                size_t got;
                if (store_chunk_get(s, map_id, ids, sizeof ids, &got) < 0 || got != (size_t)h.map_blocks * ID_LEN) {
                        bad++;
                        continue;
                }
                for (size_t i = 0; i < h.map_blocks; i++) {
                        const uint8_t *id = ids + i * ID_LEN;
                        if (memcmp(id, store_zero_id, ID_LEN) == 0)
                                continue;
                        if (!store_index_find(s, id) ||
                            (read_data && (store_chunk_get(s, id, block, sizeof block, &got) < 0 || got != STORE_BLOCK)))
                                bad++;
                }
        }
        if (bad) {
                c->damaged_versions++;
                report(c, "%s v%d: %llu chunk%s missing or damaged", name, v, (unsigned long long)bad,
                       bad == 1 ? "" : "s");
        }
}

int store_check(Store *s, bool read_data, StoreCheck *ret)
{
        StoreCheck c = { .packs = s->n_packs, .chunks = s->n_locs, .bad_packs = s->bad_packs };
        if (s->bad_packs)
                report(&c, "%llu pack file%s with an unreadable index", (unsigned long long)s->bad_packs,
                       s->bad_packs == 1 ? "" : "s");
        if (read_data) {
                uint8_t plain[PLAIN_MAX];
                for (size_t i = 0; i < s->cap_locs; i++) {
                        Loc *l = &s->locs[i];
                        size_t got;
                        if (l->pack != UINT32_MAX && store_chunk_get(s, l->id, plain, sizeof plain, &got) < 0) {
                                c.bad_chunks++;
                                report(&c, "pack %s: the chunk at %llu does not open or is not its id",
                                       s->packs[l->pack].name, (unsigned long long)l->off);
                        }
                }
        }
        char **names = NULL;
        size_t nn = 0;
        store_names(s, &names, &nn);
        for (size_t k = 0; k < nn; k++) {
                int *vs;
                size_t n;
                if (store_versions(s, names[k], &vs, &n) < 0)
                        continue;
                for (size_t i = 0; i < n; i++) {
                        c.versions++;
                        check_version(s, names[k], vs[i], read_data, &c);
                }
                free(vs);
        }
        strv_free(names, nn);
        *ret = c;
        return c.bad_packs || c.bad_chunks || c.bad_versions || c.damaged_versions ? -EBADMSG : 0;
}

void store_check_free(StoreCheck *c)
{
        free(c->report);
        c->report = NULL;
}
