/* Client sources for the per-source limits (netsrc.h). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "common/netsrc.h"

void net_source(const char *addr, unsigned ipv4_bits, char *out, size_t cap)
{
        struct in_addr a4;
        struct in6_addr a6;
        const char *p = addr ? addr : "";
        if (ipv4_bits < 8)
                ipv4_bits = 8;
        if (ipv4_bits > 32)
                ipv4_bits = 32;
        if (strncmp(p, "::ffff:", 7) == 0 && inet_pton(AF_INET, p + 7, &a4) == 1)
                p += 7;
        if (inet_pton(AF_INET, p, &a4) == 1) {
                uint32_t v = ntohl(a4.s_addr);
                v &= ipv4_bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> ipv4_bits);
                snprintf(out, cap, "%u.%u.%u.%u/%u", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255, ipv4_bits);
        } else if (inet_pton(AF_INET6, p, &a6) == 1) {
                memset(a6.s6_addr + 8, 0, 8);
                char buf[INET6_ADDRSTRLEN];
                inet_ntop(AF_INET6, &a6, buf, sizeof buf);
                snprintf(out, cap, "%s/64", buf);
        } else {
                snprintf(out, cap, "%s", p);
        }
}
