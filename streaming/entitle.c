/* The entitlement matcher shared by pools and app layers (entitle.h). Group names are resolved
 * through NSS at match time, so a membership change counts at the next logon. */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include "common/username.h"
#include "streaming/entitle.h"

bool entitle_principal_valid(const char *s)
{
        if (!s || strlen(s) > ENTITLE_PRINCIPAL_MAX)
                return false;
        if (strcmp(s, "all") == 0)
                return true;
        /* A user gets a guest account of that name: the rule logon and the agent apply too. */
        if (strncmp(s, "user:", 5) == 0)
                return user_name_valid(s + 5);
        const char *name = strncmp(s, "group:", 6) == 0 ? s + 6 : NULL;
        if (!name || !*name || strlen(name) > 64)
                return false;
        for (const char *c = name; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == ':' || *c == '/' || *c == 0x7f)
                        return false;
        return true;
}

bool entitle_match(char *const *principals, size_t n, const char *user, const gid_t *groups, int ngroups)
{
        for (size_t i = 0; i < n; i++) {
                const char *e = principals[i];
                if (strcmp(e, "all") == 0)
                        return true;
                if (strncmp(e, "user:", 5) == 0 && strcmp(e + 5, user) == 0)
                        return true;
                if (strncmp(e, "group:", 6) == 0) {
                        struct group *g = getgrnam(e + 6);
                        for (int k = 0; g && k < ngroups; k++)
                                if (groups[k] == g->gr_gid)
                                        return true;
                }
        }
        return false;
}

static bool user_in_group(const char *user, const char *group)
{
        struct passwd *pw = getpwnam(user);
        struct group *g = getgrnam(group);
        if (!pw || !g)
                return false;
        gid_t gid = g->gr_gid;
        gid_t groups[256];
        int n = (int)(sizeof groups / sizeof groups[0]);
        if (getgrouplist(user, pw->pw_gid, groups, &n) < 0)
                return true;    /* more groups than we can list: assume the worst */
        for (int i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

bool entitle_principals_overlap(const char *a, const char *b)
{
        if (strcmp(a, "all") == 0 || strcmp(b, "all") == 0 || strcmp(a, b) == 0)
                return true;
        bool ua = strncmp(a, "user:", 5) == 0, ub = strncmp(b, "user:", 5) == 0;
        if (ua && ub)
                return false;
        if (ua)
                return user_in_group(a + 5, b + 6);
        if (ub)
                return user_in_group(b + 5, a + 6);
        return true;
}
