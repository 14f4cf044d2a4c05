/* PAM authentication, PAM sessions and the failed-logon limiter. The only file that includes
 * PAM headers. Its PAM calls block: callers run them on the logon threads, never on the loop.
 * PAM's own fail delay is replaced by a callback (libpam then never sleeps): slated applies its
 * own non-blocking delays, so one user's failures never slow another user's logon. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>
#include "broker/auth.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/netsrc.h"
#include "common/util.h"

typedef struct Conv {
        const char *password;   /* the client's password, for the first secret prompt; NULL once
                                 * given or once authentication is over */
        const AuthAsk *ask;     /* a logon screen: everything else goes to the user; NULL when
                                 * there is none or the check is over (session modules) */
        bool wanted_more;       /* a prompt nobody could answer (no logon screen) */
} Conv;

static IpcPromptStyle style_of(int pam_style)
{
        switch (pam_style) {
        case PAM_PROMPT_ECHO_OFF:
                return IPC_PROMPT_SECRET;
        case PAM_PROMPT_ECHO_ON:
                return IPC_PROMPT_TEXT;
        case PAM_ERROR_MSG:
                return IPC_PROMPT_ERROR;
        default:
                return IPC_PROMPT_INFO;
        }
}

/* The first secret prompt gets the client's password. Without a logon screen, any further
 * prompt fails the conversation and informational messages (a session module's "last login")
 * are ignored; with one, every further message goes to the user, prompts and lines alike. */
static int conv_fn(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
        Conv *c = appdata;
        if (n <= 0 || n > 32)
                return PAM_CONV_ERR;
        struct pam_response *r = calloc((size_t)n, sizeof *r);
        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                int st = msg[i]->msg_style;
                bool prompt = st == PAM_PROMPT_ECHO_OFF || st == PAM_PROMPT_ECHO_ON;
                if (st == PAM_PROMPT_ECHO_OFF && c->password) {
                        r[i].resp = strdup(c->password);
                        c->password = NULL;
                        if (!r[i].resp)
                                goto fail;
                } else if (c->ask) {
                        char *reply = NULL;
                        const char *text = msg[i]->msg ? msg[i]->msg : "";
                        if (c->ask->ask(c->ask->ud, style_of(st), text, prompt ? &reply : NULL) != 0)
                                goto fail;
                        if (prompt)
                                r[i].resp = reply ? reply : strdup("");
                        if (prompt && !r[i].resp)
                                goto fail;
                } else if (prompt) {
                        c->wanted_more = true;  /* a second factor: only a logon screen can ask */
                        goto fail;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
fail:
        for (int i = 0; i < n; i++)
                if (r[i].resp) {
                        secret_wipe(r[i].resp, strlen(r[i].resp));
                        free(r[i].resp);
                }
        free(r);
        return PAM_CONV_ERR;
}

static void no_delay(int retval, unsigned usec, void *appdata) {}

/* One PAM handle from authentication to the end of the session it opened. The conversation
 * lives here, not on a stack: session modules may talk through it long after the check. */
struct AuthHandle {
        pam_handle_t *h;        /* NULL: adopted from an earlier slated, started when closed */
        Conv conv;
        struct pam_conv pam_conv;
        bool cred, open;        /* setcred ESTABLISH and open_session succeeded */
        bool changed;           /* an expired password was changed during the check */
        char *service, *user, *rhost;   /* adopted only */
};

static int handle_start(AuthHandle *a, const char *service, const char *user, const char *rhost, char **ret_error)
{
        a->pam_conv = (struct pam_conv){ .conv = conv_fn, .appdata_ptr = &a->conv };
        int rc = pam_start(service, user, &a->pam_conv, &a->h);
        if (rc != PAM_SUCCESS) {
                *ret_error = xasprintf("pam_start(%s): %s", service, pam_strerror(a->h, rc));
                if (a->h)
                        pam_end(a->h, rc);
                a->h = NULL;
                return -EIO;
        }
        pam_set_item(a->h, PAM_FAIL_DELAY, (const void *)no_delay);
        if (rhost && *rhost)
                pam_set_item(a->h, PAM_RHOST, rhost);
        pam_set_item(a->h, PAM_TTY, "slate");
        return 0;
}

/* What an account check's refusal means. The password was right, so these are not guesses:
 * an expired password must be changed, an expired or denied account asks an administrator. */
static int acct_refusal(int rc)
{
        switch (rc) {
        case PAM_NEW_AUTHTOK_REQD:
                return -EKEYEXPIRED;
        case PAM_ACCT_EXPIRED:
                return -EKEYREVOKED;
        case PAM_PERM_DENIED:
                return -EPERM;
        default:
                return -EACCES;
        }
}

static bool pam_broken(int rc)
{
        return rc == PAM_ABORT || rc == PAM_BUF_ERR || rc == PAM_SYSTEM_ERR || rc == PAM_OPEN_ERR;
}

int auth_pam_check(const char *service, const char *user, const char *password, const char *rhost,
                   const AuthAsk *ask, AuthHandle **ret_h, char **ret_user, char **ret_error)
{
        AuthHandle *a = xmalloc0(sizeof *a);
        a->conv.password = password;
        a->conv.ask = ask;
        int r = handle_start(a, service, user, rhost, ret_error);
        if (r < 0) {
                free(a);
                return r;
        }
        bool changed = false;
        int rc = pam_authenticate(a->h, PAM_DISALLOW_NULL_AUTHTOK);
        a->conv.password = NULL;
        if (rc != PAM_SUCCESS) {
                /* Only the account check below proves the password: a module that refuses
                 * here (pam_access, pam_nologin) may do so before or without checking it. */
                r = pam_broken(rc) ? -EIO : a->conv.wanted_more ? -ENOMSG : -EACCES;
        } else {
                rc = pam_acct_mgmt(a->h, PAM_DISALLOW_NULL_AUTHTOK);
                if (rc == PAM_NEW_AUTHTOK_REQD && ask) {
                        /* Changed on the spot: the password module asks for the new one (and
                         * whatever else it wants) through the logon screen. */
                        rc = pam_chauthtok(a->h, PAM_CHANGE_EXPIRED_AUTHTOK);
                        changed = true;
                        if (rc != PAM_SUCCESS && !pam_broken(rc)) {
                                *ret_error = xasprintf("password not changed: %s", pam_strerror(a->h, rc));
                                rc = PAM_NEW_AUTHTOK_REQD;
                        }
                }
                r = rc == PAM_SUCCESS ? 0 : pam_broken(rc) ? -EIO : acct_refusal(rc);
        }
        a->conv.ask = NULL;     /* session modules talk to nobody */
        if (r < 0) {
                if (!*ret_error)
                        *ret_error = r == -ENOMSG ? xasprintf("%s (the stack asked for more than a password)",
                                                              pam_strerror(a->h, rc))
                                                  : xstrdup(pam_strerror(a->h, rc));
                pam_end(a->h, rc);
                free(a);
                return r;
        }
        a->changed = changed;
        const void *mapped = NULL;
        /* Modules may map the name: the session belongs to whoever PAM says. */
        if (pam_get_item(a->h, PAM_USER, &mapped) == PAM_SUCCESS && mapped)
                *ret_user = xstrdup(mapped);
        else
                *ret_user = xstrdup(user);
        if (ret_h)
                *ret_h = a;
        else
                auth_session_end(a);
        return 0;
}

bool auth_password_changed(const AuthHandle *a) { return a && a->changed; }

int auth_session_open(AuthHandle *a, char **ret_error)
{
        int rc = pam_setcred(a->h, PAM_ESTABLISH_CRED);
        if (rc != PAM_SUCCESS) {
                *ret_error = xasprintf("pam_setcred: %s", pam_strerror(a->h, rc));
                return -EIO;
        }
        a->cred = true;
        rc = pam_open_session(a->h, 0);
        if (rc != PAM_SUCCESS) {
                *ret_error = xasprintf("pam_open_session: %s", pam_strerror(a->h, rc));
                return -EIO;
        }
        a->open = true;
        return 0;
}

AuthHandle *auth_session_adopted(const char *service, const char *user, const char *rhost)
{
        AuthHandle *a = xmalloc0(sizeof *a);
        a->service = xstrdup(service);
        a->user = xstrdup(user);
        a->rhost = xstrdup(rhost ? rhost : "");
        a->cred = a->open = true;
        return a;
}

int auth_session_end(AuthHandle *a)
{
        if (!a)
                return 0;
        int r = 0, rc = PAM_SUCCESS;
        if (!a->h && a->user) {
                _cleanup_free_ char *err = NULL;
                r = handle_start(a, a->service, a->user, a->rhost, &err);
                if (r < 0)
                        log_error("PAM session of %s: %s; it stays open", a->user, err);
        }
        if (a->h && a->open) {
                rc = pam_close_session(a->h, 0);
                if (rc != PAM_SUCCESS) {
                        const void *u = NULL;
                        pam_get_item(a->h, PAM_USER, &u);
                        log_warn("PAM session of %s: pam_close_session: %s", u ? (const char *)u : "?",
                                 pam_strerror(a->h, rc));
                        r = -EIO;
                }
        }
        if (a->h && a->cred) {
                int rc2 = pam_setcred(a->h, PAM_DELETE_CRED);
                if (rc2 != PAM_SUCCESS) {
                        const void *u = NULL;
                        pam_get_item(a->h, PAM_USER, &u);
                        log_warn("PAM session of %s: pam_setcred(PAM_DELETE_CRED): %s", u ? (const char *)u : "?",
                                 pam_strerror(a->h, rc2));
                        r = -EIO;
                        rc = rc == PAM_SUCCESS ? rc2 : rc;
                }
        }
        if (a->h)
                pam_end(a->h, rc);
        free(a->service);
        free(a->user);
        free(a->rhost);
        free(a);
        return r;
}

/* ---- limiter ---- */

#define BUCKETS 8192
#define WAYS 8                          /* a bucket: 8 records; 65536 in all */
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS 30000
#define GOOD_SOURCES 4
#define GOOD_MS (30ull * 86400 * 1000)

typedef enum { K_PAIR = 'p', K_USER = 'u', K_SOURCE = 's' } Kind;

typedef struct Rec {
        uint64_t h1, h2;                /* the key's hashes; both 0: a free slot */
        uint32_t failures;
        bool locked;
        uint64_t last_ms;               /* of the last failure */
        uint64_t not_before_ms;
        uint64_t good[GOOD_SOURCES];    /* K_USER: sources (hashes) the user logged on from */
        uint64_t good_ms[GOOD_SOURCES];
} Rec;

struct AuthLimiter {
        Rec *recs;
        unsigned free_failures, lockout_failures, ipv4_bits;
        uint64_t lockout_ms;
        uint64_t seed[2];               /* random: nobody can aim a flood of names at a bucket */
};

AuthLimiter *auth_limiter_new(unsigned free_failures, unsigned lockout_failures, unsigned lockout_s)
{
        AuthLimiter *l = xmalloc0(sizeof *l);
        l->recs = xmalloc0(sizeof *l->recs * BUCKETS * WAYS);
        l->free_failures = free_failures;
        l->lockout_failures = MAX(lockout_failures, 1u);
        l->lockout_ms = (uint64_t)lockout_s * 1000;
        l->ipv4_bits = 32;
        random_bytes(l->seed, sizeof l->seed);
        return l;
}

void auth_limiter_free(AuthLimiter *l)
{
        if (!l)
                return;
        free(l->recs);
        free(l);
}

void auth_limiter_set_ipv4_prefix(AuthLimiter *l, unsigned bits) { l->ipv4_bits = MIN(MAX(bits, 8u), 32u); }

static uint64_t fnv(uint64_t seed, const char *s, size_t n)
{
        uint64_t h = 14695981039346656037ull ^ seed;
        for (size_t i = 0; i < n; i++) {
                h ^= (uint8_t)s[i];
                h *= 1099511628211ull;
        }
        return h ? h : 1;
}

static void source_of(AuthLimiter *l, const char *addr, char *out, size_t cap)
{
        net_source(addr, l->ipv4_bits, out, cap);
}

/* A user name as the limiter keys it: ASCII case-folded (PAM may accept any spelling). */
static void fold(const char *user, char *out, size_t cap)
{
        size_t i = 0;
        for (; user && user[i] && i + 1 < cap; i++)
                out[i] = (char)tolower((unsigned char)user[i]);
        out[i] = 0;
}

/* What a record is worth keeping: a lockout, then failures, then known-good sources. */
static uint64_t value(const Rec *r)
{
        uint64_t v = (uint64_t)r->failures * 4;
        if (r->locked)
                v += 1u << 30;
        for (int i = 0; i < GOOD_SOURCES; i++)
                v += r->good[i] ? 8 : 0;
        return v;
}

static Rec *lookup(AuthLimiter *l, Kind kind, const char *user, const char *source)
{
        char key[320];
        int n = snprintf(key, sizeof key, "%c\n%s\n%s", (char)kind, user ? user : "", source ? source : "");
        size_t len = n < 0 ? 0 : MIN((size_t)n, sizeof key - 1);
        uint64_t h1 = fnv(l->seed[0], key, len), h2 = fnv(l->seed[1], key, len);
        Rec *b = &l->recs[(h1 % BUCKETS) * WAYS], *slot = NULL;
        for (int i = 0; i < WAYS; i++) {
                if (b[i].h1 == h1 && b[i].h2 == h2)
                        return &b[i];
                if (!slot && !b[i].h1 && !b[i].h2)
                        slot = &b[i];
        }
        /* Full: the least valuable record goes (the oldest of equals), never a lockout for a
         * fresh name. */
        if (!slot) {
                slot = &b[0];
                for (int k = 1; k < WAYS; k++)
                        if (value(&b[k]) < value(slot) || (value(&b[k]) == value(slot) && b[k].last_ms < slot->last_ms))
                                slot = &b[k];
        }
        *slot = (Rec){ .h1 = h1, .h2 = h2 };
        return slot;
}

/* Failures are forgotten lockout_s after the last one. */
static void decay(AuthLimiter *l, Rec *r, uint64_t now)
{
        if (r->failures && now >= r->last_ms + l->lockout_ms && now >= r->not_before_ms) {
                r->failures = 0;
                r->locked = false;
                r->not_before_ms = 0;
        }
}

static uint64_t backoff(unsigned over)
{
        return MIN((uint64_t)BACKOFF_BASE_MS << MIN(over, 5u), (uint64_t)BACKOFF_MAX_MS);
}

static uint64_t source_hash(AuthLimiter *l, const char *source) { return fnv(l->seed[0], source, strlen(source)); }

static bool known_good(const Rec *u, uint64_t src, uint64_t now)
{
        for (int i = 0; i < GOOD_SOURCES; i++)
                if (u->good[i] == src && now < u->good_ms[i] + GOOD_MS)
                        return true;
        return false;
}

uint64_t auth_limiter_begin(AuthLimiter *l, const char *user, const char *addr, uint64_t now, bool *locked)
{
        *locked = false;
        char name[256], src[96];
        fold(user, name, sizeof name);
        source_of(l, addr, src, sizeof src);
        Rec *p = lookup(l, K_PAIR, name, src), *u = lookup(l, K_USER, name, NULL), *s = lookup(l, K_SOURCE, NULL, src);
        decay(l, p, now);
        decay(l, u, now);
        decay(l, s, now);
        uint64_t wait = 0;
        if (p->not_before_ms > now) {
                wait = p->not_before_ms - now;
                *locked |= p->locked;
        }
        if (s->not_before_ms > now) {
                wait = MAX(wait, s->not_before_ms - now);
                *locked |= s->locked;
        }
        /* The user's own ceiling slows unknown sources down and never locks. */
        if (u->not_before_ms > now && !known_good(u, source_hash(l, src), now))
                wait = MAX(wait, u->not_before_ms - now);
        if (wait)
                return wait;
        /* Counted now, as a failure until the end says otherwise. */
        p->failures++;
        p->last_ms = now;
        if (p->failures >= l->lockout_failures) {
                p->locked = true;
                p->not_before_ms = now + l->lockout_ms;
        } else if (p->failures > l->free_failures) {
                p->not_before_ms = now + backoff(p->failures - l->free_failures - 1);
        }
        u->failures++;
        u->last_ms = now;
        if (u->failures > 2 * l->lockout_failures)
                u->not_before_ms = now + backoff(u->failures - 2 * l->lockout_failures - 1);
        s->failures++;
        s->last_ms = now;
        if (s->failures > 4 * l->lockout_failures) {
                s->locked = true;
                s->not_before_ms = now + l->lockout_ms;
        }
        return 0;
}

static void forgive(AuthLimiter *l, const char *name, const char *src, uint64_t now)
{
        Rec *p = lookup(l, K_PAIR, name, src), *u = lookup(l, K_USER, name, NULL);
        p->failures = 0;
        p->locked = false;
        p->not_before_ms = 0;
        u->failures = 0;
        u->not_before_ms = 0;
        /* Known good from now: the oldest (or a lapsed) entry makes room. */
        uint64_t h = source_hash(l, src);
        int k = 0;
        for (int i = 0; i < GOOD_SOURCES; i++) {
                if (u->good[i] == h) {
                        k = i;
                        break;
                }
                if (u->good_ms[i] < u->good_ms[k])
                        k = i;
        }
        u->good[k] = h;
        u->good_ms[k] = now;
}

/* The attempt was not a guess: its count comes off again, earlier failures stay. A delay or
 * lockout this attempt's count set is lifted (any earlier one had run out, or the attempt
 * would not have begun); the user's ceiling delay stays while the user is still over it. */
static void uncount(AuthLimiter *l, const char *name, const char *src)
{
        Rec *p = lookup(l, K_PAIR, name, src), *u = lookup(l, K_USER, name, NULL), *s = lookup(l, K_SOURCE, NULL, src);
        if (p->failures)
                p->failures--;
        p->locked = false;
        p->not_before_ms = 0;
        if (u->failures)
                u->failures--;
        if (u->failures <= 2 * l->lockout_failures)
                u->not_before_ms = 0;
        if (s->failures)
                s->failures--;
        s->locked = false;
        s->not_before_ms = 0;
}

bool auth_result_is_guess(int pam_r)
{
        return pam_r != 0 && pam_r != -EKEYEXPIRED && pam_r != -EKEYREVOKED && pam_r != -EPERM;
}

void auth_limiter_end(AuthLimiter *l, const char *user, const char *canonical, const char *addr, int pam_r,
                      uint64_t now)
{
        char name[256], src[96];
        fold(user, name, sizeof name);
        source_of(l, addr, src, sizeof src);
        if (pam_r != 0) {
                if (!auth_result_is_guess(pam_r))
                        uncount(l, name, src);
                return;         /* a guess was counted when it began */
        }
        forgive(l, name, src, now);
        if (canonical && strcmp(canonical, user) != 0) {
                char canon[256];
                fold(canonical, canon, sizeof canon);
                forgive(l, canon, src, now);
        }
        Rec *s = lookup(l, K_SOURCE, NULL, src);
        if (s->failures)
                s->failures--;  /* this attempt was not a failure */
}
