/* common/username: the one rule for names that become guest accounts. What a directory's users
 * look like passes, in either case ("Alice" authenticates and gets a desktop); what a shell, a
 * path, an option parser or a uid lookup could misread does not. */
#include <criterion/criterion.h>
#include <string.h>
#include "common/username.h"

Test(username, directory_style_names_pass_in_either_case)
{
        const char *good[] = { "alice", "Alice", "ALICE", "aliceSmith", "alice.smith", "alice-smith", "alice_smith",
                               "alice2", "a1b2", "_svc", "a", "Z", "x-1_2", "bob.smith",
                               "abcdefghijklmnopqrstuvwxyz012345" /* 32 */ };
        for (size_t i = 0; i < sizeof good / sizeof *good; i++)
                cr_assert(user_name_valid(good[i]), "%s refused", good[i]);
}

Test(username, what_tools_could_misread_is_refused)
{
        const char *bad[] = { "", "-x", "--help", ".x", ".", "..", "../x", "1abc", "123", "a b", " alice", "alice ",
                              "a/b", "a:b", "a;b", "a,b", "a$", "a@example.com", "CORP\\alice", "a\tb", "a\nb",
                              "a\x7f", "al\xc3\xa9", "abcdefghijklmnopqrstuvwxyz0123456" /* 33 */ };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
                cr_assert_not(user_name_valid(bad[i]), "\"%s\" accepted", bad[i]);
}

Test(username, length_is_counted_in_bytes_up_to_32)
{
        char name[64];
        memset(name, 'a', sizeof name);
        name[USER_NAME_MAX] = 0;
        cr_assert(user_name_valid(name));
        name[USER_NAME_MAX] = 'a';
        name[USER_NAME_MAX + 1] = 0;
        cr_assert_not(user_name_valid(name));
        name[63] = 0;
        cr_assert_not(user_name_valid(name));
}
