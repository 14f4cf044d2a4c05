/* Password authentication through PAM (the only PAM user in Slate) and the logon rate limiter.
 * auth_pam_check blocks (PAM modules may) and runs in the thread pool; the limiter is plain
 * data used from the loop. Passwords are never logged and are wiped after use. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* 0: authenticated and account valid (*ret_user = the name PAM settled on, caller frees);
 * -EACCES: wrong credentials, unknown user, or account refused; -EIO: PAM itself failed. */
int auth_pam_check(const char *service, const char *user, const char *password, const char *rhost,
                   char **ret_user, char **ret_error);

/* Failed-logon limiter (docs/design.md "Logon limiter"). Records, each forgotten after lockout_s
 * without a failure:
 *  - per (user, source): after free_failures, each attempt waits a growing delay (1 s doubling to
 *    30 s); after lockout_failures that source is locked out for that user for lockout_s;
 *  - per user, all sources: after 2 x lockout_failures, attempts from sources that are not known
 *    good for the user wait the delay too, but the user is never locked out: an attacker can
 *    slow an account, not close it;
 *  - per source, all users (password spraying): after 4 x lockout_failures, locked for lockout_s;
 *  - known good: the last 4 sources a user logged on from (30 days); they skip the per-user delay.
 * A source is an IPv4 address (or its /ipv4_prefix) or an IPv6 /64. User names are compared
 * case-folded. An attempt counts when it starts (auth_limiter_begin), so guesses in flight at
 * once all count, and a client that leaves mid-check does not escape it. The records live in a
 * fixed table (65536); when a bucket is full, the record with the fewest failures goes, never
 * one that holds a lockout for a flood of fresh names. */
typedef struct AuthLimiter AuthLimiter;
AuthLimiter *auth_limiter_new(unsigned free_failures, unsigned lockout_failures, unsigned lockout_s);
void auth_limiter_free(AuthLimiter *l);
/* IPv4 addresses of one /bits (8-32, default 32) count as one source. */
void auth_limiter_set_ipv4_prefix(AuthLimiter *l, unsigned bits);
/* An attempt starts: 0 when it may go ahead (it is counted now, as a failure until
 * auth_limiter_end says otherwise), else the ms it must still wait (nothing counted); *locked
 * when that is a lockout rather than a delay. */
uint64_t auth_limiter_begin(AuthLimiter *l, const char *user, const char *addr, uint64_t now_ms, bool *locked);
/* How a begun attempt ended. A success forgives it, clears the user's records (also under
 * canonical, PAM's name for the user, when given) and makes the source known good for them. */
void auth_limiter_end(AuthLimiter *l, const char *user, const char *canonical, const char *addr, bool success,
                      uint64_t now_ms);
