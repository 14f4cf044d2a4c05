/* A PAM account module for the tests only (never installed): it refuses the users named in
 * its arguments the way a real account stack does after a right password,
 *   account required /abs/path/pam_expired.so password_expired=dave account_expired=erin denied=frank
 * (PAM_NEW_AUTHTOK_REQD, PAM_ACCT_EXPIRED, PAM_PERM_DENIED) and ignores everyone else. */
#define PAM_SM_ACCOUNT
#include <security/pam_modules.h>
#include <string.h>

static int named(const char *user, int argc, const char **argv, const char *key)
{
        size_t k = strlen(key);
        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=' && strcmp(argv[i] + k + 1, user) == 0)
                        return 1;
        return 0;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
        (void)flags;
        const char *user = NULL;
        if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user)
                return PAM_USER_UNKNOWN;
        if (named(user, argc, argv, "password_expired"))
                return PAM_NEW_AUTHTOK_REQD;
        if (named(user, argc, argv, "account_expired"))
                return PAM_ACCT_EXPIRED;
        if (named(user, argc, argv, "denied"))
                return PAM_PERM_DENIED;
        return PAM_IGNORE;
}
