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

/* Failed-logon limiter, per user and per source address: after `free_failures` failures in a
 * row each further attempt must wait an exponentially growing delay; after `lockout_failures`
 * the key is locked out for `lockout_s`. A success clears the user's record. */
typedef struct AuthLimiter AuthLimiter;
AuthLimiter *auth_limiter_new(unsigned free_failures, unsigned lockout_failures, unsigned lockout_s);
void auth_limiter_free(AuthLimiter *l);
/* ms the caller must still wait before trying this user from this address (0 = go ahead);
 * sets *locked when the answer is a lockout rather than a backoff. */
uint64_t auth_limiter_check(AuthLimiter *l, const char *user, const char *addr, uint64_t now_ms, bool *locked);
void auth_limiter_failure(AuthLimiter *l, const char *user, const char *addr, uint64_t now_ms);
void auth_limiter_success(AuthLimiter *l, const char *user, const char *addr);
