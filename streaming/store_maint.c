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
#include "streaming/sftp.h"
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

/* The names of dir's entries for which keep says yes (a set to look names up in). */
static char **dir_names(const char *dir, size_t *ret_n)
{
        DIR *d = opendir(dir);
        char **v = NULL;
        size_t n = 0;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                v = xrealloc(v, sizeof *v * (n + 1));
                v[n++] = xstrdup(de->d_name);
        }
        if (d)
                closedir(d);
        *ret_n = n;
        return v;
}

static bool has_name(char **v, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], name) == 0)
                        return true;
        return false;
}

/* Where a replica goes: a local directory, or one on another host through sftp (sftp.h). */
typedef struct Dest {
        const char *dir;        /* local: the directory */
        Sftp sftp;              /* remote when sftp.host is set */
        char *tmp;              /* remote: a local file for what is fetched */
        char *queue;            /* remote: commands waiting for dest_flush (one connection) */
        size_t queued;          /* files among them */
        char *error;
} Dest;

static bool remote(const Dest *d) { return d->sftp.host != NULL; }

/* One sftp batch from a format; its output in *out (optional). */
static int dest_batch(Dest *d, char **out, const char *batch)
{
        free(d->error);
        d->error = NULL;
        return sftp_batch(&d->sftp, batch, out, &d->error);
}

/* dest's store id: "" when it holds no store yet. */
static int dest_store_id(Dest *d, char id[33])
{
        id[0] = 0;
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;
        if (remote(d)) {
                unlink(d->tmp);
                _cleanup_free_ char *q = sftp_quote(d->sftp.path), *t = sftp_quote(d->tmp);
                _cleanup_free_ char *batch = xasprintf("-get %s/" STORE_ID_FILE " %s\n", q, t);
                if ((r = dest_batch(d, NULL, batch)) < 0)
                        return r;
                r = read_file_max(d->tmp, 64, &data, &len);
                unlink(d->tmp);
        } else {
                _cleanup_free_ char *path = xasprintf("%s/" STORE_ID_FILE, d->dir);
                r = read_file_max(path, 64, &data, &len);
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        data[strcspn(data, "\n")] = 0;
        snprintf(id, 33, "%s", data);
        return 0;
}

/* Runs what dest_put and dest_mkdir queued for a remote replica, in one connection (sftp stops
 * at the first failure: what went before stays, each file whole). Locally a no-op. */
static int dest_flush(Dest *d)
{
        if (!d->queue)
                return 0;
        int r = dest_batch(d, NULL, d->queue);
        free(d->queue);
        d->queue = NULL;
        d->queued = 0;
        return r;
}

static void dest_queue(Dest *d, const char *line)
{
        char *q = xasprintf("%s%s", d->queue ? d->queue : "", line);
        free(d->queue);
        d->queue = q;
}

/* Copies local to sub (a path under the replica's directory) as a whole: a temporary name, then
 * renamed (locally also fsync'd, the directory too; remotely put -f asks the server to fsync,
 * queued until dest_flush). */
static int dest_put(Dest *d, const char *local, const char *sub, size_t max)
{
        if (!remote(d)) {
                _cleanup_free_ char *to = xasprintf("%s/%s", d->dir, sub), *dir = xstrdup(to);
                *strrchr(dir, '/') = 0;
                int r = copy_file(local, to, max);
                if (r == 0)
                        r = store_fsync_dir(dir);
                if (r < 0)
                        d->error = xasprintf("%s: %s", to, strerror(-r));
                return r;
        }
        _cleanup_free_ char *l = sftp_quote(local), *full = xasprintf("%s/%s", d->sftp.path, sub),
                            *tmpname = xasprintf("%s.tmp", full);
        _cleanup_free_ char *q = sftp_quote(full), *qt = sftp_quote(tmpname);
        _cleanup_free_ char *line = xasprintf("put -f %s %s\n-rm %s\nrename %s %s\n", l, qt, q, qt, q);
        dest_queue(d, line);
        d->queued++;
        return 0;
}

static int dest_mkdir(Dest *d, const char *sub)
{
        if (!remote(d)) {
                _cleanup_free_ char *path = sub ? xasprintf("%s/%s", d->dir, sub) : xstrdup(d->dir);
                int r = mkdir_p(path, 0700);
                if (r < 0)
                        d->error = xasprintf("%s: %s", path, strerror(-r));
                return r;
        }
        _cleanup_free_ char *path = sub ? xasprintf("%s/%s", d->sftp.path, sub) : xstrdup(d->sftp.path);
        _cleanup_free_ char *q = sftp_quote(path), *line = xasprintf("-mkdir %s\n", q);
        dest_queue(d, line);
        return 0;
}

/* The names in each of the replica's directories subs[i] (a missing one: none), in one
 * connection when remote. -EIO when the listing itself failed. */
static int dest_list(Dest *d, char **subs, size_t n, char ***ret, size_t *ret_n)
{
        if (!remote(d)) {
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *path = xasprintf("%s/%s", d->dir, subs[i]);
                        ret[i] = dir_names(path, &ret_n[i]);
                }
                return 0;
        }
        char *batch = xstrdup("");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = xasprintf("%s/%s", d->sftp.path, subs[i]), *q = sftp_quote(path);
                char *b = xasprintf("%s-ls -1 %s\n", batch, q);
                free(batch);
                batch = b;
        }
        _cleanup_free_ char *out = NULL;
        int r = dest_batch(d, &out, batch);
        free(batch);
        for (size_t i = 0; i < n; i++)
                ret[i] = r < 0 ? NULL : sftp_names(out, (unsigned)i, &ret_n[i]);
        return r;
}

int store_replicate(Store *s, const uint8_t host_key[STORE_HOST_KEY_LEN], const char *dest_dir,
                    StoreReplicaStats *st, char **ret_error)
{
        (void)host_key;
        *ret_error = NULL;
        *st = (StoreReplicaStats){ 0 };
        Dest d = { .dir = dest_dir };
        int r = sftp_parse(dest_dir, s->sftp ? s->sftp : "sftp", s->ssh_config, &d.sftp);
        if (r < 0) {
                *ret_error = xasprintf("%s: a directory (/path) or a directory on another host (host:/path)", dest_dir);
                return r;
        }
        if (remote(&d))
                d.tmp = xasprintf("%s/.replica-fetch.%d", s->dir, (int)getpid());
        char did[33];
        r = dest_store_id(&d, did);
        if (r == 0 && !did[0]) {
                /* A new replica: the wrapped key (useless without the host key), then the store id,
                 * which marks it made. */
                _cleanup_free_ char *key = xasprintf("%s/" KEY_FILE, s->dir), *sid = xasprintf("%s/" STORE_ID_FILE, s->dir);
                if ((r = dest_mkdir(&d, NULL)) == 0 && (r = dest_mkdir(&d, "packs")) == 0 &&
                    (r = dest_mkdir(&d, "versions")) == 0 && (r = dest_put(&d, key, KEY_FILE, PROFILE_WRAPPED_MAX)) == 0 &&
                    (r = dest_put(&d, sid, STORE_ID_FILE, 64)) == 0)
                        r = dest_flush(&d);
                snprintf(did, sizeof did, "%s", s->store_id);
        }
        if (r < 0) {
                *ret_error = d.error ? d.error : xasprintf("%s: %s", dest_dir, strerror(-r));
                d.error = NULL;
                goto out;
        }
        /* Maps name blocks by pack number: only a copy of this very store can take its packs. */
        if (strcmp(did, s->store_id) != 0) {
                *ret_error = xasprintf("%s holds another store: not a replica of this one", dest_dir);
                r = -EEXIST;
                goto out;
        }
        size_t nd = 0;
        char **have = NULL, *packs_sub = (char *)"packs";
        if ((r = dest_list(&d, &packs_sub, 1, &have, &nd)) < 0) {
                *ret_error = d.error ? d.error : xstrdup("listing the replica's packs failed");
                d.error = NULL;
                goto out;
        }
        uint64_t total = 0, done = 0;
        for (uint32_t p = 1; p < s->n_packs; p++)
                if (s->packs[p].name && !has_name(have, nd, s->packs[p].name))
                        total += s->packs[p].size;
        store_progress(s, "replicate", 0, total);
        /* Packs first, whole (their numbers are the maps' references), each committed before the
         * next: an interrupted run leaves only whole packs behind. Remotely 8 (256 MiB) go in one
         * connection: a connection costs a log-on. */
        uint64_t queued_bytes = 0;
        for (uint32_t p = 1; p < s->n_packs && r == 0; p++) {
                Pack *k = &s->packs[p];
                if (!k->name)
                        continue;
                if (has_name(have, nd, k->name)) {
                        st->chunks_present += k->live;
                        continue;
                }
                _cleanup_free_ char *from = store_pack_path(s, p), *sub = xasprintf("packs/%s", k->name);
                if ((r = dest_put(&d, from, sub, PACK_MAX)) < 0)
                        break;
                st->chunks_sent += k->live;
                st->bytes_sent += k->size;
                queued_bytes += k->size;
                if (remote(&d) && d.queued < 8)
                        continue;
                if ((r = dest_flush(&d)) < 0)
                        break;
                done += queued_bytes;
                queued_bytes = 0;
                store_progress(s, "replicate", done, total);
                if (s->crash)
                        s->crash(s->crash_ud, "pack-committed");
        }
        if (r == 0 && (r = dest_flush(&d)) == 0 && queued_bytes)
                store_progress(s, "replicate", done + queued_bytes, total);
        strv_free(have, nd);
        /* Then the versions, each only once its packs are there: what the replica has listed
         * in one connection, what it lacks sent in another. */
        char **names = NULL;
        size_t nn = 0;
        if (r == 0)
                store_names(s, &names, &nn);
        char **subs = xmalloc0(sizeof *subs * (nn + 1)), ***hv = xmalloc0(sizeof *hv * (nn + 1));
        size_t *nh = xmalloc0(sizeof *nh * (nn + 1));
        for (size_t k = 0; k < nn; k++)
                subs[k] = xasprintf("versions/%s", names[k]);
        if (r == 0 && nn)
                r = dest_list(&d, subs, nn, hv, nh);
        for (size_t k = 0; k < nn && r == 0; k++) {
                int *vs;
                size_t n;
                if (store_versions(s, names[k], &vs, &n) < 0)
                        continue;
                if (!hv[k] || nh[k] == 0)
                        r = dest_mkdir(&d, subs[k]);
                for (size_t i = 0; i < n && r == 0; i++) {
                        char file[32];
                        snprintf(file, sizeof file, "%08d.ver", vs[i]);
                        if (has_name(hv[k], nh[k], file))
                                continue;
                        _cleanup_free_ char *from = store_version_path(s, names[k], vs[i]),
                                            *to = xasprintf("%s/%s", subs[k], file);
                        if ((r = dest_put(&d, from, to, 64 + (size_t)VERSION_MAPS_MAX * ID_LEN)) == 0)
                                st->versions_sent++;
                }
                free(vs);
        }
        if (r == 0)
                r = dest_flush(&d);
        for (size_t k = 0; k < nn; k++) {
                free(subs[k]);
                strv_free(hv[k], nh[k]);
        }
        free(subs);
        free(hv);
        free(nh);
        strv_free(names, nn);
        if (r < 0 && !*ret_error) {
                *ret_error = d.error ? d.error : xasprintf("%s: %s", dest_dir, strerror(-r));
                d.error = NULL;
        }
out:
        free(d.error);
        free(d.queue);
        if (d.tmp) {
                unlink(d.tmp);
                free(d.tmp);
        }
        sftp_free(&d.sftp);
        return r;
}

void store_set_sftp(Store *s, const char *program, const char *ssh_config)
{
        free(s->sftp);
        free(s->ssh_config);
        s->sftp = program ? xstrdup(program) : NULL;
        s->ssh_config = ssh_config ? xstrdup(ssh_config) : NULL;
}

/* ---- prune ---- */

void store_set_time(Store *s, uint64_t t) { s->fixed_time = t; }
void store_set_crash_hook(Store *s, void (*crash)(void *userdata, const char *point), void *userdata)
{
        s->crash = crash;
        s->crash_ud = userdata;
}

/* Live marks: one flag per entry of each pack. */
typedef struct Marks {
        uint8_t **live;         /* by pack number */
        size_t n;
} Marks;

static Marks marks_new(Store *s)
{
        Marks m = { .live = xmalloc0(sizeof *m.live * (s->n_packs + 1)), .n = s->n_packs };
        for (size_t p = 1; p < s->n_packs; p++)
                if (s->packs[p].name)
                        m.live[p] = xmalloc0(s->packs[p].n + 1);
        return m;
}

static void marks_free(Marks *m)
{
        for (size_t p = 0; p < m->n; p++)
                free(m->live[p]);
        free(m->live);
}

/* Every chunk a version names (its maps and the blocks they name), marked when marks is given;
 * bad counts what is missing or (read_data) does not open. -EBADMSG when the version file
 * itself cannot be read. */
static int walk_version(Store *s, const char *name, int v, Marks *marks, bool read_data, uint64_t *bad)
{
        _cleanup_free_ uint8_t *buf = NULL;
        VersionHeader h;
        int r = store_version_load(s, name, v, &buf, &h);
        if (r < 0)
                return r;
        uint64_t n_blocks = h.disk_size / STORE_BLOCK;
        uint8_t block[STORE_BLOCK];
        for (uint32_t m = 0; m < h.n_maps; m++) {
                const uint8_t *map_id = h.maps + (size_t)m * ID_LEN;
                if (memcmp(map_id, store_zero_id, ID_LEN) == 0)
                        continue;
                uint32_t cnt = (uint32_t)MIN((uint64_t)h.map_blocks, n_blocks - (uint64_t)m * h.map_blocks);
                Loc *l = store_index_find(s, map_id);
                MapRun *runs;
                size_t nr;
                if (!l || store_map_get(s, map_id, cnt, &runs, &nr) < 0) {
                        (*bad)++;
                        continue;
                }
                if (marks)
                        marks->live[l->pack][l->entry] = 1;
                for (size_t i = 0; i < nr; i++) {
                        if (runs[i].pack == 0)
                                continue;
                        for (uint32_t j = 0; j < runs[i].blocks; j++) {
                                uint32_t e = runs[i].entry + j;
                                size_t got;
                                if (!store_entry(s, runs[i].pack, e) ||
                                    (read_data &&
                                     (store_chunk_read(s, runs[i].pack, e, block, sizeof block, &got) < 0 ||
                                      got != STORE_BLOCK))) {
                                        (*bad)++;
                                        continue;
                                }
                                if (marks)
                                        marks->live[runs[i].pack][e] = 1;
                        }
                }
                free(runs);
        }
        return 0;
}

/* Pack no without its dead entries: the live records copied as they are (sealed), every entry
 * kept in its place (the dead ones zeroed), a new MAC; written to a temporary name, fsync'd and
 * renamed over the old one, so a crash leaves either. A pack with nothing live goes, but the
 * newest pack stays as an empty one: its number must never be used again. */
static int pack_rewrite(Store *s, uint32_t no, const uint8_t *live, char **ret_error)
{
        Pack *p = &s->packs[no];
        _cleanup_free_ char *path = store_pack_path(s, no);
        uint32_t keep = 0;
        for (uint32_t i = 0; i < p->n; i++)
                keep += p->e[i].len && live[i];
        if (keep == 0 && no + 1 < s->n_packs) {
                if (unlink(path) < 0 && errno != ENOENT) {
                        *ret_error = xasprintf("%s: %s", path, strerror(errno));
                        return -errno;
                }
                return 0;
        }
        int fd = store_pack_fd(s, no);
        if (fd < 0) {
                *ret_error = xasprintf("%s: %s", path, strerror(-fd));
                return fd;
        }
        Writer w;
        writer_init(&w, PACK_MAX);
        writer_bytes(&w, PACK_MAGIC, PACK_MAGIC_LEN);
        PackEntry *e = xmalloc0(sizeof *e * (p->n ? p->n : 1));
        uint8_t rec[PACK_RECORD_HEADER + PACK_SEALED_MAX];
        int r = 0;
        for (uint32_t i = 0; i < p->n && r == 0; i++) {
                if (!p->e[i].len || !live[i])
                        continue;
                size_t n = PACK_RECORD_HEADER + p->e[i].len;
                if (pread(fd, rec, n, (off_t)p->e[i].offset) != (ssize_t)n || pack_record_check(rec, n, &p->e[i]) < 0) {
                        *ret_error = xasprintf("%s: a live record (entry %u) cannot be read", path, i);
                        r = -EBADMSG;
                        break;
                }
                e[i] = p->e[i];
                e[i].offset = w.len;
                writer_bytes(&w, rec, n);
        }
        uint64_t index_off = w.len;
        uint8_t mac[PACK_MAC_LEN];
        if (r == 0) {
                pack_index_write(&w, e, p->n, index_off);
                if (w.error || store_pack_mac(s, no, w.data + index_off, w.len - index_off, mac) < 0) {
                        *ret_error = xasprintf("%s: rewriting failed", path);
                        r = -EIO;
                }
        }
        if (r == 0) {
                pack_tail_finish(&w, mac);
                if ((r = write_file_atomic(path, w.data, w.len, 0600)) < 0)
                        *ret_error = xasprintf("%s: %s", path, strerror(-r));
        }
        writer_free(&w);
        free(e);
        return r;
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
        Marks marks = marks_new(s);
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
                                uint64_t bad = 0;
                                if (walk_version(s, name, vs[i], &marks, false, &bad) < 0 || bad) {
                                        *ret_error = xasprintf("%s v%d names a chunk that cannot be read: nothing "
                                                               "collected (run store check)", name, vs[i]);
                                        r = -EBADMSG;
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
        if (r == 0 && s->bad_packs) {
                *ret_error = xstrdup("a pack's index cannot be read: nothing collected (run store check)");
                r = -EBADMSG;
        }
        /* 2. Each pack holding dead chunks is rewritten without them, in place (maps name blocks by
         * pack and entry), one at a time: a crash leaves each pack old or new, both sound. */
        for (uint32_t p = 1; p < s->n_packs && r == 0; p++) {
                Pack *k = &s->packs[p];
                if (!k->name)
                        continue;
                uint32_t dead = 0;
                for (uint32_t i = 0; i < k->n; i++)
                        dead += k->e[i].len && !marks.live[p][i];
                if (dead == 0)
                        continue;
                if ((r = pack_rewrite(s, p, marks.live[p], ret_error)) < 0)
                        break;
                st->chunks_removed += dead;
                st->packs_rewritten++;
                if (s->crash)
                        s->crash(s->crash_ud, "prune-pack-rewritten");
        }
        marks_free(&marks);
        if (r == 0) {
                _cleanup_free_ char *pdir = xasprintf("%s/packs", s->dir);
                store_fsync_dir(pdir);
        }
        /* The index again from the packs on disk: gone chunks gone. */
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

int store_check(Store *s, bool read_data, StoreCheck *ret)
{
        store_reload(s);        /* the packs as they are on disk now, not as when the store was opened */
        StoreCheck c = { .packs = s->n_packs, .chunks = s->n_locs, .bad_packs = s->bad_packs };
        if (s->bad_packs)
                report(&c, "%llu pack file%s with an unreadable index", (unsigned long long)s->bad_packs,
                       s->bad_packs == 1 ? "" : "s");
        if (read_data) {
                uint8_t plain[PLAIN_MAX];
                for (uint32_t p = 1; p < s->n_packs; p++)
                        for (uint32_t i = 0; s->packs[p].name && i < s->packs[p].n; i++) {
                                size_t got;
                                if (s->packs[p].e[i].len && store_chunk_read(s, p, i, plain, sizeof plain, &got) < 0) {
                                        c.bad_chunks++;
                                        report(&c, "pack %s: chunk %u does not open or is not its id",
                                               s->packs[p].name, i);
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
                        uint64_t bad = 0;
                        if (walk_version(s, names[k], vs[i], NULL, read_data, &bad) < 0) {
                                c.bad_versions++;
                                report(&c, "%s v%d: the version file does not parse or its MAC fails", names[k], vs[i]);
                        } else if (bad) {
                                c.damaged_versions++;
                                report(&c, "%s v%d: %llu chunk%s missing or damaged", names[k], vs[i],
                                       (unsigned long long)bad, bad == 1 ? "" : "s");
                        }
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
