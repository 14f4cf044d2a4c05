/* The one rule for user names that become accounts in a guest (slated's logon, the control API's
 * user: principals, the agent, the session script): what Debian's useradd creates without
 * --badname, minus what tools misread. libc only (the static agent links it). Never loosen it in
 * one place only: authentication and the desktop must agree on who can log on. */
#pragma once
#include <stdbool.h>

/* useradd's limit (and utmp's ut_user), without the terminating NUL. */
#define USER_NAME_MAX 32

/* [A-Za-z_][A-Za-z0-9_.-]{0,31}: ASCII letters of either case, digits, '_', '.', '-'; starts with a
 * letter or '_' (never '-', '.', or a digit, so it is never an option, a hidden or relative path,
 * or a number a tool could take for a uid). Case is kept: "Alice" and "alice" are two accounts. */
bool user_name_valid(const char *name);
/* The rule in words, for messages to administrators. */
#define USER_NAME_RULE \
        "a user name is 1 to 32 ASCII letters, digits, '.', '_' or '-', starting with a letter or '_'"
