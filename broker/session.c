/* Sessions: a user bound to a desktop. Logon (PAM in the thread pool, rate limits, entitlement,
 * a ready desktop or a fresh boot, agent session-start, console handed to slate-session),
 * disconnect and reconnect to the same desktop, and the end of a session, which always destroys
 * its desktop. Every logon, failure, disconnect and logout is audited with its timings. */
#include <errno.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/control.h"
#include "common/ipc.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/username.h"
#include "common/util.h"

#define AGENT_START_TIMEOUT_MS 30000
#define AGENT_STOP_TIMEOUT_MS 5000
/* Failed logons are answered no sooner than this after the request, so unknown users, locked
 * accounts and wrong passwords all look alike from outside. */
#define AUTH_FAIL_PAD_MS 700

typedef enum SessionState { SESSION_STARTING, SESSION_ACTIVE, SESSION_DISCONNECTED, SESSION_ENDING } SessionState;

static const char *const state_names[] = { "starting", "active", "disconnected", "ending" };

struct Session {
        Session *next;
        Broker *b;
        char id[24];
        char *user;
        uint32_t uid;
        char *pool;
        Desktop *desktop;
        SessionState state;
        char *client;
        int64_t since;
        Conn *conn;
        uv_timer_t timer;
        uint16_t width, height;
        bool agent_started, logged_on, closing;
        char *end_reason;
        uint64_t t_auth_start, t_authed, t_desktop, t_agent;
        uint32_t auth_ms, desktop_ms, agent_ms, first_frame_ms;
        uint64_t last_activity_ms;
};

const char *session_id(const Session *s) { return s->id; }

static void session_persist(Session *s)
{
        DbSession row = { .id = s->id, .user = s->user, .uid = s->uid, .pool = s->pool,
                          .desktop = s->desktop ? s->desktop->id : "", .client = s->client ? s->client : "",
                          .since = s->since, .width = s->width, .height = s->height };
        db_session_put(s->b->db, &row);
}

static void audit(Broker *b, const char *kind, const char *user, const char *fmt, ...) _printf_(4, 5);
static void audit(Broker *b, const char *kind, const char *user, const char *fmt, ...)
{
        char detail[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        db_audit(b->db, kind, user, detail);
}

static Session *session_find_user(Broker *b, const char *user)
{
        for (Session *s = b->sessions; s; s = s->next)
                if (strcmp(s->user, user) == 0 && s->state != SESSION_ENDING)
                        return s;
        return NULL;
}

static Session *session_find(Broker *b, const char *id)
{
        for (Session *s = b->sessions; s; s = s->next)
                if (strcmp(s->id, id) == 0)
                        return s;
        return NULL;
}

static void session_freed(uv_handle_t *h)
{
        Session *s = h->data;
        free(s->user);
        free(s->pool);
        free(s->client);
        free(s->end_reason);
        free(s);
}

/* The end: the desktop is destroyed (never reused), the record removed. */
static void session_finish(Session *s)
{
        Broker *b = s->b;
        uv_timer_stop(&s->timer);
        if (s->desktop) {
                Desktop *d = TAKE_PTR(s->desktop);
                d->session = NULL;
                char why[300];
                snprintf(why, sizeof why, "session %s ended: %s", s->id, s->end_reason);
                desktop_destroy(d, why);
        }
        audit(b, "logout", s->user, "session %s: %s", s->id, s->end_reason);
        log_info("session %s (%s): ended: %s", s->id, s->user, s->end_reason);
        db_session_delete(b->db, s->id);
        for (Session **p = &b->sessions; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        uv_close((uv_handle_t *)&s->timer, session_freed);
}

static void stop_timeout_cb(uv_timer_t *t)
{
        Session *s = t->data;
        log_warn("session %s: the agent did not confirm session-stop in %d ms; destroying anyway", s->id,
                 AGENT_STOP_TIMEOUT_MS);
        session_finish(s);
}

void session_end(Session *s, const char *reason)
{
        if (s->state == SESSION_ENDING)
                return;
        s->state = SESSION_ENDING;
        s->end_reason = xstrdup(reason);
        uv_timer_stop(&s->timer);
        if (s->conn) {
                Conn *c = TAKE_PTR(s->conn);
                conn_end(c, reason);
        }
        /* Let the guest flush and end the session (profiles will sync here), then erase. */
        if (s->desktop && s->agent_started && desktop_agent_ready(s->desktop) &&
            desktop_session_stop(s->desktop, reason) == 0) {
                uv_timer_start(&s->timer, stop_timeout_cb, AGENT_STOP_TIMEOUT_MS, 0);
                return;
        }
        session_finish(s);
}

static void disconnect_timeout_cb(uv_timer_t *t)
{
        Session *s = t->data;
        session_end(s, "disconnect timeout");
}

static void start_disconnect_timer(Session *s)
{
        Pool *p = pool_find(s->b, s->pool);
        unsigned secs = p ? p->disconnect_timeout : 0;
        s->state = SESSION_DISCONNECTED;
        if (secs == 0) {
                session_end(s, "disconnected (pool keeps no disconnected sessions)");
                return;
        }
        uv_timer_start(&s->timer, disconnect_timeout_cb, (uint64_t)secs * 1000, 0);
}

/* Hand the desktop's console to the client's slate-session. */
static void session_attach(Session *s, bool reconnect)
{
        Conn *c = s->conn;
        if (!c || !s->desktop)
                return;
        _cleanup_free_ char *path = xasprintf("%s/%s", s->desktop->run_dir, HV_VNC_SOCKET);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                log_error("session %s: console %s: %m", s->id, path);
                if (fd >= 0)
                        close(fd);
                session_end(s, "desktop console unavailable");
                return;
        }
        IpcMsg m = { .type = IPC_ATTACH };
        snprintf(m.attach.desktop_id, sizeof m.attach.desktop_id, "%s", s->desktop->id);
        snprintf(m.attach.session_id, sizeof m.attach.session_id, "%s", s->id);
        m.attach.reconnect = reconnect;
        int r = conn_send(c, &m, fd);
        close(fd);
        if (r < 0)
                return;         /* conn_send closed the connection: the session is now disconnected */
        conn_set_state_attached(c);
        s->state = SESSION_ACTIVE;
        s->last_activity_ms = now_ms();
        uv_timer_stop(&s->timer);
        log_info("session %s (%s): desktop %s attached for %s%s", s->id, s->user, s->desktop->id, conn_addr(c),
                 reconnect ? " (reconnect)" : "");
}

static void agent_start_timeout_cb(uv_timer_t *t)
{
        Session *s = t->data;
        log_error("session %s: the agent did not start the session in %d ms", s->id, AGENT_START_TIMEOUT_MS);
        session_end(s, "the desktop did not start the session");
}

void session_on_desktop_ready(Session *s)
{
        s->t_desktop = now_ms();
        s->desktop_ms = (uint32_t)(s->t_desktop - s->t_authed);
        int r = desktop_session_start(s->desktop, s->user, s->uid, s->width, s->height);
        if (r < 0) {
                session_end(s, "cannot reach the desktop's agent");
                return;
        }
        uv_timer_start(&s->timer, agent_start_timeout_cb, AGENT_START_TIMEOUT_MS, 0);
}

void session_on_agent_state(Session *s, uint8_t state, const char *detail)
{
        switch (state) {
        case AGENT_SESSION_STARTED:
                if (s->agent_started || s->state == SESSION_ENDING)
                        return;
                s->agent_started = true;
                s->t_agent = now_ms();
                s->agent_ms = (uint32_t)(s->t_agent - s->t_desktop);
                uv_timer_stop(&s->timer);
                session_persist(s);
                if (s->conn)
                        session_attach(s, false);
                else
                        start_disconnect_timer(s);
                return;
        case AGENT_SESSION_STOPPED:
                if (s->state == SESSION_ENDING)
                        session_finish(s);
                return;
        case AGENT_SESSION_LOGOUT:
                log_info("session %s (%s): the user logged out", s->id, s->user);
                session_end(s, "user logged out");
                return;
        case AGENT_SESSION_FAILED:
                log_error("session %s: the desktop could not start the session: %s", s->id, detail);
                session_end(s, "session start failed in the desktop");
                return;
        }
}

void session_on_desktop_gone(Session *s)
{
        s->desktop = NULL;
        if (s->state == SESSION_ENDING) {
                session_finish(s);
                return;
        }
        log_warn("session %s (%s): its desktop died", s->id, s->user);
        session_end(s, "desktop died");
}

void session_conn_first_frame(Conn *c, Session *s, uint32_t ms)
{
        if (s->logged_on)
                return;
        s->logged_on = true;
        s->first_frame_ms = ms;
        log_info("session %s (%s): logon done in %u ms (auth %u, desktop %u, agent %u) on desktop %s", s->id, s->user,
                 ms, s->auth_ms, s->desktop_ms, s->agent_ms, s->desktop ? s->desktop->id : "?");
        audit(s->b, "logon", s->user, "session %s desktop %s pool %s from %s in %u ms (auth %u, desktop %u, agent %u)",
              s->id, s->desktop ? s->desktop->id : "?", s->pool, conn_addr(c), ms, s->auth_ms, s->desktop_ms,
              s->agent_ms);
}

void session_conn_activity(Conn *c, Session *s) { s->last_activity_ms = now_ms(); }

void session_idle_sweep(Broker *b)
{
        uint64_t now = now_ms();
        for (Session *s = b->sessions, *next; s; s = next) {
                next = s->next;
                Pool *p = pool_find(b, s->pool);
                if (!p || !p->idle_timeout || !s->last_activity_ms || s->state == SESSION_ENDING ||
                    s->state == SESSION_STARTING)
                        continue;
                if (now - s->last_activity_ms > (uint64_t)p->idle_timeout * 1000) {
                        log_info("session %s (%s): idle for %u s; ending it", s->id, s->user, p->idle_timeout);
                        session_end(s, "idle timeout");
                }
        }
}

void session_conn_logout(Conn *c, Session *s)
{
        session_end(s, "client logged off");
}

void session_conn_closed(Conn *c, Session *s)
{
        if (s->conn != c)
                return;
        s->conn = NULL;
        if (s->state == SESSION_ENDING)
                return;
        audit(s->b, "disconnect", s->user, "session %s from %s", s->id, conn_addr(c));
        log_info("session %s (%s): client disconnected", s->id, s->user);
        if (s->state == SESSION_STARTING)
                return;         /* keeps starting; becomes disconnected when the desktop is up */
        start_disconnect_timer(s);
}

/* ---- logon ---- */

typedef struct AuthJob {
        uv_work_t work;
        uv_timer_t pad;
        Broker *b;
        Conn *conn;
        char user[IPC_NAME_MAX + 1];
        char *password;           /* mlock'd, wiped after PAM */
        char client_host[IPC_NAME_MAX + 1];
        char addr[64];
        uint16_t width, height;
        char *mapped_user, *error;
        uint64_t start_ms;
        IpcAuthStatus status;
        char message[IPC_TEXT_MAX + 1];
        int r;
} AuthJob;

static void job_freed(uv_handle_t *h)
{
        AuthJob *j = h->data;
        conn_unref(j->conn);
        free(j->mapped_user);
        free(j->error);
        free(j);
}

static void job_reply(AuthJob *j)
{
        if (conn_alive(j->conn)) {
                IpcMsg m = { .type = IPC_AUTH_RESULT };
                m.auth_result.status = (uint8_t)j->status;
                snprintf(m.auth_result.message, sizeof m.auth_result.message, "%s", j->message);
                conn_send(j->conn, &m, -1);
        }
        uv_close((uv_handle_t *)&j->pad, job_freed);
}

static void pad_cb(uv_timer_t *t) { job_reply(t->data); }

static void job_refuse(AuthJob *j, IpcAuthStatus st, const char *fmt, ...) _printf_(3, 4);
static void job_refuse(AuthJob *j, IpcAuthStatus st, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->message, sizeof j->message, fmt, ap);
        va_end(ap);
        j->status = st;
        uint64_t elapsed = now_ms() - j->start_ms;
        uv_timer_start(&j->pad, pad_cb, elapsed < AUTH_FAIL_PAD_MS ? AUTH_FAIL_PAD_MS - elapsed : 0, 0);
}

static uint32_t user_uid(const char *user, gid_t *groups, int *ngroups)
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

static Pool *pick_pool(Broker *b, const char *user, gid_t *groups, int ngroups)
{
        Pool *best = NULL;
        for (Pool *p = b->pools; p; p = p->next)
                if (!p->deleting && pool_entitles(p, user, groups, ngroups) && (!best || strcmp(p->name, best->name) < 0))
                        best = p;
        return best;
}

static void session_new_for(AuthJob *j, const char *user)
{
        Broker *b = j->b;
        gid_t groups[256];
        int ngroups = (int)ELEMENTSOF(groups);
        uint32_t uid = user_uid(user, groups, &ngroups);
        Pool *p = pick_pool(b, user, groups, ngroups);
        if (!p) {
                audit(b, "logon.refused", user, "not entitled to any pool (from %s)", conn_addr(j->conn));
                job_refuse(j, IPC_AUTH_NOT_ENTITLED, "%s is not entitled to a desktop", user);
                return;
        }
        Desktop *d = pool_desktop_take(b, p);
        bool booting = false;
        if (!d) {
                unsigned total;
                pool_counts(b, p->name, NULL, NULL, NULL, &total);
                /* A desktop already booting for the pool's warm spares can be claimed. */
                for (Desktop *x = b->desktops; x && !d; x = x->next)
                        if (strcmp(x->pool, p->name) == 0 && x->state == DESKTOP_BOOTING && !x->session && !x->stopping)
                                d = x;
                if (!d && total < p->max && desktop_create(b, p) == 0)
                        d = b->desktops;        /* desktop_create puts the new desktop first */
                if (!d) {
                        audit(b, "logon.refused", user, "pool %s has no free desktop (from %s)", p->name,
                              conn_addr(j->conn));
                        job_refuse(j, IPC_AUTH_NO_DESKTOP, "all desktops of pool %s are in use; try again later",
                                   p->name);
                        return;
                }
                booting = true;
        }
        Session *s = xmalloc0(sizeof *s);
        s->b = b;
        uint8_t rnd[5];
        char hex[11];
        random_bytes(rnd, sizeof rnd);
        hex_encode(rnd, sizeof rnd, hex);
        snprintf(s->id, sizeof s->id, "s-%s", hex);
        s->user = xstrdup(user);
        s->uid = uid;
        s->pool = xstrdup(p->name);
        s->client = xstrdup(conn_addr(j->conn));
        s->since = (int64_t)now_realtime_s();
        s->width = j->width;
        s->height = j->height;
        s->t_auth_start = j->start_ms;
        s->t_authed = now_ms();
        s->auth_ms = (uint32_t)(s->t_authed - j->start_ms);
        s->state = SESSION_STARTING;
        uv_timer_init(b->loop, &s->timer);
        s->timer.data = s;
        s->next = b->sessions;
        b->sessions = s;
        s->desktop = d;
        d->session = s;
        s->conn = j->conn;
        conn_set_state_authed(j->conn, s);
        session_persist(s);
        j->status = IPC_AUTH_OK;
        snprintf(j->message, sizeof j->message, "welcome %s", user);
        job_reply(j);
        if (booting) {
                log_info("session %s (%s): no ready desktop in pool %s; waiting for %s to boot", s->id, user, p->name,
                         d->id);
                pool_manager_kick(b);
                return;
        }
        d->state = DESKTOP_ASSIGNED;
        desktop_persist(d);
        pool_manager_kick(b);
        session_on_desktop_ready(s);
}

static void session_reconnect(AuthJob *j, Session *s)
{
        if (s->conn) {
                Conn *old = TAKE_PTR(s->conn);
                conn_end(old, "logged on from another client");
        }
        uv_timer_stop(&s->timer);
        free(s->client);
        s->client = xstrdup(conn_addr(j->conn));
        s->conn = j->conn;
        conn_set_state_authed(j->conn, s);
        s->logged_on = false;
        s->t_auth_start = j->start_ms;
        s->t_authed = now_ms();
        s->auth_ms = (uint32_t)(s->t_authed - j->start_ms);
        audit(s->b, "reconnect", s->user, "session %s desktop %s from %s", s->id, s->desktop ? s->desktop->id : "?",
              s->client);
        j->status = IPC_AUTH_OK;
        snprintf(j->message, sizeof j->message, "welcome back %s", s->user);
        job_reply(j);
        if (s->agent_started)
                session_attach(s, true);
        /* else: still starting; session_on_agent_state attaches it. */
}

static void auth_run(uv_work_t *w)
{
        AuthJob *j = w->data;
        j->r = auth_pam_check(j->b->cfg->pam_service, j->user, j->password, j->addr, &j->mapped_user, &j->error);
}

static void auth_done(uv_work_t *w, int status)
{
        AuthJob *j = w->data;
        Broker *b = j->b;
        size_t plen = strlen(j->password) + 1;
        secret_wipe(j->password, plen);
        munlock(j->password, plen);
        free(j->password);
        j->password = NULL;
        const char *addr = conn_addr(j->conn);
        if (!conn_alive(j->conn)) {
                uv_close((uv_handle_t *)&j->pad, job_freed);
                return;
        }
        if (j->r < 0 || status < 0) {
                auth_limiter_failure(b->limiter, j->user, addr, now_ms());
                audit(b, "logon.failed", j->user, "from %s: %s", addr, j->error ? j->error : "error");
                log_info("logon of %s from %s refused: %s", j->user, addr, j->error ? j->error : "error");
                if (j->r == -EIO)
                        job_refuse(j, IPC_AUTH_INTERNAL, "the logon service failed; contact your administrator");
                else
                        job_refuse(j, IPC_AUTH_BAD_CREDENTIALS, "unknown user name or bad password");
                return;
        }
        auth_limiter_success(b->limiter, j->user, addr);
        const char *user = j->mapped_user;
        Session *s = session_find_user(b, user);
        if (s)
                session_reconnect(j, s);
        else
                session_new_for(j, user);
}

void session_conn_auth(Conn *c, IpcMsg *m)
{
        Broker *b = conn_broker(c);
        AuthJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->b = b;
        j->conn = c;
        conn_ref(c);
        j->start_ms = now_ms();
        uv_timer_init(b->loop, &j->pad);
        j->pad.data = j;
        snprintf(j->user, sizeof j->user, "%s", m->auth.user);
        snprintf(j->client_host, sizeof j->client_host, "%s", m->auth.client_host);
        snprintf(j->addr, sizeof j->addr, "%s", conn_addr(c));
        j->width = (uint16_t)MIN(MAX(m->auth.width, 320), 4096);
        j->height = (uint16_t)MIN(MAX(m->auth.height, 200), 2160);
        const char *addr = conn_addr(c);
        bool locked;
        if (!user_name_valid(j->user)) {
                job_refuse(j, IPC_AUTH_BAD_CREDENTIALS, "unknown user name or bad password");
                return;
        }
        if (!m->auth.password[0]) {
                audit(b, "logon.failed", j->user, "from %s: no password given", addr);
                job_refuse(j, IPC_AUTH_BAD_CREDENTIALS, "a password is required (e.g. xfreerdp /p:PASSWORD)");
                return;
        }
        uint64_t wait = auth_limiter_check(b->limiter, j->user, addr, now_ms(), &locked);
        if (wait > 0) {
                audit(b, "logon.throttled", j->user, "from %s: %s for %llu s", addr, locked ? "locked out" : "backoff",
                      (unsigned long long)(wait + 999) / 1000);
                job_refuse(j, IPC_AUTH_LOCKED_OUT, "too many failed logons; try again in %llu s",
                           (unsigned long long)(wait + 999) / 1000);
                return;
        }
        size_t plen = strlen(m->auth.password) + 1;
        j->password = xmalloc0(plen);
        mlock(j->password, plen);
        memcpy(j->password, m->auth.password, plen);
        secret_wipe(m->auth.password, sizeof m->auth.password);
        uv_queue_work(b->loop, &j->work, auth_run, auth_done);
}

/* ---- restart and control ---- */

int session_load_all(Broker *b)
{
        DbSession *rows;
        size_t n;
        int r = db_session_list(b->db, &rows, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Desktop *d = desktop_find(b, rows[i].desktop);
                if (!d || d->stopping || d->state != DESKTOP_ASSIGNED) {
                        db_session_delete(b->db, rows[i].id);
                        audit(b, "logout", rows[i].user, "session %s: desktop gone across a slated restart", rows[i].id);
                        continue;
                }
                Session *s = xmalloc0(sizeof *s);
                s->b = b;
                snprintf(s->id, sizeof s->id, "%s", rows[i].id);
                s->user = xstrdup(rows[i].user);
                s->uid = rows[i].uid;
                s->pool = xstrdup(rows[i].pool);
                s->client = xstrdup(rows[i].client);
                s->since = rows[i].since;
                s->width = (uint16_t)rows[i].width;
                s->height = (uint16_t)rows[i].height;
                s->agent_started = true;
                s->logged_on = true;
                s->last_activity_ms = now_ms();
                s->desktop = d;
                d->session = s;
                uv_timer_init(b->loop, &s->timer);
                s->timer.data = s;
                s->next = b->sessions;
                b->sessions = s;
                log_info("session %s (%s): kept across restart on desktop %s; waiting for the client to reconnect",
                         s->id, s->user, d->id);
                start_disconnect_timer(s);
        }
        db_session_free_array(rows, n);
        /* An assigned desktop whose session is gone is not reused: erase it. */
        for (Desktop *d = b->desktops; d; d = d->next)
                if (d->state == DESKTOP_ASSIGNED && !d->session && !d->stopping)
                        desktop_destroy(d, "its session did not survive the restart");
        return 0;
}

void session_release_all(Broker *b)
{
        while (b->sessions) {
                Session *s = b->sessions;
                b->sessions = s->next;
                if (s->desktop)
                        s->desktop->session = NULL;
                uv_timer_stop(&s->timer);
                uv_close((uv_handle_t *)&s->timer, session_freed);
        }
}

static json_object *session_json(const Session *s)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s->id));
        json_object_object_add(o, "user", json_object_new_string(s->user));
        json_object_object_add(o, "pool", json_object_new_string(s->pool));
        json_object_object_add(o, "desktop", s->desktop ? json_object_new_string(s->desktop->id) : NULL);
        json_object_object_add(o, "state", json_object_new_string(state_names[s->state]));
        json_object_object_add(o, "client", json_object_new_string(s->client ? s->client : ""));
        json_object_object_add(o, "since", json_object_new_int64(s->since));
        if (s->logged_on && s->first_frame_ms) {
                json_object_object_add(o, "logon_ms", json_object_new_int64(s->first_frame_ms));
                json_object *ph = json_object_new_object();
                json_object_object_add(ph, "auth_ms", json_object_new_int64(s->auth_ms));
                json_object_object_add(ph, "desktop_ms", json_object_new_int64(s->desktop_ms));
                json_object_object_add(ph, "agent_ms", json_object_new_int64(s->agent_ms));
                json_object_object_add(ph, "first_frame_ms", json_object_new_int64(s->first_frame_ms));
                json_object_object_add(o, "phases", ph);
        }
        return o;
}

static void h_session_list(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user = jsonx_string_or(args, "user", NULL), *pool = jsonx_string_or(args, "pool", NULL);
        json_object *arr = json_object_new_array();
        for (Session *s = b->sessions; s; s = s->next)
                if ((!user || strcmp(user, s->user) == 0) && (!pool || strcmp(pool, s->pool) == 0))
                        json_object_array_add(arr, session_json(s));
        control_reply(req, arr);
}

static void h_session_end(Broker *b, ControlRequest *req, json_object *args)
{
        const char *id;
        Session *s;
        if (jsonx_get_string(args, "id", &id) < 0 || !(s = session_find(b, id))) {
                control_reply_error(req, ENOENT, "no such session");
                return;
        }
        log_info("session %s (%s): ended by an administrator", s->id, s->user);
        session_end(s, "ended by administrator");
        control_reply(req, NULL);
}

static void h_audit(Broker *b, ControlRequest *req, json_object *args)
{
        int64_t limit = jsonx_int_or(args, "limit", 50);
        if (limit < 1 || limit > 10000) {
                control_reply_error(req, EINVAL, "limit must be 1-10000");
                return;
        }
        DbAudit *a;
        size_t n;
        if (db_audit_list(b->db, jsonx_string_or(args, "kind", NULL), (unsigned)limit, &a, &n) < 0) {
                control_reply_error(req, EIO, "database error");
                return;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "seq", json_object_new_int64(a[i].seq));
                json_object_object_add(o, "ts", json_object_new_int64(a[i].ts));
                json_object_object_add(o, "kind", json_object_new_string(a[i].kind));
                json_object_object_add(o, "subject", json_object_new_string(a[i].subject));
                json_object_object_add(o, "detail", json_object_new_string(a[i].detail));
                json_object_array_add(arr, o);
        }
        db_audit_free_array(a, n);
        control_reply(req, arr);
}

void session_register(Control *c)
{
        control_register(c, "session.list", h_session_list);
        control_register(c, "session.end", h_session_end);
        control_register(c, "audit", h_audit);
}
