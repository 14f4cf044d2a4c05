/* Length-prefixed frames shared by every binary protocol of Slate (guest agent, slated ⇄
 * slate-session IPC): u16 magic, u8 version, u8 type, u32 payload length (big-endian), payload.
 * The length is checked against the parser's limit before any allocation. No I/O here. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "common/reader.h"

#define FRAME_HEADER_SIZE 8

typedef struct FrameParser {
        uint16_t magic;
        uint8_t want_version;
        uint8_t hdr[FRAME_HEADER_SIZE];
        size_t hdr_len;
        uint8_t type;
        uint8_t version;
        uint8_t *payload;
        uint32_t payload_len;
        uint32_t got;
        uint32_t max;               /* payload limit */
} FrameParser;

typedef struct Frame {
        uint8_t type;
        uint8_t version;
        const uint8_t *payload;     /* valid until the next frame_parser_feed */
        uint32_t len;
} Frame;

void frame_parser_init(FrameParser *p, uint16_t magic, uint8_t version, uint32_t max);
void frame_parser_free(FrameParser *p);
/* Lower or raise the payload limit (e.g. after authentication); takes effect at the next frame. */
void frame_parser_set_max(FrameParser *p, uint32_t max);
/* Consume bytes from data[0..len). Returns 1 with *ret set when a frame is complete
 * (*consumed says how much was used; call again with the rest), 0 when all was consumed and
 * more is needed, -EBADMSG on bad magic/version, -EMSGSIZE when over the limit.
 * After an error the parser must not be fed again. */
int frame_parser_feed(FrameParser *p, const uint8_t *data, size_t len, size_t *consumed, Frame *ret);
/* Append header + body as one frame to w. */
int frame_write(Writer *w, uint16_t magic, uint8_t version, uint8_t type, const Writer *body);
