/* A PAM account and password module for the tests only (never installed): it refuses the users
 * named in its arguments the way a real account stack does after a right password,
 *   account required /abs/path/pam_expired.so password_expired=dave account_expired=erin denied=frank state=DIR
 * (PAM_NEW_AUTHTOK_REQD, PAM_ACCT_EXPIRED, PAM_PERM_DENIED) and ignores everyone else. As a
 * password module (password required /abs/path/pam_expired.so state=DIR) it changes an expired
 * password the way pam_unix does for root: "New password: ", "Retype new password: ", refused
 * when they differ or are empty; a change leaves DIR/USER.changed (no password in it), and the
 * account check no longer calls that user's password expired. As an auth module
 * (auth required /abs/path/pam_expired.so chatty=carl) it asks the users named "Question N: "
 * until the conversation fails, at most 100 times: a stack that never stops asking. */
#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#define PAM_SM_PASSWORD
#include <fcntl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int named(const char *user, int argc, const char **argv, const char *key)
{
        size_t k = strlen(key);
        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=' && strcmp(argv[i] + k + 1, user) == 0)
                        return 1;
        return 0;
}

/* DIR/USER.changed, when state=DIR is given. */
static int marker(const char *user, int argc, const char **argv, char *out, size_t cap)
{
        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], "state=", 6) == 0) {
                        int n = snprintf(out, cap, "%s/%s.changed", argv[i] + 6, user);
                        return n > 0 && (size_t)n < cap && !strchr(user, '/');
                }
        return 0;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        (void)flags;
        const char *user = NULL;
        char path[4096];
        if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
                return PAM_USER_UNKNOWN;
        if (named(user, argc, argv, "password_expired") &&
            !(marker(user, argc, argv, path, sizeof path) && access(path, F_OK) == 0))
                return PAM_NEW_AUTHTOK_REQD;
        if (named(user, argc, argv, "account_expired"))
                return PAM_ACCT_EXPIRED;
        if (named(user, argc, argv, "denied"))
                return PAM_PERM_DENIED;
        return PAM_IGNORE;
}

static void drop(char **s);

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        (void)flags;
        const char *user = NULL;
        if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
                return PAM_USER_UNKNOWN;
        if (!named(user, argc, argv, "chatty"))
                return PAM_IGNORE;
        for (int i = 1; i <= 100; i++) {
                char *a = NULL;
                if (pam_prompt(pamh, PAM_PROMPT_ECHO_ON, &a, "Question %d: ", i) != PAM_SUCCESS)
                        return PAM_AUTH_ERR;
                drop(&a);
        }
        return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        (void)pamh;
        (void)flags;
        (void)argc;
        (void)argv;
        return PAM_IGNORE;
}

static void drop(char **s)
{
        if (*s) {
                memset(*s, 0, strlen(*s));
                free(*s);
                *s = NULL;
        }
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        const char *user = NULL;
        char path[4096];
        if (flags & PAM_PRELIM_CHECK)
                return PAM_SUCCESS;
        if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user || !marker(user, argc, argv, path, sizeof path))
                return PAM_AUTHTOK_ERR;
        char *a = NULL, *b = NULL;
        if (pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &a, "New password: ") != PAM_SUCCESS || !a)
                return PAM_AUTHTOK_ERR;
        if (!*a) {
                drop(&a);
                pam_error(pamh, "No password has been supplied.");
                return PAM_AUTHTOK_ERR;
        }
        if (pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &b, "Retype new password: ") != PAM_SUCCESS || !b) {
                drop(&a);
                return PAM_AUTHTOK_ERR;
        }
        int same = strcmp(a, b) == 0;
        drop(&a);
        drop(&b);
        if (!same) {
                pam_error(pamh, "Sorry, passwords do not match.");
                return PAM_AUTHTOK_ERR;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return PAM_AUTHTOK_ERR;
        close(fd);
        return PAM_SUCCESS;
}
