/* broker/desktop's boot timeout for spares: a desktop booting at idle CPU priority on a busy host
 * is judged by the CPU it had, not by the wall clock, up to a wall bound. */
#include <criterion/criterion.h>
#include <stdint.h>
#include "broker/desktop.h"

Test(desktop, a_desktop_a_user_waits_for_has_wall_time)
{
        cr_assert_eq(desktop_boot_wait_ms(false, 0, 120000, 120000), 0);
        cr_assert_eq(desktop_boot_wait_ms(false, UINT64_MAX, 120000, 120000), 0);
}

Test(desktop, a_starved_spare_waits_for_the_cpu_it_is_owed)
{
        /* 120 s limit, 120 s waited, 5 s of CPU had: 115 s more at least. */
        cr_assert_eq(desktop_boot_wait_ms(true, 5000, 120000, 120000), 115000);
        /* Nearly all had: a second at least, not a busy re-check. */
        cr_assert_eq(desktop_boot_wait_ms(true, 119900, 120000, 120000), 1000);
}

Test(desktop, a_spare_that_had_its_cpu_or_the_wall_bound_fails)
{
        cr_assert_eq(desktop_boot_wait_ms(true, 120000, 130000, 120000), 0);
        cr_assert_eq(desktop_boot_wait_ms(true, 1000, 120000 * BOOT_WALL_FACTOR, 120000), 0);
        /* Never past the wall bound. */
        cr_assert_eq(desktop_boot_wait_ms(true, 0, 120000 * BOOT_WALL_FACTOR - 500, 120000), 500);
        /* CPU time unknown: as before, the wall clock decides. */
        cr_assert_eq(desktop_boot_wait_ms(true, UINT64_MAX, 120000, 120000), 0);
}
