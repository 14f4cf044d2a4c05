/* PAM authentication and the failed-logon limiter. The only file that includes PAM headers.
 * PAM's own fail delay is replaced by a callback (libpam then never sleeps): slated applies its
 * own non-blocking delays, so one user's failures never slow another user's logon. */
#include <ctype.h>
#include <errno.h>
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>
#include "broker/auth.h"
#include "common/log.h"
#include "common/netsrc.h"
#include "common/util.h"

typedef struct Conv {
        const char *password;
} Conv;

/* Answer only the password prompt (echo off); informational messages are ignored. */
static int conv_fn(int n, const struct pam_message **msg, struct pam_response **resp, void *appdata)
{
        Conv *c = appdata;
        if (n <= 0 || n > 32)
                return PAM_CONV_ERR;
        struct pam_response *r = calloc((size_t)n, sizeof *r);
        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
                        r[i].resp = strdup(c->password);
                        if (!r[i].resp)
                                goto fail;
                } else if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
                        goto fail;  /* a second factor or a user prompt: not supported over RDP */
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

int auth_pam_check(const char *service, const char *user, const char *password, const char *rhost,
                   char **ret_user, char **ret_error)
{
        Conv c = { .password = password };
        struct pam_conv conv = { .conv = conv_fn, .appdata_ptr = &c };
        pam_handle_t *h = NULL;
        int rc = pam_start(service, user, &conv, &h);
        if (rc != PAM_SUCCESS) {
                *ret_error = xasprintf("pam_start(%s): %s", service, pam_strerror(h, rc));
                return -EIO;
        }
        pam_set_item(h, PAM_FAIL_DELAY, (const void *)no_delay);
        if (rhost && *rhost)
                pam_set_item(h, PAM_RHOST, rhost);
        pam_set_item(h, PAM_TTY, "slate");
        rc = pam_authenticate(h, PAM_DISALLOW_NULL_AUTHTOK);
        if (rc == PAM_SUCCESS)
                rc = pam_acct_mgmt(h, PAM_DISALLOW_NULL_AUTHTOK);
        int r = 0;
        if (rc == PAM_SUCCESS) {
                const void *mapped = NULL;
                /* Modules may map the name: the session belongs to whoever PAM says. */
                if (pam_get_item(h, PAM_USER, &mapped) == PAM_SUCCESS && mapped)
                        *ret_user = xstrdup(mapped);
                else
                        *ret_user = xstrdup(user);
        } else {
                *ret_error = xstrdup(pam_strerror(h, rc));
                r = rc == PAM_ABORT || rc == PAM_BUF_ERR || rc == PAM_SYSTEM_ERR || rc == PAM_OPEN_ERR ? -EIO : -EACCES;
        }
        pam_end(h, rc);
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

void auth_limiter_end(AuthLimiter *l, const char *user, const char *canonical, const char *addr, bool success,
                      uint64_t now)
{
        if (!success)
                return;         /* counted when it began */
        char name[256], src[96];
        fold(user, name, sizeof name);
        source_of(l, addr, src, sizeof src);
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
