/* slate-agent's IDENTITY: after a clone resumes, everything the guest holds is its template's (and
 * every other clone's): RNG state, clock, machine-id, hostname, boot id, canary. The host's
 * IDENTITY replaces each; IDENTIFIED says what the guest now sees. Never keeps the token
 * anywhere but in memory. */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "agent/agent_int.h"

#define CANARY_PATH "/var/canary"
#define CANARY_LINES 100

/* RNDADDENTROPY credits the host's bytes, RNDRESEEDCRNG makes the crng use them at once: without
 * the second, clones started with the same vmgenid GUID gave the same urandom bytes (research). */
static int reseed(const uint8_t *bytes, size_t n)
{
        struct {
                struct rand_pool_info info;
                uint8_t buf[AGENT_ENTROPY_SIZE];
        } e;
        memset(&e, 0, sizeof e);
        e.info.entropy_count = (int)(n * 8);
        e.info.buf_size = (int)n;
        memcpy(e.buf, bytes, n);
        int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = 0;
        if (ioctl(fd, RNDADDENTROPY, &e) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
                r = -errno;
        close(fd);
        memset(&e, 0, sizeof e);
        return r;
}

/* Whole-file replace: a crash leaves the old file or the new one. No fsync: a desktop that
 * crashes is destroyed, never booted again, and under TCG each flush costs the clone time. */
static int write_file(const char *path, const char *text, mode_t mode)
{
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s.slate-new", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        size_t n = strlen(text);
        int r = write(fd, text, n) == (ssize_t)n ? 0 : -EIO;
        close(fd);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

/* SHA-256 (FIPS 180-4), for the canary only: the agent links nothing but libc, and running
 * sha256sum costs a clone two fork+execs under TCG. */
static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
        uint32_t w[64], a, b, c, d, e, f, g, k;
        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++)
                w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3)) + w[i - 7] +
                       (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10));
        a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
        for (int i = 0; i < 64; i++) {
                uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
                uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

/* msg of at most 55 bytes (one block): what a boot id needs. */
static void sha256_hex_short(const char *msg, char out[65])
{
        uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
        uint8_t blk[64] = { 0 };
        size_t n = strlen(msg);
        memcpy(blk, msg, n);
        blk[n] = 0x80;
        blk[62] = (uint8_t)((n * 8) >> 8);
        blk[63] = (uint8_t)(n * 8);
        sha256_block(h, blk);
        for (int i = 0; i < 8; i++)
                snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* The test guest's canary (tests/guest/README.md), from the new boot id: the erasure checks
 * must tell clones apart, and the template's canary is in every clone's backing file. */
static int canary_write(const char *boot_id)
{
        char hex[65], line[128];
        if (strlen(boot_id) > AGENT_BOOT_ID_MAX)
                return -EINVAL;
        sha256_hex_short(boot_id, hex);
        FILE *f = fopen(CANARY_PATH ".slate-new", "we");
        if (!f)
                return -errno;
        snprintf(line, sizeof line, "SLATE-CANARY-%s\n", hex);
        for (int i = 0; i < CANARY_LINES; i++)
                fputs(line, f);
        int r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -EIO;
        fclose(f);
        if (r == 0 && rename(CANARY_PATH ".slate-new", CANARY_PATH) < 0)
                r = -errno;
        return r;
}

/* The hostname resolves to the host itself, as Debian does it (127.0.1.1): programs that look up
 * their own name (sudo, X clients) otherwise wait or warn. The other lines stay as they were. */
static int hosts_update(const char *hostname)
{
        char buf[16384], out[sizeof buf + 128];
        size_t o = 0;
        FILE *f = fopen("/etc/hosts", "re");
        if (f) {
                size_t n = fread(buf, 1, sizeof buf - 1, f);
                bool whole = feof(f);
                fclose(f);
                if (!whole)
                        return -EFBIG;
                buf[n] = 0;
                for (char *l = buf, *e; *l; l = e) {
                        e = strchr(l, '\n');
                        e = e ? e + 1 : l + strlen(l);
                        if (strncmp(l, "127.0.1.1", 9) == 0 && (l[9] == ' ' || l[9] == '\t'))
                                continue;
                        memcpy(out + o, l, (size_t)(e - l));
                        o += (size_t)(e - l);
                        if (o && out[o - 1] != '\n')
                                out[o++] = '\n';
                }
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "127.0.1.1\t%s\n", hostname);
        out[o] = 0;
        return write_file("/etc/hosts", out, 0644);
}

int identity_apply(Agent *a, const AgentMsg *m)
{
        AgentMsg out = { .type = AGENT_MSG_IDENTIFIED };
        uint8_t flags = 0;
        int r = reseed(m->identity.entropy, AGENT_ENTROPY_SIZE);
        if (r == 0)
                flags |= AGENT_IDENTITY_RESEEDED;
        else
                log_agent("identity: reseeding the RNG: %s", strerror(-r));
        struct timespec ts = { .tv_sec = (time_t)(m->identity.realtime_ms / 1000),
                               .tv_nsec = (long)(m->identity.realtime_ms % 1000) * 1000000L };
        if (m->identity.realtime_ms && clock_settime(CLOCK_REALTIME, &ts) == 0)
                flags |= AGENT_IDENTITY_CLOCK;
        else if (m->identity.realtime_ms)
                log_agent("identity: setting the clock: %s", strerror(errno));

        char text[80];
        snprintf(text, sizeof text, "%s\n", m->identity.machine_id);
        if ((r = write_file("/etc/machine-id", text, 0444)) < 0)
                log_agent("identity: /etc/machine-id: %s", strerror(-r));
        if (sethostname(m->identity.hostname, strlen(m->identity.hostname)) < 0)
                log_agent("identity: sethostname: %s", strerror(errno));
        snprintf(text, sizeof text, "%s\n", m->identity.hostname);
        if ((r = write_file("/etc/hostname", text, 0644)) < 0)
                log_agent("identity: /etc/hostname: %s", strerror(-r));
        if ((r = hosts_update(m->identity.hostname)) < 0)
                log_agent("identity: /etc/hosts: %s", strerror(-r));
        if (m->identity.boot_id[0]) {
                snprintf(a->boot_id, sizeof a->boot_id, "%s", m->identity.boot_id);
                if (a->capabilities & AGENT_CAP_CANARY) {
                        if ((r = canary_write(a->boot_id)) == 0)
                                flags |= AGENT_IDENTITY_CANARY;
                        else
                                log_agent("identity: canary: %s", strerror(-r));
                }
        }
        memcpy(a->token, m->identity.token, sizeof a->token);
        a->identified = true;

        /* What the guest now sees, read back rather than echoed. */
        char buf[AGENT_STRING_MAX + 1];
        if (agent_read_line("/etc/machine-id", buf, sizeof buf) == 0)
                snprintf(out.identity.machine_id, sizeof out.identity.machine_id, "%.32s", buf);
        if (gethostname(buf, sizeof buf) == 0)
                snprintf(out.identity.hostname, sizeof out.identity.hostname, "%.63s", buf);
        snprintf(out.identity.boot_id, sizeof out.identity.boot_id, "%.36s", a->boot_id);
        memcpy(out.identity.token, a->token, sizeof a->token);
        if (getrandom(out.identity.rng_sample, sizeof out.identity.rng_sample, 0) !=
            (ssize_t)sizeof out.identity.rng_sample)
                log_agent("identity: getrandom: %s", strerror(errno));
        out.identity.flags = flags;
        log_agent("identity: hostname %s, boot id %s%s%s%s", out.identity.hostname, out.identity.boot_id,
                  flags & AGENT_IDENTITY_RESEEDED ? ", RNG reseeded" : "", flags & AGENT_IDENTITY_CLOCK ? ", clock set" : "",
                  flags & AGENT_IDENTITY_CANARY ? ", canary written" : "");
        return agent_send(a, &out);
}
