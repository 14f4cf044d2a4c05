/* Permit table lookup (permit.h): a state's row lists what may be sent; everything else is not. */
#include "common/permit.h"

bool permit_allows(const PermitRow *t, size_t n, int state, uint8_t type)
{
        if (type == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (t[i].state != state)
                        continue;
                for (size_t j = 0; j < PERMIT_TYPES_MAX && t[i].types[j]; j++)
                        if (t[i].types[j] == type)
                                return true;
                return false;
        }
        return false;
}
