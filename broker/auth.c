/* PAM authentication and the failed-logon limiter. The only file that includes PAM headers.
 * PAM's own fail delay is replaced by a callback (libpam then never sleeps): slated applies its
 * own non-blocking delays, so one user's failures never slow another user's logon. */
#include <errno.h>
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>
#include "broker/auth.h"
#include "common/log.h"
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

typedef struct Entry {
        struct Entry *next;
        char key[320];
        unsigned failures;
        uint64_t not_before_ms;
        bool locked;
} Entry;

struct AuthLimiter {
        Entry *entries;
        unsigned free_failures, lockout_failures;
        uint64_t lockout_ms;
        unsigned count;
};

#define LIMITER_MAX_ENTRIES 100000
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS 30000

AuthLimiter *auth_limiter_new(unsigned free_failures, unsigned lockout_failures, unsigned lockout_s)
{
        AuthLimiter *l = xmalloc0(sizeof *l);
        l->free_failures = free_failures;
        l->lockout_failures = lockout_failures;
        l->lockout_ms = (uint64_t)lockout_s * 1000;
        return l;
}

void auth_limiter_free(AuthLimiter *l)
{
        if (!l)
                return;
        while (l->entries) {
                Entry *e = l->entries;
                l->entries = e->next;
                free(e);
        }
        free(l);
}

static Entry *find(AuthLimiter *l, const char *kind, const char *v, bool create)
{
        char key[320];
        snprintf(key, sizeof key, "%s:%s", kind, v ? v : "");
        for (Entry *e = l->entries; e; e = e->next)
                if (strcmp(e->key, key) == 0)
                        return e;
        /* A flood of distinct names must not grow memory without bound: forget the oldest. */
        if (!create)
                return NULL;
        if (l->count >= LIMITER_MAX_ENTRIES) {
                Entry **pp = &l->entries;
                while ((*pp)->next)
                        pp = &(*pp)->next;
                free(*pp);
                *pp = NULL;
                l->count--;
        }
        Entry *e = xmalloc0(sizeof *e);
        snprintf(e->key, sizeof e->key, "%s", key);
        e->next = l->entries;
        l->entries = e;
        l->count++;
        return e;
}

static uint64_t wait_for(Entry *e, uint64_t now, bool *locked)
{
        if (!e || now >= e->not_before_ms)
                return 0;
        if (e->locked)
                *locked = true;
        return e->not_before_ms - now;
}

uint64_t auth_limiter_check(AuthLimiter *l, const char *user, const char *addr, uint64_t now, bool *locked)
{
        *locked = false;
        uint64_t a = wait_for(find(l, "u", user, false), now, locked);
        uint64_t b = wait_for(find(l, "a", addr, false), now, locked);
        return MAX(a, b);
}

static void fail_one(AuthLimiter *l, Entry *e, uint64_t now)
{
        e->failures++;
        if (e->failures >= l->lockout_failures) {
                e->locked = true;
                e->not_before_ms = now + l->lockout_ms;
        } else if (e->failures > l->free_failures) {
                unsigned n = e->failures - l->free_failures - 1;
                uint64_t d = (uint64_t)BACKOFF_BASE_MS << MIN(n, 5u);
                e->not_before_ms = now + MIN(d, (uint64_t)BACKOFF_MAX_MS);
        }
}

void auth_limiter_failure(AuthLimiter *l, const char *user, const char *addr, uint64_t now)
{
        fail_one(l, find(l, "u", user, true), now);
        /* Sources get more slack than users: many users may share one NAT address. */
        Entry *a = find(l, "a", addr, true);
        a->failures++;
        if (a->failures > l->lockout_failures * 4) {
                a->locked = true;
                a->not_before_ms = now + l->lockout_ms;
        }
}

void auth_limiter_success(AuthLimiter *l, const char *user, const char *addr)
{
        Entry *e = find(l, "u", user, false);
        if (e) {
                e->failures = 0;
                e->locked = false;
                e->not_before_ms = 0;
        }
}
