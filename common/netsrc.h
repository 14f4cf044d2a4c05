/* Where a client comes from, as the limits count it: one IPv4 address (or its /ipv4_bits, for
 * sites behind carrier NAT), or an IPv6 /64 (a single host commonly holds a whole /64, so
 * counting its addresses apart would let one attacker fill every per-source cap). */
#pragma once
#include <stddef.h>

/* out: "a.b.c.d/bits", "v6::/64", or addr as it is when it is neither. IPv4-mapped IPv6
 * addresses count as IPv4. ipv4_bits: 8 to 32. */
void net_source(const char *addr, unsigned ipv4_bits, char *out, size_t cap);
