/* PAM authentication through the real PAM stack (pam_wrapper + pam_matrix, set up by
 * test_auth.sh) and the failed-logon limiter. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/auth.h"

static void need_wrapper(void)
{
        if (!getenv("PAM_WRAPPER"))
                cr_skip_test("run through tests/unit/test_auth.sh (pam_wrapper not preloaded)");
}

Test(auth, right_password_is_accepted)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "alice", "secret", "192.0.2.10", &user, &err), 0, "%s", err ? err : "");
        cr_assert_str_eq(user, "alice");
        free(user);
}

Test(auth, wrong_password_unknown_user_and_wrong_service_are_refused)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "alice", "wrong", NULL, &user, &err), -EACCES);
        cr_assert_not_null(err);
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "ghost", "secret", NULL, &user, &err), -EACCES);
        free(err);
        err = NULL;
        /* carol's passdb entry is for another service: the account check refuses her. */
        cr_assert_eq(auth_pam_check("slate", "carol", "pw", NULL, &user, &err), -EACCES);
        free(err);
}

Test(limiter, backs_off_then_locks_out_and_success_clears)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 60);
        bool locked;
        uint64_t t = 1000000;
        cr_assert_eq(auth_limiter_check(l, "alice", "10.0.0.1", t, &locked), 0);
        auth_limiter_failure(l, "alice", "10.0.0.1", t);
        auth_limiter_failure(l, "alice", "10.0.0.1", t);
        cr_assert_eq(auth_limiter_check(l, "alice", "10.0.0.1", t, &locked), 0, "two free failures");
        auth_limiter_failure(l, "alice", "10.0.0.1", t);
        uint64_t w = auth_limiter_check(l, "alice", "10.0.0.1", t, &locked);
        cr_assert_gt(w, 0);
        cr_assert_not(locked);
        /* Another user from another address is not slowed down. */
        cr_assert_eq(auth_limiter_check(l, "bob", "10.0.0.2", t, &locked), 0);
        auth_limiter_failure(l, "alice", "10.0.0.1", t);
        auth_limiter_failure(l, "alice", "10.0.0.1", t);
        w = auth_limiter_check(l, "alice", "10.0.0.9", t, &locked);
        cr_assert(locked);
        cr_assert_geq(w, 59000);
        cr_assert_eq(auth_limiter_check(l, "alice", "10.0.0.9", t + 61000, &locked), 0, "lockout expires");
        auth_limiter_success(l, "alice", "10.0.0.9");
        cr_assert_eq(auth_limiter_check(l, "alice", "10.0.0.9", t, &locked), 0);
        auth_limiter_free(l);
}

Test(limiter, memory_is_bounded_under_a_flood_of_names)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 60);
        char name[32];
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof name, "user%d", i);
                auth_limiter_failure(l, name, "10.0.0.1", 1000);
        }
        bool locked;
        /* The shared source address is locked after many failures across users. */
        cr_assert_gt(auth_limiter_check(l, "someone", "10.0.0.1", 1000, &locked), 0);
        auth_limiter_free(l);
}
