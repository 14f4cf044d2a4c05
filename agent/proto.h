/* Wire protocol between slated and slate-agent (virtio-serial), shared by both sides.
 * Frame: u16 magic "SL", u8 version, u8 type, u32 payload length (big-endian), payload.
 * The length is checked against AGENT_FRAME_MAX before any allocation. The guest is hostile:
 * the broker decodes every payload through common/reader and enforces a permit table. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/reader.h"

#define AGENT_MAGIC 0x534c          /* "SL" */
#define AGENT_PROTO_VERSION 1
#define AGENT_HEADER_SIZE 8
/* Largest payload either side accepts; session messages (user, apps) fit easily. */
#define AGENT_FRAME_MAX (64u * 1024)
#define AGENT_STRING_MAX 255
#define AGENT_PORT_NAME "org.slate.agent.0"

typedef enum AgentMsgType {
        AGENT_MSG_HELLO = 1,        /* agent → host: version, capabilities, boot id */
        AGENT_MSG_READY = 2,        /* agent → host: desktop can take a session */
        AGENT_MSG_HEARTBEAT = 3,    /* host → agent ping; agent echoes seq back */
        _AGENT_MSG_MAX,
} AgentMsgType;

/* Capability bits announced in HELLO. */
enum {
        AGENT_CAP_SESSION = 1u << 0,
        AGENT_CAP_CANARY = 1u << 1, /* test guest: writes a canary derived from boot id */
};

typedef struct AgentMsg {
        AgentMsgType type;
        union {
                struct {
                        char agent_version[AGENT_STRING_MAX + 1];
                        uint32_t capabilities;
                        char boot_id[AGENT_STRING_MAX + 1];
                } hello;
                struct {
                        uint64_t seq;
                        uint64_t uptime_ms; /* agent side only; 0 from the host */
                } heartbeat;
        };
} AgentMsg;

/* Incremental frame parser: feed bytes as they arrive. */
typedef struct AgentParser {
        uint8_t hdr[AGENT_HEADER_SIZE];
        size_t hdr_len;
        uint8_t type;
        uint8_t version;
        uint8_t *payload;
        uint32_t payload_len;
        uint32_t got;
        uint32_t max;               /* payload limit; AGENT_FRAME_MAX unless lowered */
} AgentParser;

typedef struct AgentFrame {
        uint8_t type;
        uint8_t version;
        const uint8_t *payload;     /* valid until the next agent_parser_feed */
        uint32_t len;
} AgentFrame;

void agent_parser_init(AgentParser *p, uint32_t max);
void agent_parser_free(AgentParser *p);
/* Consume bytes from data[0..len). Returns 1 with *ret set when a frame is complete
 * (*consumed says how much was used; call again with the rest), 0 when all was consumed
 * and more is needed, -EBADMSG on bad magic/version, -EMSGSIZE when over the limit.
 * After an error the parser must not be fed again. */
int agent_parser_feed(AgentParser *p, const uint8_t *data, size_t len, size_t *consumed, AgentFrame *ret);

/* Decode a complete frame into a message; -EBADMSG on a malformed or unknown payload. */
int agent_msg_decode(const AgentFrame *f, AgentMsg *ret);
/* Encode a message as one complete frame into w (header included). */
int agent_msg_encode(const AgentMsg *m, Writer *w);
const char *agent_msg_type_name(uint8_t type);
