/* Entitlements: who gets a pool or an app layer. One matcher for both (DESIGN.md): a principal
 * is "user:NAME", "group:NAME" or "all"; a user matches through name or any group they are in. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ENTITLE_PRINCIPAL_MAX 128

bool entitle_principal_valid(const char *s);
/* Does any of principals[0..n) name this user (groups: the user's gids, from getgrouplist)? */
bool entitle_match(char *const *principals, size_t n, const char *user, const gid_t *groups, int ngroups);
/* Could a and b name the same user? "all" overlaps everything; a user overlaps the groups they
 * are in; two different groups are taken to overlap (membership changes outside Slate). */
bool entitle_principals_overlap(const char *a, const char *b);
