/* slate-agent's IDENTITY: after a clone resumes, everything the guest holds is its template's (and
 * every other clone's): RNG state, clock, machine-id, hostname, boot id, canary. The host's
 * IDENTITY replaces each; IDENTIFIED says what the guest now sees. Never keeps the token
 * anywhere but in memory. */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
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

/* The test guest's canary (tests/guest/README.md), from the new boot id: the erasure checks
 * must tell clones apart, and the template's canary is in every clone's backing file. */
static int canary_write(const char *boot_id)
{
        char cmd[128], line[128];
        if (strlen(boot_id) > AGENT_BOOT_ID_MAX)
                return -EINVAL;
        /* boot_id is [0-9a-f-] only (proto.c checks): safe inside the quotes. */
        snprintf(cmd, sizeof cmd, "printf %%s '%.36s' | sha256sum", boot_id);
        FILE *p = popen(cmd, "r");
        if (!p)
                return -errno;
        char hex[65] = "";
        int ok = fscanf(p, "%64s", hex) == 1 && strlen(hex) == 64;
        pclose(p);
        if (!ok)
                return -EIO;
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
