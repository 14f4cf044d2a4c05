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
        cr_assert_eq(auth_pam_check("slate", "alice", "secret", "192.0.2.10", NULL, &user, &err), 0, "%s", err ? err : "");
        cr_assert_str_eq(user, "alice");
        free(user);
}

Test(auth, wrong_password_unknown_user_and_wrong_service_are_refused)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "alice", "wrong", NULL, NULL, &user, &err), -EACCES);
        cr_assert_not_null(err);
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "ghost", "secret", NULL, NULL, &user, &err), -EACCES);
        free(err);
        err = NULL;
        /* An expired password behind a wrong one is just a wrong password. */
        cr_assert_eq(auth_pam_check("slate", "dave", "wrong", NULL, NULL, &user, &err), -EACCES);
        free(err);
}

/* The account stack refuses after the right password: each said as it is (the user must
 * change the password, or ask an administrator), never as a bad password. */
Test(auth, account_refusals_after_the_right_password_are_told_apart)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "dave", "pw4", NULL, NULL, &user, &err), -EKEYEXPIRED, "%s",
                     err ? err : "");
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "erin", "pw5", NULL, NULL, &user, &err), -EKEYREVOKED);
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "frank", "pw6", NULL, NULL, &user, &err), -EPERM);
        free(err);
        err = NULL;
        /* carol's passdb entry is for another service: pam_matrix's account check denies her. */
        cr_assert_eq(auth_pam_check("slate", "carol", "pw", NULL, NULL, &user, &err), -EPERM);
        free(err);
        cr_assert_null(user);
}

/* An expired password was the right one: the limiter's counters do not move (with a lockout
 * after one failure, a counted attempt would lock the next one out). */
Test(auth, an_expired_password_is_not_counted_as_a_guess)
{
        need_wrapper();
        AuthLimiter *l = auth_limiter_new(0, 1, 600);
        bool locked;
        const char *cases[][2] = { { "dave", "pw4" }, { "erin", "pw5" }, { "frank", "pw6" } };
        for (size_t i = 0; i < 3; i++) {
                const char *u = cases[i][0];
                for (int k = 0; k < 3; k++) {
                        uint64_t t = 1000000 + (uint64_t)k;
                        cr_assert_eq(auth_limiter_begin(l, u, "192.0.2.20", t, &locked), 0,
                                     "%s: attempt %d waits: the refusal before it was counted as a guess", u, k + 1);
                        char *user = NULL, *err = NULL;
                        int r = auth_pam_check("slate", u, cases[i][1], "192.0.2.20", NULL, &user, &err);
                        cr_assert(r == -EKEYEXPIRED || r == -EKEYREVOKED || r == -EPERM, "%s: %d", u, r);
                        cr_assert_not(auth_result_is_guess(r));
                        auth_limiter_end(l, u, NULL, "192.0.2.20", r, t);
                        free(err);
                }
        }
        /* A wrong password still counts: the next attempt is locked out. */
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_limiter_begin(l, "dave", "192.0.2.20", 1000010, &locked), 0);
        int r = auth_pam_check("slate", "dave", "wrong", "192.0.2.20", NULL, &user, &err);
        cr_assert(auth_result_is_guess(r));
        auth_limiter_end(l, "dave", NULL, "192.0.2.20", r, 1000010);
        free(err);
        cr_assert_gt(auth_limiter_begin(l, "dave", "192.0.2.20", 1000011, &locked), 0);
        cr_assert(locked);
        auth_limiter_free(l);
}

/* Lines of the session hook's log (test_auth.sh) that are exactly "TYPE USER RHOST". */
static int hook_lines(const char *type, const char *user, const char *rhost)
{
        const char *path = getenv("SLATE_PAM_SESSIONS_LOG");
        cr_assert_not_null(path);
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        char want[256], line[256];
        snprintf(want, sizeof want, "%s %s %s\n", type, user, rhost);
        int n = 0;
        while (fgets(line, sizeof line, f))
                n += strcmp(line, want) == 0;
        fclose(f);
        return n;
}

/* A logon is a login: the service's session stack runs once at the start, once at the end. */
Test(auth, a_logon_opens_a_pam_session_and_its_end_closes_it)
{
        need_wrapper();
        AuthHandle *h = NULL;
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "sess1", "pw", "192.0.2.30", &h, &user, &err), 0, "%s", err ? err : "");
        cr_assert_not_null(h);
        cr_assert_eq(hook_lines("open_session", "sess1", "192.0.2.30"), 0, "authentication alone opened a session");
        cr_assert_eq(auth_session_open(h, &err), 0, "%s", err ? err : "");
        cr_assert_eq(hook_lines("open_session", "sess1", "192.0.2.30"), 1);
        cr_assert_eq(hook_lines("close_session", "sess1", "192.0.2.30"), 0);
        cr_assert_eq(auth_session_end(h), 0);
        cr_assert_eq(hook_lines("open_session", "sess1", "192.0.2.30"), 1);
        cr_assert_eq(hook_lines("close_session", "sess1", "192.0.2.30"), 1);
        free(user);
}

/* A reconnect authenticates and ends its handle: no session opened, none closed. */
Test(auth, an_authentication_without_a_session_opens_and_closes_nothing)
{
        need_wrapper();
        AuthHandle *h = NULL;
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "sess2", "pw", "192.0.2.31", &h, &user, &err), 0);
        cr_assert_eq(auth_session_end(h), 0);
        cr_assert_eq(hook_lines("open_session", "sess2", "192.0.2.31"), 0);
        cr_assert_eq(hook_lines("close_session", "sess2", "192.0.2.31"), 0);
        free(user);
}

/* A session adopted across a slated restart is closed with a fresh handle. */
Test(auth, an_adopted_session_is_closed_with_a_fresh_handle)
{
        need_wrapper();
        cr_assert_eq(auth_session_end(auth_session_adopted("slate", "sess3", "192.0.2.32")), 0);
        cr_assert_eq(hook_lines("close_session", "sess3", "192.0.2.32"), 1);
        cr_assert_eq(hook_lines("open_session", "sess3", "192.0.2.32"), 0);
}

/* n failed attempts: each begun (allowed) and never forgiven. */
static void fail_n(AuthLimiter *l, const char *user, const char *addr, int n, uint64_t t)
{
        bool locked;
        for (int i = 0; i < n; i++)
                cr_assert_eq(auth_limiter_begin(l, user, addr, t, &locked), 0, "attempt %d of %s from %s refused", i + 1,
                             user, addr);
}

Test(limiter, backs_off_then_locks_out_the_source_and_success_clears)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 60);
        bool locked;
        uint64_t t = 1000000;
        fail_n(l, "alice", "10.0.0.1", 3, t);
        uint64_t w = auth_limiter_begin(l, "alice", "10.0.0.1", t, &locked);
        cr_assert_gt(w, 0, "no delay after the free failures");
        cr_assert_not(locked);
        /* Another user from another address is not slowed down. */
        cr_assert_eq(auth_limiter_begin(l, "bob", "10.0.0.2", t, &locked), 0);
        auth_limiter_end(l, "bob", NULL, "10.0.0.2", 0, t);
        cr_assert_eq(auth_limiter_begin(l, "alice", "10.0.0.1", t + 10000, &locked), 0, "the delay is over");
        cr_assert_eq(auth_limiter_begin(l, "alice", "10.0.0.1", t + 20000, &locked), 0);
        w = auth_limiter_begin(l, "alice", "10.0.0.1", t + 20000, &locked);
        cr_assert(locked, "five failures from one source: that source is locked out for alice");
        cr_assert_geq(w, 59000);
        cr_assert_eq(auth_limiter_begin(l, "alice", "10.0.0.1", t + 81000, &locked), 0, "lockout expires");
        auth_limiter_end(l, "alice", NULL, "10.0.0.1", 0, t + 81000);
        cr_assert_eq(auth_limiter_begin(l, "alice", "10.0.0.1", t + 81000, &locked), 0, "a success clears");
        auth_limiter_free(l);
}

/* The lockout test: an attacker sending bad passwords for alice cannot stop alice's
 * correct logon from her usual address; from a new one she is slowed, never locked. */
Test(limiter, an_attacker_cannot_lock_a_user_out)
{
        AuthLimiter *l = auth_limiter_new(3, 10, 300);
        bool locked;
        uint64_t t = 5000000;
        cr_assert_eq(auth_limiter_begin(l, "alice", "192.168.1.5", t, &locked), 0);
        auth_limiter_end(l, "alice", NULL, "192.168.1.5", 0, t);            /* her usual address */
        /* 200 guesses from 40 addresses (5 each: under each source's lockout), over time. */
        uint64_t now = t + 1000;
        char addr[32];
        for (int i = 0; i < 40; i++) {
                snprintf(addr, sizeof addr, "203.0.113.%d", i + 1);
                for (int k = 0; k < 5; k++, now += 31000)
                        auth_limiter_begin(l, "Alice", addr, now, &locked);     /* another spelling */
        }
        cr_assert_eq(auth_limiter_begin(l, "alice", "192.168.1.5", now, &locked), 0,
                     "alice refused from her usual address after an attack");
        auth_limiter_end(l, "alice", NULL, "192.168.1.5", 0, now);
        /* Hammered again, from yet another address: she is slowed there, never locked out. */
        for (int i = 0; i < 40; i++) {
                snprintf(addr, sizeof addr, "198.51.100.%d", i + 1);
                for (int k = 0; k < 5; k++, now += 31000)
                        auth_limiter_begin(l, "alice", addr, now, &locked);
        }
        now -= 31000 - 1;       /* just after the last guess */
        uint64_t w = auth_limiter_begin(l, "alice", "172.16.0.9", now, &locked);
        cr_assert_not(locked, "a user was locked out");
        cr_assert_gt(w, 0, "an attack does not slow the user down from a new address at all");
        cr_assert_leq(w, 30000, "waited %llu ms", (unsigned long long)w);
        cr_assert_eq(auth_limiter_begin(l, "alice", "172.16.0.9", now + w, &locked), 0);
        cr_assert_eq(auth_limiter_begin(l, "alice", "192.168.1.5", now, &locked), 0, "her usual address");
        auth_limiter_free(l);
}

/* The parallel-guess test: 32 attempts in flight at once all count (before, the check
 * came before PAM and the count after it, so every attempt in flight slipped through). */
Test(limiter, attempts_in_flight_all_count)
{
        AuthLimiter *l = auth_limiter_new(3, 10, 300);
        bool locked;
        int allowed = 0;
        for (int i = 0; i < 32; i++)
                allowed += auth_limiter_begin(l, "alice", "10.9.9.9", 1000, &locked) == 0;
        cr_assert_eq(allowed, 4, "%d of 32 simultaneous guesses went to PAM", allowed);
        auth_limiter_free(l);
}

Test(limiter, one_ipv6_64_or_ipv4_prefix_is_one_source)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 60);
        bool locked;
        char addr[64];
        for (int i = 0; i < 5; i++) {
                snprintf(addr, sizeof addr, "2001:db8:1:2::%x", i + 1);
                auth_limiter_begin(l, "bob", addr, 1000 + (uint64_t)i * 40000, &locked);
        }
        cr_assert_gt(auth_limiter_begin(l, "bob", "2001:db8:1:2:ffff::1", 200000, &locked), 0,
                     "addresses of one /64 counted apart");
        cr_assert(locked);
        cr_assert_eq(auth_limiter_begin(l, "bob", "2001:db8:1:3::1", 200000, &locked), 0, "another /64 is another source");
        auth_limiter_set_ipv4_prefix(l, 24);
        for (int i = 0; i < 5; i++) {
                snprintf(addr, sizeof addr, "::ffff:198.18.7.%d", i + 1);
                auth_limiter_begin(l, "carol", addr, 1000 + (uint64_t)i * 40000, &locked);
        }
        cr_assert_gt(auth_limiter_begin(l, "carol", "198.18.7.200", 200000, &locked), 0, "one /24, mapped or not");
        auth_limiter_free(l);
}

Test(limiter, failures_are_forgotten_after_the_lockout_time)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 60);
        bool locked;
        /* A NAT address with many users' typos over a day is not locked for everyone. */
        char user[32];
        uint64_t now = 1000;
        for (int i = 0; i < 100; i++, now += 61000) {
                snprintf(user, sizeof user, "user%d", i);
                cr_assert_eq(auth_limiter_begin(l, user, "10.1.1.1", now, &locked), 0, "typo %d refused", i);
        }
        auth_limiter_free(l);
}

Test(limiter, a_flood_of_names_does_not_erase_a_lockout)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 3600);
        bool locked;
        fail_n(l, "alice", "10.0.0.1", 2, 1000);
        for (int i = 0; i < 3; i++)
                auth_limiter_begin(l, "alice", "10.0.0.1", 1000 + 40000 * (uint64_t)(i + 1), &locked);
        cr_assert_gt(auth_limiter_begin(l, "alice", "10.0.0.1", 200000, &locked), 0);
        cr_assert(locked);
        /* 200,000 fresh names from as many addresses: far more records than the table holds. */
        char name[32], addr[32];
        for (int i = 0; i < 200000; i++) {
                snprintf(name, sizeof name, "flood%d", i);
                snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                auth_limiter_begin(l, name, addr, 200000, &locked);
        }
        cr_assert_gt(auth_limiter_begin(l, "alice", "10.0.0.1", 200000, &locked), 0, "the flood erased the lockout");
        cr_assert(locked);
        auth_limiter_free(l);
}

/* A refusal after the right password takes its own count back, nothing more: the guesses
 * before it still count (a success would have forgiven them). */
Test(limiter, a_refusal_that_is_no_guess_neither_counts_nor_forgives)
{
        AuthLimiter *l = auth_limiter_new(2, 5, 60);
        bool locked;
        uint64_t t = 1000000;
        fail_n(l, "alice", "10.0.0.1", 3, t);
        cr_assert_eq(auth_limiter_begin(l, "alice", "10.0.0.1", t + 10000, &locked), 0);
        auth_limiter_end(l, "alice", NULL, "10.0.0.1", -EKEYEXPIRED, t + 10000);
        cr_assert_eq(auth_limiter_begin(l, "alice", "10.0.0.1", t + 10000, &locked), 0,
                     "the expired password's attempt left a delay behind");
        cr_assert_gt(auth_limiter_begin(l, "alice", "10.0.0.1", t + 10000, &locked), 0,
                     "the expired password forgave the guesses before it");
        auth_limiter_free(l);
}
