/* The guest user-name rule (username.h), in plain byte comparisons: no locale may widen it. */
#include <string.h>
#include "common/username.h"

static bool is_letter(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool user_name_valid(const char *name)
{
        size_t n = strnlen(name, USER_NAME_MAX + 1);
        if (n < 1 || n > USER_NAME_MAX)
                return false;
        if (!is_letter(name[0]) && name[0] != '_')
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = name[i];
                if (!is_letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '.' && c != '-')
                        return false;
        }
        return true;
}
