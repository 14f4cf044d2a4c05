/* Agent wire protocol: framing, encode, decode. No I/O, so it is fuzzed directly
 * (tests/fuzz/fuzz_agent_proto.c). Never trust a length before checking it against the limit. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "agent/proto.h"
#include "common/cleanup.h"

void agent_parser_init(AgentParser *p, uint32_t max)
{
        frame_parser_init(p, AGENT_MAGIC, AGENT_PROTO_VERSION, max && max < AGENT_FRAME_MAX ? max : AGENT_FRAME_MAX);
}

void agent_parser_free(AgentParser *p) { frame_parser_free(p); }

int agent_parser_feed(AgentParser *p, const uint8_t *data, size_t len, size_t *consumed, AgentFrame *ret)
{
        return frame_parser_feed(p, data, len, consumed, ret);
}

static bool chars_in(const char *s, const char *extra)
{
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(extra, *s)))
                        return false;
        return true;
}

int agent_disks_check(const AgentDisk *disks, unsigned n)
{
        unsigned profiles = 0;
        if (n < 1 || n > AGENT_DISKS_MAX)
                return -EBADMSG;
        for (unsigned i = 0; i < n; i++) {
                const AgentDisk *d = &disks[i];
                size_t sl = strnlen(d->serial, sizeof d->serial), nl = strnlen(d->name, sizeof d->name);
                if (sl < 1 || sl > AGENT_DISK_SERIAL_MAX || !chars_in(d->serial, "-") || nl > AGENT_DISK_NAME_MAX ||
                    !chars_in(d->name, "._+-"))
                        return -EBADMSG;
                if (d->kind == AGENT_DISK_LAYER && nl == 0)
                        return -EBADMSG;
                if (d->length == 0 || d->offset % AGENT_DISK_ALIGN || d->length % AGENT_DISK_ALIGN ||
                    d->offset > UINT64_MAX - d->length)
                        return -EBADMSG;
                for (unsigned j = 0; j < i; j++)
                        if (!strcmp(disks[j].serial, d->serial) && d->offset < disks[j].offset + disks[j].length &&
                            disks[j].offset < d->offset + d->length)
                                return -EBADMSG;
                if (d->kind == AGENT_DISK_PROFILE)
                        profiles++;
                else if (d->kind != AGENT_DISK_LAYER)
                        return -EBADMSG;
        }
        return profiles <= 1 ? 0 : -EBADMSG;
}

/* IDENTITY and IDENTIFIED: both sides check every field's characters, so the agent can write
 * them into files and the host into its database and log. */
static int identity_read(Reader *r, AgentMsg *m, bool from_host)
{
        const uint8_t *b;
        if (reader_string(r, m->identity.boot_id, AGENT_BOOT_ID_MAX) < 0 ||
            reader_string(r, m->identity.hostname, AGENT_HOSTNAME_MAX) < 0 ||
            reader_string(r, m->identity.machine_id, AGENT_MACHINE_ID_LEN) < 0)
                return -EBADMSG;
        if (!chars_in(m->identity.boot_id, "-") || strpbrk(m->identity.boot_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ||
            !chars_in(m->identity.hostname, "-") || strpbrk(m->identity.hostname, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ||
            strspn(m->identity.machine_id, "0123456789abcdef") != strlen(m->identity.machine_id))
                return -EBADMSG;
        /* The host always gives both; the guest says what it has (nothing, if it could not write). */
        size_t ml = strlen(m->identity.machine_id);
        if ((from_host && (!m->identity.hostname[0] || ml != AGENT_MACHINE_ID_LEN)) ||
            (ml != 0 && ml != AGENT_MACHINE_ID_LEN))
                return -EBADMSG;
        if (reader_bytes(r, AGENT_TOKEN_SIZE, &b) < 0)
                return -EBADMSG;
        memcpy(m->identity.token, b, AGENT_TOKEN_SIZE);
        if (from_host) {
                if (reader_bytes(r, AGENT_ENTROPY_SIZE, &b) < 0 || reader_u64(r, &m->identity.realtime_ms) < 0)
                        return -EBADMSG;
                memcpy(m->identity.entropy, b, AGENT_ENTROPY_SIZE);
        } else {
                if (reader_bytes(r, AGENT_RNG_SAMPLE_SIZE, &b) < 0 || reader_u8(r, &m->identity.flags) < 0)
                        return -EBADMSG;
                memcpy(m->identity.rng_sample, b, AGENT_RNG_SAMPLE_SIZE);
        }
        return 0;
}

/* The optional disk list after SESSION_START's height: absent, or 1..AGENT_DISKS_MAX valid disks. */
static int session_disks_read(Reader *r, AgentMsg *m)
{
        if (reader_remaining(r) == 0)
                return 0;
        uint8_t n;
        if (reader_u8(r, &n) < 0 || n < 1 || n > AGENT_DISKS_MAX)
                return -EBADMSG;
        for (unsigned i = 0; i < n; i++) {
                AgentDisk *d = &m->session_start.disks[i];
                if (reader_u8(r, &d->kind) < 0 || reader_string(r, d->serial, AGENT_DISK_SERIAL_MAX) < 0 ||
                    reader_string(r, d->name, AGENT_DISK_NAME_MAX) < 0 || reader_u64(r, &d->offset) < 0 ||
                    reader_u64(r, &d->length) < 0)
                        return -EBADMSG;
        }
        m->session_start.n_disks = n;
        return agent_disks_check(m->session_start.disks, n);
}

int agent_msg_decode(const AgentFrame *f, AgentMsg *ret)
{
        Reader r = reader_init(f->payload, f->len);
        AgentMsg m = { .type = f->type };

        switch (f->type) {
        case AGENT_MSG_HELLO:
                if (reader_string(&r, m.hello.agent_version, AGENT_STRING_MAX) < 0 ||
                    reader_u32(&r, &m.hello.capabilities) < 0 ||
                    reader_string(&r, m.hello.boot_id, AGENT_STRING_MAX) < 0)
                        return -EBADMSG;
                break;
        case AGENT_MSG_READY:
                break;
        case AGENT_MSG_HEARTBEAT:
                if (reader_u64(&r, &m.heartbeat.seq) < 0 || reader_u64(&r, &m.heartbeat.uptime_ms) < 0)
                        return -EBADMSG;
                break;
        case AGENT_MSG_SESSION_START:
                if (reader_string(&r, m.session_start.user, AGENT_STRING_MAX) < 0 ||
                    reader_u32(&r, &m.session_start.uid) < 0 || reader_u16(&r, &m.session_start.width) < 0 ||
                    reader_u16(&r, &m.session_start.height) < 0 || session_disks_read(&r, &m) < 0)
                        return -EBADMSG;
                break;
        case AGENT_MSG_SESSION_STOP:
                if (reader_string(&r, m.session_stop.reason, AGENT_STRING_MAX) < 0)
                        return -EBADMSG;
                break;
        case AGENT_MSG_SESSION_STATE:
                if (reader_u8(&r, &m.session_state.state) < 0 ||
                    m.session_state.state < AGENT_SESSION_STARTED || m.session_state.state > AGENT_SESSION_USABLE ||
                    reader_string(&r, m.session_state.detail, AGENT_STRING_MAX) < 0)
                        return -EBADMSG;
                break;
        case AGENT_MSG_IDENTITY:
        case AGENT_MSG_IDENTIFIED:
                if (identity_read(&r, &m, f->type == AGENT_MSG_IDENTITY) < 0)
                        return -EBADMSG;
                break;
        default:
                return -EBADMSG;
        }
        /* Trailing bytes mean the peer speaks something else: refuse rather than guess. */
        if (reader_remaining(&r) != 0)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int agent_msg_encode(const AgentMsg *m, Writer *w)
{
        Writer body;
        writer_init(&body, AGENT_FRAME_MAX);
        switch (m->type) {
        case AGENT_MSG_HELLO:
                writer_string(&body, m->hello.agent_version);
                writer_u32(&body, m->hello.capabilities);
                writer_string(&body, m->hello.boot_id);
                break;
        case AGENT_MSG_READY:
                break;
        case AGENT_MSG_HEARTBEAT:
                writer_u64(&body, m->heartbeat.seq);
                writer_u64(&body, m->heartbeat.uptime_ms);
                break;
        case AGENT_MSG_SESSION_START:
                writer_string(&body, m->session_start.user);
                writer_u32(&body, m->session_start.uid);
                writer_u16(&body, m->session_start.width);
                writer_u16(&body, m->session_start.height);
                if (m->session_start.n_disks > AGENT_DISKS_MAX) {
                        writer_free(&body);
                        return -EINVAL;
                }
                if (m->session_start.n_disks > 0)
                        writer_u8(&body, m->session_start.n_disks);
                for (unsigned i = 0; i < m->session_start.n_disks; i++) {
                        writer_u8(&body, m->session_start.disks[i].kind);
                        writer_string(&body, m->session_start.disks[i].serial);
                        writer_string(&body, m->session_start.disks[i].name);
                        writer_u64(&body, m->session_start.disks[i].offset);
                        writer_u64(&body, m->session_start.disks[i].length);
                }
                break;
        case AGENT_MSG_SESSION_STOP:
                writer_string(&body, m->session_stop.reason);
                break;
        case AGENT_MSG_SESSION_STATE:
                writer_u8(&body, m->session_state.state);
                writer_string(&body, m->session_state.detail);
                break;
        case AGENT_MSG_IDENTITY:
        case AGENT_MSG_IDENTIFIED:
                writer_string(&body, m->identity.boot_id);
                writer_string(&body, m->identity.hostname);
                writer_string(&body, m->identity.machine_id);
                writer_bytes(&body, m->identity.token, AGENT_TOKEN_SIZE);
                if (m->type == AGENT_MSG_IDENTITY) {
                        writer_bytes(&body, m->identity.entropy, AGENT_ENTROPY_SIZE);
                        writer_u64(&body, m->identity.realtime_ms);
                } else {
                        writer_bytes(&body, m->identity.rng_sample, AGENT_RNG_SAMPLE_SIZE);
                        writer_u8(&body, m->identity.flags);
                }
                break;
        default:
                writer_free(&body);
                return -EINVAL;
        }
        int r = frame_write(w, AGENT_MAGIC, AGENT_PROTO_VERSION, (uint8_t)m->type, &body);
        writer_free(&body);
        return r;
}

const char *agent_msg_type_name(uint8_t type)
{
        switch (type) {
        case AGENT_MSG_HELLO: return "hello";
        case AGENT_MSG_READY: return "ready";
        case AGENT_MSG_HEARTBEAT: return "heartbeat";
        case AGENT_MSG_SESSION_START: return "session-start";
        case AGENT_MSG_SESSION_STOP: return "session-stop";
        case AGENT_MSG_SESSION_STATE: return "session-state";
        case AGENT_MSG_IDENTITY: return "identity";
        case AGENT_MSG_IDENTIFIED: return "identified";
        default: return "unknown";
        }
}
