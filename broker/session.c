/* Session records (session.h): creation, lookups, persistence, the per-attempt timeline and
 * the JSON the control API shows. Decides nothing: logon.c and logoff.c run the step lists. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/desktop.h"
#include "broker/session.h"
#include "common/log.h"
#include "common/util.h"

static const char *const state_names[] = { "starting", "active", "disconnected", "ending" };

const char *session_state_name(SessionState s) { return state_names[s]; }

void session_audit(Broker *b, const char *kind, const char *user, const char *fmt, ...)
{
        char detail[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        db_audit(b->db, kind, user, detail);
}

uint32_t session_user_uid(const char *user, gid_t *groups, int *ngroups)
{
        struct passwd *pw = getpwnam(user);
        if (pw) {
                if (getgrouplist(user, pw->pw_gid, groups, ngroups) < 0)
                        *ngroups = 0;
                return pw->pw_uid;
        }
        /* A directory user unknown to this host (or a test user): a stable uid from the name. */
        *ngroups = 0;
        uint32_t h = 2166136261u;
        for (const char *p = user; *p; p++)
                h = (h ^ (uint8_t)*p) * 16777619u;
        return 100000 + h % 900000;
}

Session *session_new(Broker *b, const char *user, uint32_t uid, const char *pool, const char *client, uint16_t w,
                     uint16_t h)
{
        Session *s = xmalloc0(sizeof *s);
        s->b = b;
        uint8_t rnd[5];
        char hex[11];
        random_bytes(rnd, sizeof rnd);
        hex_encode(rnd, sizeof rnd, hex);
        snprintf(s->id, sizeof s->id, "s-%s", hex);
        s->user = xstrdup(user);
        s->uid = uid;
        s->pool = xstrdup(pool);
        s->client = xstrdup(client ? client : "");
        s->since = (int64_t)now_realtime_s();
        s->width = w;
        s->height = h;
        s->state = SESSION_STARTING;
        uv_timer_init(b->loop, &s->timer);
        s->timer.data = s;
        steps_init(&s->logoff, b->loop);
        s->handles = 2;
        s->next = b->sessions;
        b->sessions = s;
        return s;
}

Session *session_from_row(Broker *b, const DbSession *row)
{
        Session *s = session_new(b, row->user, row->uid, row->pool, row->client, (uint16_t)row->width,
                                 (uint16_t)row->height);
        snprintf(s->id, sizeof s->id, "%s", row->id);
        s->since = row->since;
        return s;
}

Session *session_find(Broker *b, const char *id)
{
        for (Session *s = b->sessions; s; s = s->next)
                if (strcmp(s->id, id) == 0)
                        return s;
        return NULL;
}

Session *session_find_user(Broker *b, const char *user)
{
        for (Session *s = b->sessions; s; s = s->next)
                if (strcmp(s->user, user) == 0 && s->state != SESSION_ENDING)
                        return s;
        return NULL;
}

void session_persist(Session *s)
{
        DbSession row = { .id = s->id, .user = s->user, .uid = s->uid, .pool = s->pool,
                          .desktop = s->desktop ? s->desktop->id : "", .client = s->client,
                          .since = s->since, .width = s->width, .height = s->height,
                          .state = (char *)state_names[s->state], .end_reason = s->end_reason };
        db_session_put(s->b->db, &row);
}

static void session_closed(uv_handle_t *h)
{
        Session *s = h->data;
        if (--s->handles > 0)
                return;
        free(s->user);
        free(s->pool);
        free(s->client);
        free(s->end_reason);
        free(s);
}

static void session_unlink_free(Session *s)
{
        for (Session **p = &s->b->sessions; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, session_closed);
        s->logoff.timer.data = s;
        steps_close(&s->logoff, session_closed);
}

void session_forget(Session *s)
{
        db_session_delete(s->b->db, s->id);
        session_unlink_free(s);
}

void session_release(Session *s)
{
        if (s->desktop)
                desktop_unclaim(s->desktop);
        session_unlink_free(s);
}

void session_timeline_add(Session *s, unsigned attempt, const char *kind, const SessionStep *steps, size_t n)
{
        DbSessionStep rows[STEPS_MAX];
        n = MIN(n, (size_t)STEPS_MAX);
        for (size_t i = 0; i < n; i++)
                rows[i] = (DbSessionStep){ .attempt = attempt, .kind = (char *)kind, .step = (char *)steps[i].name,
                                           .ms = steps[i].ms, .result = (char *)steps[i].result };
        db_session_steps_put(s->b->db, s->id, attempt, kind, rows, n);
}

void session_timeline_format(const SessionStep *steps, size_t n, char *buf, size_t size)
{
        size_t off = 0;
        buf[0] = 0;
        for (size_t i = 0; i < n && off < size; i++) {
                int k;
                if (strcmp(steps[i].result, "ok") == 0)
                        k = snprintf(buf + off, size - off, "%s%s %u", i ? ", " : "", steps[i].name, steps[i].ms);
                else
                        k = snprintf(buf + off, size - off, "%s%s %s", i ? ", " : "", steps[i].name, steps[i].result);
                if (k < 0)
                        break;
                off += (size_t)k;
        }
}

json_object *session_json(const Session *s)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s->id));
        json_object_object_add(o, "user", json_object_new_string(s->user));
        json_object_object_add(o, "pool", json_object_new_string(s->pool));
        json_object_object_add(o, "desktop", s->desktop ? json_object_new_string(s->desktop->id) : NULL);
        json_object_object_add(o, "state", json_object_new_string(state_names[s->state]));
        json_object_object_add(o, "client", json_object_new_string(s->client));
        json_object_object_add(o, "since", json_object_new_int64(s->since));
        json_object_object_add(o, "usable", json_object_new_boolean(s->usable));
        if (s->n_last && s->logon_ms) {
                json_object_object_add(o, "logon_ms", json_object_new_int64(s->logon_ms));
                json_object_object_add(o, "logon_first_frame_ms", json_object_new_int64(s->first_frame_ms));
                json_object *ph = json_object_new_object();
                for (size_t i = 0; i < s->n_last; i++) {
                        char key[64];
                        snprintf(key, sizeof key, "%s_ms", s->last[i].name);
                        for (char *p = key; *p; p++)
                                if (*p == '-')
                                        *p = '_';
                        if (strcmp(s->last[i].result, "ok") == 0)
                                json_object_object_add(ph, key, json_object_new_int64(s->last[i].ms));
                }
                json_object_object_add(o, "phases", ph);
        }
        return o;
}

json_object *session_json_full(const Session *s)
{
        json_object *o = session_json(s);
        DbSessionStep *st;
        size_t n;
        json_object *timeline = json_object_new_array();
        if (db_session_steps_list(s->b->db, s->id, &st, &n) == 0) {
                json_object *cur = NULL, *steps = NULL;
                unsigned attempt = 0;
                const char *kind = "";
                for (size_t i = 0; i < n; i++) {
                        if (!cur || st[i].attempt != attempt || strcmp(st[i].kind, kind) != 0) {
                                attempt = st[i].attempt;
                                kind = st[i].kind;
                                cur = json_object_new_object();
                                steps = json_object_new_array();
                                json_object_object_add(cur, "attempt", json_object_new_int((int)attempt));
                                json_object_object_add(cur, "kind", json_object_new_string(kind));
                                json_object_object_add(cur, "steps", steps);
                                json_object_array_add(timeline, cur);
                        }
                        json_object *row = json_object_new_object();
                        json_object_object_add(row, "step", json_object_new_string(st[i].step));
                        json_object_object_add(row, "ms", json_object_new_int64(st[i].ms));
                        json_object_object_add(row, "result", json_object_new_string(st[i].result));
                        json_object_array_add(steps, row);
                }
                db_session_steps_free_array(st, n);
        }
        json_object_object_add(o, "timeline", timeline);
        return o;
}
