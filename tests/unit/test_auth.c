/* PAM authentication through the real PAM stack (pam_wrapper + pam_matrix, set up by
 * test_auth.sh) and the failed-logon limiter. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
        cr_assert_eq(auth_pam_check("slate", "alice", "secret", "192.0.2.10", NULL, NULL, &user, &err), 0, "%s", err ? err : "");
        cr_assert_str_eq(user, "alice");
        free(user);
}

Test(auth, wrong_password_unknown_user_and_wrong_service_are_refused)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "alice", "wrong", NULL, NULL, NULL, &user, &err), -EACCES);
        cr_assert_not_null(err);
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "ghost", "secret", NULL, NULL, NULL, &user, &err), -EACCES);
        free(err);
        err = NULL;
        /* An expired password behind a wrong one is just a wrong password. */
        cr_assert_eq(auth_pam_check("slate", "dave", "wrong", NULL, NULL, NULL, &user, &err), -EACCES);
        free(err);
}

/* The account stack refuses after the right password: each said as it is (the user must
 * change the password, or ask an administrator), never as a bad password. */
Test(auth, account_refusals_after_the_right_password_are_told_apart)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_pam_check("slate", "dave", "pw4", NULL, NULL, NULL, &user, &err), -EKEYEXPIRED, "%s",
                     err ? err : "");
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "erin", "pw5", NULL, NULL, NULL, &user, &err), -EKEYREVOKED);
        free(err);
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "frank", "pw6", NULL, NULL, NULL, &user, &err), -EPERM);
        free(err);
        err = NULL;
        /* carol's passdb entry is for another service: pam_matrix's account check denies her. */
        cr_assert_eq(auth_pam_check("slate", "carol", "pw", NULL, NULL, NULL, &user, &err), -EPERM);
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
                        int r = auth_pam_check("slate", u, cases[i][1], "192.0.2.20", NULL, NULL, &user, &err);
                        cr_assert(r == -EKEYEXPIRED || r == -EKEYREVOKED || r == -EPERM, "%s: %d", u, r);
                        cr_assert_not(auth_result_is_guess(r));
                        auth_limiter_end(l, u, NULL, "192.0.2.20", r, t);
                        free(err);
                }
        }
        /* A wrong password still counts: the next attempt is locked out. */
        char *user = NULL, *err = NULL;
        cr_assert_eq(auth_limiter_begin(l, "dave", "192.0.2.20", 1000010, &locked), 0);
        int r = auth_pam_check("slate", "dave", "wrong", "192.0.2.20", NULL, NULL, &user, &err);
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
        cr_assert_eq(auth_pam_check("slate", "sess1", "pw", "192.0.2.30", NULL, &h, &user, &err), 0, "%s", err ? err : "");
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
        cr_assert_eq(auth_pam_check("slate", "sess2", "pw", "192.0.2.31", NULL, &h, &user, &err), 0);
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

/* ---- the conversation relayed to a logon screen ---- */

/* A user at a logon screen, scripted: answers prompts in order, records every message. */
typedef struct Script {
        const char *answers[8];
        int n_answers, next;
        int fail_at;            /* 1-based message that ends the conversation (the user left); 0 never */
        int seen;
        IpcPromptStyle styles[16];
        char texts[16][128];
} Script;

static int script_ask(void *ud, IpcPromptStyle style, const char *text, char **ret_reply)
{
        Script *s = ud;
        int k = s->seen++;
        if (k < 16) {
                s->styles[k] = style;
                snprintf(s->texts[k], sizeof s->texts[k], "%s", text);
        }
        if (s->fail_at && s->seen >= s->fail_at)
                return -ECONNRESET;
        if (!ret_reply)
                return 0;
        cr_assert_lt(s->next, s->n_answers, "an unexpected prompt: %s", text);
        *ret_reply = strdup(s->answers[s->next++]);
        return 0;
}

static bool saw(const Script *s, IpcPromptStyle style, const char *part)
{
        for (int i = 0; i < s->seen && i < 16; i++)
                if (s->styles[i] == style && strstr(s->texts[i], part))
                        return true;
        return false;
}

static void need_oath(void)
{
        need_wrapper();
        if (!getenv("SLATE_OATH_KEY"))
                cr_skip_test("pam_oath or oathtool missing (apt-get install libpam-oath oathtool)");
}

/* The code oathtool computes now for the test key (the one pam_oath checks). */
static void totp_now(char out[16])
{
        char cmd[256];
        snprintf(cmd, sizeof cmd, "oathtool --totp -d 6 %s", getenv("SLATE_OATH_KEY"));
        FILE *f = popen(cmd, "r");
        cr_assert_not_null(f);
        cr_assert_not_null(fgets(out, 16, f));
        pclose(f);
        out[strcspn(out, "\n")] = 0;
        cr_assert_eq(strlen(out), 6, "oathtool said %s", out);
}

/* The password the client typed answers the first prompt; pam_oath's code prompt goes to the
 * user, and only both together log on. */
Test(conv, a_one_time_code_is_asked_at_the_logon_screen_and_both_are_needed)
{
        need_oath();
        char code[16], *user = NULL, *err = NULL;
        totp_now(code);
        Script ok = { .answers = { code }, .n_answers = 1 };
        AuthAsk ask = { script_ask, &ok };
        cr_assert_eq(auth_pam_check("slate-otp", "otp1", "pw", "192.0.2.40", &ask, NULL, &user, &err), 0, "%s",
                     err ? err : "");
        cr_assert_eq(ok.seen, 1);
        cr_assert(saw(&ok, IPC_PROMPT_SECRET, "One-time password"), "prompt: %s", ok.texts[0]);
        free(user);
        user = NULL;

        /* A wrong code with the right password: refused as a guess. */
        char wrong[16];
        snprintf(wrong, sizeof wrong, "%06d", (atoi(code) + 500000) % 1000000);
        Script bad = { .answers = { wrong }, .n_answers = 1 };
        ask.ud = &bad;
        int r = auth_pam_check("slate-otp", "otp2", "pw", "192.0.2.40", &ask, NULL, &user, &err);
        cr_assert_eq(r, -EACCES);
        cr_assert(auth_result_is_guess(r));
        free(err);
        err = NULL;

        /* A right code behind a wrong password: still asked (no hint which one was wrong), refused. */
        totp_now(code);
        Script badpw = { .answers = { code }, .n_answers = 1 };
        ask.ud = &badpw;
        cr_assert_eq(auth_pam_check("slate-otp", "otp3", "nope", "192.0.2.40", &ask, NULL, &user, &err), -EACCES);
        cr_assert_eq(badpw.seen, 1, "the code prompt comes whatever the password was");
        free(err);
        cr_assert_null(user);
}

/* A client that sent its password has no screen to ask on: the stack wants more, so it is
 * refused as such (the logon screen is the way in), and counted. */
Test(conv, without_a_logon_screen_a_second_factor_is_refused_as_such)
{
        need_oath();
        char *user = NULL, *err = NULL;
        int r = auth_pam_check("slate-otp", "otp1", "pw", NULL, NULL, NULL, &user, &err);
        cr_assert_eq(r, -ENOMSG, "%d %s", r, err ? err : "");
        cr_assert(auth_result_is_guess(r));
        cr_assert_not_null(strstr(err, "more than a password"), "%s", err);
        free(err);
        /* The same without pam_oath: a wrong password gives no other answer. */
        err = NULL;
        cr_assert_eq(auth_pam_check("slate-otp", "otp1", "nope", NULL, NULL, NULL, &user, &err), -ENOMSG);
        free(err);
}

/* The user left the screen in the middle: PAM hears PAM_CONV_ERR and the check ends. */
Test(conv, a_conversation_whose_user_left_ends_the_check)
{
        need_oath();
        char *user = NULL, *err = NULL;
        Script gone = { .fail_at = 1 };
        AuthAsk ask = { script_ask, &gone };
        cr_assert_eq(auth_pam_check("slate-otp", "otp1", "pw", NULL, &ask, NULL, &user, &err), -EACCES);
        cr_assert_eq(gone.seen, 1);
        free(err);
}

/* An expired password is changed on the spot: the new one twice, then the logon goes on and
 * the account is no longer expired. */
Test(conv, an_expired_password_is_changed_through_the_screen)
{
        need_wrapper();
        char *user = NULL, *err = NULL, path[4096];
        Script s = { .answers = { "n3w-pw", "n3w-pw" }, .n_answers = 2 };
        AuthAsk ask = { script_ask, &s };
        AuthHandle *h = NULL;
        cr_assert_eq(auth_pam_check("slate", "gina", "old", "192.0.2.50", &ask, &h, &user, &err), 0, "%s",
                     err ? err : "");
        cr_assert_str_eq(user, "gina");
        cr_assert(auth_password_changed(h));
        auth_session_end(h);
        free(user);
        user = NULL;
        cr_assert(saw(&s, IPC_PROMPT_SECRET, "New password"));
        cr_assert(saw(&s, IPC_PROMPT_SECRET, "Retype"));
        snprintf(path, sizeof path, "%s/gina.changed", getenv("SLATE_PAM_STATE"));
        cr_assert_eq(access(path, F_OK), 0, "the module saw no change");
        /* Next time it is not expired, with or without a screen. */
        h = NULL;
        cr_assert_eq(auth_pam_check("slate", "gina", "old", NULL, NULL, &h, &user, &err), 0, "%s", err ? err : "");
        cr_assert_not(auth_password_changed(h));
        auth_session_end(h);
        free(user);
}

/* A change that fails (the two differ): refused as an expired password, with PAM's words shown
 * to the user on the way and in the reason; not a guess. */
Test(conv, a_failed_change_refuses_with_a_clear_reason)
{
        need_wrapper();
        char *user = NULL, *err = NULL;
        Script s = { .answers = { "one", "two" }, .n_answers = 2 };
        AuthAsk ask = { script_ask, &s };
        int r = auth_pam_check("slate", "hank", "old", NULL, &ask, NULL, &user, &err);
        cr_assert_eq(r, -EKEYEXPIRED, "%d", r);
        cr_assert_not(auth_result_is_guess(r));
        cr_assert(saw(&s, IPC_PROMPT_ERROR, "do not match"));
        cr_assert_not_null(strstr(err, "password not changed"), "%s", err);
        free(err);
        cr_assert_null(user);
        /* Without a screen an expired password is only refused, as before. */
        err = NULL;
        cr_assert_eq(auth_pam_check("slate", "hank", "old", NULL, NULL, NULL, &user, &err), -EKEYEXPIRED);
        free(err);
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
