/* Agent wire protocol: framing, encode, decode. No I/O, so it is fuzzed directly
 * (tests/fuzz/fuzz_agent_proto.c). Never trust a length before checking it against the limit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "agent/proto.h"
#include "common/cleanup.h"

void agent_parser_init(AgentParser *p, uint32_t max)
{
        *p = (AgentParser){ .max = max && max < AGENT_FRAME_MAX ? max : AGENT_FRAME_MAX };
}

void agent_parser_free(AgentParser *p)
{
        free(p->payload);
        p->payload = NULL;
}

int agent_parser_feed(AgentParser *p, const uint8_t *data, size_t len, size_t *consumed, AgentFrame *ret)
{
        size_t used = 0;

        /* A completed frame is released on the next call. */
        if (p->hdr_len == AGENT_HEADER_SIZE && p->got == p->payload_len) {
                p->hdr_len = 0;
                p->got = p->payload_len = 0;
        }
        while (p->hdr_len < AGENT_HEADER_SIZE && used < len)
                p->hdr[p->hdr_len++] = data[used++];
        if (p->hdr_len < AGENT_HEADER_SIZE) {
                *consumed = used;
                return 0;
        }
        if (p->got == 0 && p->payload_len == 0) {
                Reader r = reader_init(p->hdr, AGENT_HEADER_SIZE);
                uint16_t magic;
                uint32_t plen;
                reader_u16(&r, &magic);
                reader_u8(&r, &p->version);
                reader_u8(&r, &p->type);
                reader_u32(&r, &plen);
                if (magic != AGENT_MAGIC || p->version != AGENT_PROTO_VERSION) {
                        *consumed = used;
                        return -EBADMSG;
                }
                if (plen > p->max) {
                        *consumed = used;
                        return -EMSGSIZE;
                }
                if (plen > 0) {
                        uint8_t *b = realloc(p->payload, plen);
                        if (!b) {
                                *consumed = used;
                                return -ENOMEM;
                        }
                        p->payload = b;
                }
                p->payload_len = plen;
        }
        size_t take = MIN((size_t)(p->payload_len - p->got), len - used);
        if (take)
                memcpy(p->payload + p->got, data + used, take);
        p->got += (uint32_t)take;
        used += take;
        *consumed = used;
        if (p->got < p->payload_len)
                return 0;
        *ret = (AgentFrame){ .type = p->type, .version = p->version, .payload = p->payload, .len = p->payload_len };
        return 1;
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
        default:
                writer_free(&body);
                return -EINVAL;
        }
        int r = body.error;
        if (r == 0) {
                writer_u16(w, AGENT_MAGIC);
                writer_u8(w, AGENT_PROTO_VERSION);
                writer_u8(w, (uint8_t)m->type);
                writer_u32(w, (uint32_t)body.len);
                writer_bytes(w, body.data, body.len);
                r = w->error;
        }
        writer_free(&body);
        return r;
}

const char *agent_msg_type_name(uint8_t type)
{
        switch (type) {
        case AGENT_MSG_HELLO: return "hello";
        case AGENT_MSG_READY: return "ready";
        case AGENT_MSG_HEARTBEAT: return "heartbeat";
        default: return "unknown";
        }
}
