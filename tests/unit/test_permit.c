/* common/permit: a state permits exactly the types its row lists; unknown states, unlisted types
 * and type 0 (the list terminator) are never permitted. */
#include <criterion/criterion.h>
#include "common/permit.h"

enum { ST_A = 1, ST_B, ST_NONE };

static const PermitRow table[] = {
        { ST_A, { 1, 2 } },
        { ST_B, { 3, 4, 5, 6, 7, 8, 9, 10 } },    /* a full row: no terminator */
};

Test(permit, a_state_permits_exactly_its_row)
{
        cr_assert(permit_allows(table, 2, ST_A, 1));
        cr_assert(permit_allows(table, 2, ST_A, 2));
        cr_assert_not(permit_allows(table, 2, ST_A, 3));
        for (unsigned t = 3; t <= 10; t++)
                cr_assert(permit_allows(table, 2, ST_B, (uint8_t)t), "type %u", t);
        cr_assert_not(permit_allows(table, 2, ST_B, 1));
        cr_assert_not(permit_allows(table, 2, ST_B, 11));
}

Test(permit, unknown_states_and_type_zero_are_never_permitted)
{
        for (unsigned t = 0; t < 256; t++)
                cr_assert_not(permit_allows(table, 2, ST_NONE, (uint8_t)t));
        cr_assert_not(permit_allows(table, 2, ST_A, 0));
        cr_assert_not(permit_allows(table, 1, ST_B, 3), "row beyond n consulted");
        cr_assert_not(permit_allows(table, 0, ST_A, 1));
}
