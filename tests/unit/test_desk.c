/* The test guest's desktop (tests/guest/desk.h): the documented colours the end-to-end tests
 * check pixels against, and the user-name rule it shares with slated (common/username). */
#include <criterion/criterion.h>
#include <errno.h>
#include "tests/guest/desk.h"

Test(desk, user_colour_is_fnv1a_with_mid_range_channels)
{
        /* Values from the formula in tests/guest/README.md (and agent-check.py's user_rgb). */
        cr_assert_eq(desk_user_rgb("alice"), 0x6253a7u);
        cr_assert_eq(desk_user_rgb("bob"), 0x866094u);
        const char *users[] = { "a", "b", "root", "_", "zzzzzzzz" };
        for (size_t i = 0; i < sizeof users / sizeof *users; i++) {
                uint32_t c = desk_user_rgb(users[i]);
                for (int shift = 0; shift <= 16; shift += 8)
                        cr_assert((c >> shift & 0xff) >= 0x40 && (c >> shift & 0xff) <= 0xbf, "%s %06x", users[i], c);
        }
}

Test(desk, key_indicator_cycles_black_red_green_blue)
{
        const uint32_t want[] = { 0x000000, 0xff0000, 0x00ff00, 0x0000ff, 0x000000 };
        for (uint32_t n = 0; n < 5; n++)
                cr_assert_eq(desk_keybox_rgb(n), want[n], "n %u", n);
}

Test(desk, session_start_takes_the_names_logon_takes)
{
        /* No framebuffer here: a name that passes the rule gets as far as -ENODEV. */
        Desk d = { .fb = { .fd = -1 }, .tty_fd = -1 };
        char detail[128];
        cr_assert_eq(desk_session_start(&d, "Alice", 0, 0, detail, sizeof detail), -ENODEV, "%s", detail);
        cr_assert_eq(desk_session_start(&d, "alice.smith", 0, 0, detail, sizeof detail), -ENODEV, "%s", detail);
        cr_assert_eq(desk_session_start(&d, "al ice", 0, 0, detail, sizeof detail), -EINVAL);
        cr_assert_str_eq(detail, "invalid user name");
}
