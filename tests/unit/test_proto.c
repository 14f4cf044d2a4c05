/* Agent wire protocol: what slated accepts from an untrusted guest and what slate-agent sends.
 * Parser and codec only (no I/O), so every edge is tested directly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/proto.h"

/* Encodes m into a freshly allocated frame; the caller frees w. */
static void encode(const AgentMsg *m, Writer *w)
{
        writer_init(w, AGENT_HEADER_SIZE + AGENT_FRAME_MAX);
        cr_assert_eq(agent_msg_encode(m, w), 0);
}

static void header(uint8_t *h, uint16_t magic, uint8_t version, uint8_t type, uint32_t len)
{
        h[0] = magic >> 8, h[1] = (uint8_t)magic, h[2] = version, h[3] = type;
        h[4] = len >> 24, h[5] = len >> 16, h[6] = len >> 8, h[7] = (uint8_t)len;
}

/* Feeds all of buf at once and expects exactly one complete frame using all bytes. */
static void parse_one(AgentParser *p, const uint8_t *buf, size_t len, AgentFrame *f)
{
        size_t used = 0;
        cr_assert_eq(agent_parser_feed(p, buf, len, &used, f), 1);
        cr_assert_eq(used, len);
}

static AgentMsg hello_msg(void)
{
        AgentMsg m = { .type = AGENT_MSG_HELLO };
        strcpy(m.hello.agent_version, "0.1.0");
        m.hello.capabilities = AGENT_CAP_SESSION | AGENT_CAP_CANARY;
        strcpy(m.hello.boot_id, "0b6c2a4e-7f1d-4c1e-9d7a-3c5e8f1a2b3c");
        return m;
}

static void roundtrip(const AgentMsg *in, AgentMsg *out)
{
        Writer w;
        encode(in, &w);
        AgentParser p;
        AgentFrame f;
        agent_parser_init(&p, 0);
        parse_one(&p, w.data, w.len, &f);
        cr_assert_eq(f.type, in->type);
        cr_assert_eq(f.version, AGENT_PROTO_VERSION);
        cr_assert_eq(agent_msg_decode(&f, out), 0);
        agent_parser_free(&p);
        writer_free(&w);
}

Test(proto, hello_roundtrips_version_capabilities_and_boot_id)
{
        AgentMsg in = hello_msg(), out;
        roundtrip(&in, &out);
        cr_assert_eq(out.type, AGENT_MSG_HELLO);
        cr_assert_str_eq(out.hello.agent_version, "0.1.0");
        cr_assert_eq(out.hello.capabilities, AGENT_CAP_SESSION | AGENT_CAP_CANARY);
        cr_assert_str_eq(out.hello.boot_id, in.hello.boot_id);
}

Test(proto, hello_with_longest_allowed_strings_roundtrips)
{
        AgentMsg in = { .type = AGENT_MSG_HELLO }, out;
        memset(in.hello.agent_version, 'v', AGENT_STRING_MAX);
        memset(in.hello.boot_id, 'b', AGENT_STRING_MAX);
        roundtrip(&in, &out);
        cr_assert_eq(strlen(out.hello.agent_version), AGENT_STRING_MAX);
        cr_assert_eq(strlen(out.hello.boot_id), AGENT_STRING_MAX);
}

Test(proto, ready_roundtrips_with_empty_payload)
{
        AgentMsg in = { .type = AGENT_MSG_READY }, out;
        Writer w;
        encode(&in, &w);
        cr_assert_eq(w.len, AGENT_HEADER_SIZE);
        writer_free(&w);
        roundtrip(&in, &out);
        cr_assert_eq(out.type, AGENT_MSG_READY);
}

Test(proto, heartbeat_roundtrips_full_64_bit_values)
{
        AgentMsg in = { .type = AGENT_MSG_HEARTBEAT, .heartbeat = { 0xfedcba9876543210ull, 0x0123456789abcdefull } };
        AgentMsg out;
        roundtrip(&in, &out);
        cr_assert_eq(out.heartbeat.seq, 0xfedcba9876543210ull);
        cr_assert_eq(out.heartbeat.uptime_ms, 0x0123456789abcdefull);
}

Test(proto, header_is_big_endian_magic_version_type_length)
{
        AgentMsg in = { .type = AGENT_MSG_HEARTBEAT, .heartbeat = { 1, 2 } };
        Writer w;
        encode(&in, &w);
        const uint8_t want[] = { 'S', 'L', 1, 3, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2 };
        cr_assert_eq(w.len, sizeof want);
        cr_assert_arr_eq(w.data, want, sizeof want);
        writer_free(&w);
}

Test(proto, encode_refuses_unknown_type)
{
        Writer w;
        writer_init(&w, AGENT_FRAME_MAX);
        cr_assert_eq(agent_msg_encode(&(AgentMsg){ .type = 42 }, &w), -EINVAL);
        cr_assert_eq(w.len, 0);
        writer_free(&w);
}

Test(proto, frame_split_at_every_byte_boundary_parses_the_same)
{
        AgentMsg in = hello_msg();
        Writer w;
        encode(&in, &w);
        for (size_t cut = 0; cut <= w.len; cut++) {
                AgentParser p;
                AgentFrame f;
                size_t used = 0;
                agent_parser_init(&p, 0);
                if (cut > 0) {
                        int r = agent_parser_feed(&p, w.data, cut, &used, &f);
                        cr_assert_eq(r, cut == w.len ? 1 : 0, "cut %zu", cut);
                        cr_assert_eq(used, cut);
                }
                if (cut < w.len) {
                        cr_assert_eq(agent_parser_feed(&p, w.data + cut, w.len - cut, &used, &f), 1, "cut %zu", cut);
                        cr_assert_eq(used, w.len - cut);
                }
                AgentMsg out;
                cr_assert_eq(agent_msg_decode(&f, &out), 0, "cut %zu", cut);
                cr_assert_str_eq(out.hello.boot_id, in.hello.boot_id);
                agent_parser_free(&p);
        }
        writer_free(&w);
}

Test(proto, frame_fed_one_byte_at_a_time_parses)
{
        AgentMsg in = { .type = AGENT_MSG_HEARTBEAT, .heartbeat = { 77, 0 } };
        Writer w;
        encode(&in, &w);
        AgentParser p;
        AgentFrame f;
        agent_parser_init(&p, 0);
        for (size_t i = 0; i < w.len; i++) {
                size_t used = 0;
                cr_assert_eq(agent_parser_feed(&p, w.data + i, 1, &used, &f), i + 1 == w.len ? 1 : 0);
                cr_assert_eq(used, 1);
        }
        AgentMsg out;
        cr_assert_eq(agent_msg_decode(&f, &out), 0);
        cr_assert_eq(out.heartbeat.seq, 77);
        agent_parser_free(&p);
        writer_free(&w);
}

Test(proto, two_frames_in_one_buffer_come_out_one_after_the_other)
{
        Writer w;
        writer_init(&w, 2 * (AGENT_HEADER_SIZE + AGENT_FRAME_MAX));
        AgentMsg hello = hello_msg();
        cr_assert_eq(agent_msg_encode(&hello, &w), 0);
        size_t first = w.len;
        cr_assert_eq(agent_msg_encode(&(AgentMsg){ .type = AGENT_MSG_READY }, &w), 0);

        AgentParser p;
        AgentFrame f;
        size_t used = 0;
        agent_parser_init(&p, 0);
        cr_assert_eq(agent_parser_feed(&p, w.data, w.len, &used, &f), 1);
        cr_assert_eq(used, first);
        cr_assert_eq(f.type, AGENT_MSG_HELLO);
        size_t used2 = 0;
        cr_assert_eq(agent_parser_feed(&p, w.data + used, w.len - used, &used2, &f), 1);
        cr_assert_eq(used2, w.len - first);
        cr_assert_eq(f.type, AGENT_MSG_READY);
        cr_assert_eq(f.len, 0);
        /* Nothing left: the parser waits for the next header. */
        cr_assert_eq(agent_parser_feed(&p, w.data, 0, &used, &f), 0);
        cr_assert_eq(used, 0);
        agent_parser_free(&p);
        writer_free(&w);
}

Test(proto, bad_magic_is_rejected)
{
        uint8_t h[AGENT_HEADER_SIZE];
        header(h, 0x4c53, AGENT_PROTO_VERSION, AGENT_MSG_READY, 0);
        AgentParser p;
        AgentFrame f;
        size_t used;
        agent_parser_init(&p, 0);
        cr_assert_eq(agent_parser_feed(&p, h, sizeof h, &used, &f), -EBADMSG);
        cr_assert_null(p.payload);
        agent_parser_free(&p);
}

Test(proto, unknown_version_is_rejected)
{
        uint8_t h[AGENT_HEADER_SIZE];
        AgentParser p;
        AgentFrame f;
        size_t used;
        for (unsigned v = 0; v < 256; v++) {
                if (v == AGENT_PROTO_VERSION)
                        continue;
                header(h, AGENT_MAGIC, (uint8_t)v, AGENT_MSG_READY, 0);
                agent_parser_init(&p, 0);
                cr_assert_eq(agent_parser_feed(&p, h, sizeof h, &used, &f), -EBADMSG, "version %u", v);
                agent_parser_free(&p);
        }
}

Test(proto, length_over_limit_is_rejected_before_allocating)
{
        uint8_t h[AGENT_HEADER_SIZE];
        AgentParser p;
        AgentFrame f;
        size_t used;
        const uint32_t lens[] = { AGENT_FRAME_MAX + 1, 0x7fffffffu, 0xffffffffu };
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
                header(h, AGENT_MAGIC, AGENT_PROTO_VERSION, AGENT_MSG_HELLO, lens[i]);
                agent_parser_init(&p, 0);
                cr_assert_eq(agent_parser_feed(&p, h, sizeof h, &used, &f), -EMSGSIZE, "len %u", lens[i]);
                cr_assert_null(p.payload, "len %u allocated", lens[i]);
                agent_parser_free(&p);
        }
}

Test(proto, length_at_limit_is_accepted)
{
        uint8_t h[AGENT_HEADER_SIZE];
        header(h, AGENT_MAGIC, AGENT_PROTO_VERSION, AGENT_MSG_HELLO, AGENT_FRAME_MAX);
        AgentParser p;
        AgentFrame f;
        size_t used;
        agent_parser_init(&p, 0);
        cr_assert_eq(agent_parser_feed(&p, h, sizeof h, &used, &f), 0);
        cr_assert_eq(used, sizeof h);
        agent_parser_free(&p);
}

Test(proto, lowered_limit_is_enforced_and_cannot_be_raised)
{
        uint8_t h[AGENT_HEADER_SIZE];
        AgentParser p;
        AgentFrame f;
        size_t used;
        header(h, AGENT_MAGIC, AGENT_PROTO_VERSION, AGENT_MSG_HELLO, 17);
        agent_parser_init(&p, 16);
        cr_assert_eq(agent_parser_feed(&p, h, sizeof h, &used, &f), -EMSGSIZE);
        cr_assert_null(p.payload);
        agent_parser_free(&p);

        agent_parser_init(&p, AGENT_FRAME_MAX * 4);
        cr_assert_eq(p.max, AGENT_FRAME_MAX);
        agent_parser_free(&p);
}

Test(proto, truncated_payload_waits_for_more_and_does_not_decode)
{
        AgentMsg in = hello_msg();
        Writer w;
        encode(&in, &w);
        AgentParser p;
        AgentFrame f;
        size_t used;
        agent_parser_init(&p, 0);
        cr_assert_eq(agent_parser_feed(&p, w.data, w.len - 1, &used, &f), 0);
        cr_assert_eq(used, w.len - 1);
        agent_parser_free(&p);

        /* A frame whose declared length cuts a field short is complete but malformed. */
        for (uint32_t len = 0; len + AGENT_HEADER_SIZE < w.len; len++) {
                uint8_t buf[512];
                memcpy(buf, w.data, w.len);
                header(buf, AGENT_MAGIC, AGENT_PROTO_VERSION, AGENT_MSG_HELLO, len);
                agent_parser_init(&p, 0);
                parse_one(&p, buf, AGENT_HEADER_SIZE + len, &f);
                AgentMsg out;
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "len %u", len);
                agent_parser_free(&p);
        }
        writer_free(&w);
}

Test(proto, heartbeat_with_short_payload_is_rejected)
{
        uint8_t buf[AGENT_HEADER_SIZE + 15] = { 0 };
        header(buf, AGENT_MAGIC, AGENT_PROTO_VERSION, AGENT_MSG_HEARTBEAT, 15);
        AgentParser p;
        AgentFrame f;
        AgentMsg out;
        agent_parser_init(&p, 0);
        parse_one(&p, buf, sizeof buf, &f);
        cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG);
        agent_parser_free(&p);
}

Test(proto, trailing_bytes_after_a_message_are_rejected)
{
        const uint8_t types[] = { AGENT_MSG_HELLO, AGENT_MSG_READY, AGENT_MSG_HEARTBEAT };
        for (size_t i = 0; i < sizeof types; i++) {
                AgentMsg in = types[i] == AGENT_MSG_HELLO ? hello_msg() : (AgentMsg){ .type = types[i] };
                Writer w;
                encode(&in, &w);
                /* Same message, one extra byte counted in the length. */
                writer_u8(&w, 0);
                uint32_t len = (uint32_t)(w.len - AGENT_HEADER_SIZE);
                header(w.data, AGENT_MAGIC, AGENT_PROTO_VERSION, types[i], len);
                AgentParser p;
                AgentFrame f;
                AgentMsg out;
                agent_parser_init(&p, 0);
                parse_one(&p, w.data, w.len, &f);
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "type %u", types[i]);
                agent_parser_free(&p);
                writer_free(&w);
        }
}

Test(proto, string_with_embedded_nul_is_rejected)
{
        /* HELLO: "a\0b" as agent_version, caps, empty boot id. */
        uint8_t buf[] = { 'S', 'L', 1, AGENT_MSG_HELLO, 0, 0, 0, 11, 0, 3, 'a', 0, 'b', 0, 0, 0, 1, 0, 0 };
        AgentParser p;
        AgentFrame f;
        AgentMsg out;
        agent_parser_init(&p, 0);
        parse_one(&p, buf, sizeof buf, &f);
        cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG);
        agent_parser_free(&p);

        buf[11] = 'x';
        agent_parser_init(&p, 0);
        parse_one(&p, buf, sizeof buf, &f);
        cr_assert_eq(agent_msg_decode(&f, &out), 0);
        cr_assert_str_eq(out.hello.agent_version, "axb");
        agent_parser_free(&p);
}

Test(proto, string_longer_than_limit_is_rejected)
{
        uint8_t buf[AGENT_HEADER_SIZE + 2 + 256 + 4 + 2];
        memset(buf, 'a', sizeof buf);
        header(buf, AGENT_MAGIC, AGENT_PROTO_VERSION, AGENT_MSG_HELLO, sizeof buf - AGENT_HEADER_SIZE);
        buf[8] = 1, buf[9] = 0; /* 256 bytes */
        memset(buf + 10 + 256, 0, 6);
        AgentParser p;
        AgentFrame f;
        AgentMsg out;
        agent_parser_init(&p, 0);
        parse_one(&p, buf, sizeof buf, &f);
        cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG);
        agent_parser_free(&p);
}

Test(proto, unknown_type_frames_parse_but_do_not_decode)
{
        const uint8_t types[] = { 0, _AGENT_MSG_MAX, 200, 255 };
        for (size_t i = 0; i < sizeof types; i++) {
                uint8_t buf[AGENT_HEADER_SIZE + 4] = { 0 };
                header(buf, AGENT_MAGIC, AGENT_PROTO_VERSION, types[i], 4);
                AgentParser p;
                AgentFrame f;
                AgentMsg out;
                agent_parser_init(&p, 0);
                parse_one(&p, buf, sizeof buf, &f);
                cr_assert_eq(f.type, types[i]);
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "type %u", types[i]);
                cr_assert_str_eq(agent_msg_type_name(types[i]), "unknown");
                agent_parser_free(&p);
        }
}

Test(proto, parser_reuses_buffer_across_frames_of_different_sizes)
{
        Writer w;
        writer_init(&w, 4 * (AGENT_HEADER_SIZE + AGENT_FRAME_MAX));
        AgentMsg hello = hello_msg();
        cr_assert_eq(agent_msg_encode(&hello, &w), 0);
        cr_assert_eq(agent_msg_encode(&(AgentMsg){ .type = AGENT_MSG_HEARTBEAT, .heartbeat = { 5, 6 } }, &w), 0);
        cr_assert_eq(agent_msg_encode(&hello, &w), 0);
        AgentParser p;
        agent_parser_init(&p, 0);
        size_t off = 0;
        int frames = 0;
        while (off < w.len) {
                AgentFrame f;
                AgentMsg out;
                size_t used = 0;
                cr_assert_eq(agent_parser_feed(&p, w.data + off, w.len - off, &used, &f), 1);
                off += used;
                cr_assert_eq(agent_msg_decode(&f, &out), 0);
                frames++;
        }
        cr_assert_eq(frames, 3);
        agent_parser_free(&p);
        agent_parser_free(&p); /* idempotent */
        writer_free(&w);
}

Test(proto, session_start_roundtrips_user_uid_and_resolution)
{
        AgentMsg in = { .type = AGENT_MSG_SESSION_START,
                        .session_start = { .user = "alice", .uid = 0xfedcba98u, .width = 1280, .height = 800 } };
        AgentMsg out;
        roundtrip(&in, &out);
        cr_assert_eq(out.type, AGENT_MSG_SESSION_START);
        cr_assert_str_eq(out.session_start.user, "alice");
        cr_assert_eq(out.session_start.uid, 0xfedcba98u);
        cr_assert_eq(out.session_start.width, 1280);
        cr_assert_eq(out.session_start.height, 800);
}

Test(proto, session_start_wire_layout_is_string_u32_u16_u16)
{
        AgentMsg in = { .type = AGENT_MSG_SESSION_START,
                        .session_start = { .user = "bob", .uid = 1000, .width = 0xffff, .height = 1 } };
        Writer w;
        encode(&in, &w);
        const uint8_t want[] = { 'S', 'L', 1, AGENT_MSG_SESSION_START, 0, 0, 0, 13, 0, 3, 'b', 'o', 'b',
                                 0, 0, 0x03, 0xe8, 0xff, 0xff, 0, 1 };
        cr_assert_eq(w.len, sizeof want);
        cr_assert_arr_eq(w.data, want, sizeof want);
        writer_free(&w);
}

Test(proto, session_stop_roundtrips_reason_including_empty)
{
        AgentMsg in = { .type = AGENT_MSG_SESSION_STOP, .session_stop = { .reason = "idle timeout" } }, out;
        roundtrip(&in, &out);
        cr_assert_eq(out.type, AGENT_MSG_SESSION_STOP);
        cr_assert_str_eq(out.session_stop.reason, "idle timeout");

        in.session_stop.reason[0] = 0;
        roundtrip(&in, &out);
        cr_assert_str_eq(out.session_stop.reason, "");
}

Test(proto, session_state_roundtrips_every_state)
{
        const uint8_t states[] = { AGENT_SESSION_STARTED, AGENT_SESSION_STOPPED, AGENT_SESSION_LOGOUT,
                                   AGENT_SESSION_FAILED, AGENT_SESSION_USABLE };
        for (size_t i = 0; i < sizeof states; i++) {
                AgentMsg in = { .type = AGENT_MSG_SESSION_STATE, .session_state = { .state = states[i] } }, out;
                snprintf(in.session_state.detail, sizeof in.session_state.detail, "state %u", states[i]);
                roundtrip(&in, &out);
                cr_assert_eq(out.type, AGENT_MSG_SESSION_STATE);
                cr_assert_eq(out.session_state.state, states[i]);
                cr_assert_str_eq(out.session_state.detail, in.session_state.detail);
        }
}

Test(proto, session_state_outside_the_known_states_is_rejected)
{
        /* The guest is hostile: a state the broker does not know must not reach its state machine. */
        const uint8_t bad[] = { 0, AGENT_SESSION_USABLE + 1, 0x80, 0xff };
        for (size_t i = 0; i < sizeof bad; i++) {
                uint8_t buf[] = { 'S', 'L', 1, AGENT_MSG_SESSION_STATE, 0, 0, 0, 3, bad[i], 0, 0 };
                AgentParser p;
                AgentFrame f;
                AgentMsg out;
                agent_parser_init(&p, 0);
                parse_one(&p, buf, sizeof buf, &f);
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "state %u", bad[i]);
                agent_parser_free(&p);
        }
}

Test(proto, session_messages_cut_short_or_with_trailing_bytes_are_rejected)
{
        AgentMsg msgs[] = {
                { .type = AGENT_MSG_SESSION_START, .session_start = { .user = "alice", .uid = 1000, .width = 1280, .height = 800 } },
                { .type = AGENT_MSG_SESSION_STOP, .session_stop = { .reason = "admin" } },
                { .type = AGENT_MSG_SESSION_STATE, .session_state = { .state = AGENT_SESSION_LOGOUT, .detail = "F12" } },
        };
        for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
                Writer w;
                encode(&msgs[i], &w);
                writer_u8(&w, 0); /* one byte more than the message, for the trailing-byte case */
                uint32_t full = (uint32_t)(w.len - 1 - AGENT_HEADER_SIZE);
                for (uint32_t len = 0; len <= full + 1; len++) {
                        if (len == full)
                                continue;
                        header(w.data, AGENT_MAGIC, AGENT_PROTO_VERSION, (uint8_t)msgs[i].type, len);
                        AgentParser p;
                        AgentFrame f;
                        AgentMsg out;
                        agent_parser_init(&p, 0);
                        parse_one(&p, w.data, AGENT_HEADER_SIZE + len, &f);
                        cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "type %u len %u", msgs[i].type, len);
                        agent_parser_free(&p);
                }
                writer_free(&w);
        }
}

Test(proto, session_type_names)
{
        cr_assert_str_eq(agent_msg_type_name(AGENT_MSG_SESSION_START), "session-start");
        cr_assert_str_eq(agent_msg_type_name(AGENT_MSG_SESSION_STOP), "session-stop");
        cr_assert_str_eq(agent_msg_type_name(AGENT_MSG_SESSION_STATE), "session-state");
}

static AgentMsg disks_msg(void)
{
        AgentMsg m = { .type = AGENT_MSG_SESSION_START,
                       .session_start = { .user = "alice", .uid = 1000, .width = 1280, .height = 800, .n_disks = 3,
                                          .disks = { { AGENT_DISK_LAYER, "slate-apps", "hello", 0, 8 << 20 },
                                                     { AGENT_DISK_PROFILE, "slate-profile", "", 0, 1ull << 30 },
                                                     { AGENT_DISK_LAYER, "slate-apps", "calc_2.0+b1", 8 << 20,
                                                       4096 } } } };
        return m;
}

Test(proto, session_start_without_disks_keeps_the_old_wire_format)
{
        AgentMsg in = { .type = AGENT_MSG_SESSION_START,
                        .session_start = { .user = "bob", .uid = 1000, .width = 0xffff, .height = 1 } }, out;
        Writer w;
        encode(&in, &w);
        cr_assert_eq(w.len, AGENT_HEADER_SIZE + 13, "no disks must add nothing");
        writer_free(&w);
        roundtrip(&in, &out);
        cr_assert_eq(out.session_start.n_disks, 0);
}

Test(proto, session_start_roundtrips_disks_in_order)
{
        AgentMsg in = disks_msg(), out;
        roundtrip(&in, &out);
        cr_assert_eq(out.session_start.n_disks, 3);
        for (unsigned i = 0; i < 3; i++) {
                cr_assert_eq(out.session_start.disks[i].kind, in.session_start.disks[i].kind);
                cr_assert_str_eq(out.session_start.disks[i].serial, in.session_start.disks[i].serial);
                cr_assert_str_eq(out.session_start.disks[i].name, in.session_start.disks[i].name);
                cr_assert_eq(out.session_start.disks[i].offset, in.session_start.disks[i].offset);
                cr_assert_eq(out.session_start.disks[i].length, in.session_start.disks[i].length);
        }
        cr_assert_str_eq(out.session_start.user, "alice");
        cr_assert_eq(out.session_start.height, 800);
}

Test(proto, session_start_disk_wire_layout_is_count_then_kind_serial_name_offset_length)
{
        AgentMsg in = { .type = AGENT_MSG_SESSION_START,
                        .session_start = { .user = "bob", .uid = 1000, .width = 0xffff, .height = 1, .n_disks = 1,
                                           .disks = { { AGENT_DISK_LAYER, "s1", "ab", 0x0102030405060000ull,
                                                        0x1000 } } } };
        Writer w;
        encode(&in, &w);
        const uint8_t want[] = { 'S', 'L', 1, AGENT_MSG_SESSION_START, 0, 0, 0, 39, 0, 3, 'b', 'o', 'b',
                                 0, 0, 0x03, 0xe8, 0xff, 0xff, 0, 1,
                                 1, AGENT_DISK_LAYER, 0, 2, 's', '1', 0, 2, 'a', 'b',
                                 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0 };
        cr_assert_eq(w.len, sizeof want);
        cr_assert_arr_eq(w.data, want, sizeof want);
        writer_free(&w);
}

Test(proto, session_start_with_the_most_and_longest_disks_roundtrips)
{
        AgentMsg in = { .type = AGENT_MSG_SESSION_START, .session_start = { .user = "a", .n_disks = AGENT_DISKS_MAX } }, out;
        for (unsigned i = 0; i < AGENT_DISKS_MAX; i++) {
                AgentDisk *d = &in.session_start.disks[i];
                d->kind = i == 0 ? AGENT_DISK_PROFILE : AGENT_DISK_LAYER;
                memset(d->serial, 'A' + (char)i, AGENT_DISK_SERIAL_MAX);
                memset(d->name, 'z', AGENT_DISK_NAME_MAX);
                /* The last aligned extent there is: 2^64 - 8192, 4096 bytes long. */
                d->offset = UINT64_MAX - 2 * AGENT_DISK_ALIGN + 1;
                d->length = AGENT_DISK_ALIGN;
        }
        roundtrip(&in, &out);
        cr_assert_eq(out.session_start.n_disks, AGENT_DISKS_MAX);
        cr_assert_eq(strlen(out.session_start.disks[7].serial), AGENT_DISK_SERIAL_MAX);
        cr_assert_eq(strlen(out.session_start.disks[7].name), AGENT_DISK_NAME_MAX);
        cr_assert_eq(out.session_start.disks[7].offset + out.session_start.disks[7].length, UINT64_MAX - 4095);
}

Test(proto, encode_refuses_more_disks_than_the_maximum)
{
        AgentMsg in = disks_msg();
        in.session_start.n_disks = AGENT_DISKS_MAX + 1;
        Writer w;
        writer_init(&w, AGENT_HEADER_SIZE + AGENT_FRAME_MAX);
        cr_assert_eq(agent_msg_encode(&in, &w), -EINVAL);
        writer_free(&w);
}

Test(proto, session_start_with_bad_disks_is_rejected)
{
        static const struct { const char *what; unsigned i; uint8_t kind; const char *serial, *name; } bad[] = {
                { "kind 0", 0, 0, "s", "x" },
                { "kind 3", 0, 3, "s", "x" },
                { "kind 255", 1, 255, "s", "x" },
                { "empty serial", 0, AGENT_DISK_LAYER, "", "x" },
                { "serial 21 chars", 0, AGENT_DISK_LAYER, "123456789012345678901", "x" },
                { "serial with _", 0, AGENT_DISK_LAYER, "a_b", "x" },
                { "serial with /", 0, AGENT_DISK_LAYER, "a/b", "x" },
                { "serial with space", 0, AGENT_DISK_LAYER, "a b", "x" },
                { "layer without a name", 0, AGENT_DISK_LAYER, "s", "" },
                { "name with /", 0, AGENT_DISK_LAYER, "s", "../etc" },
                { "name with space", 0, AGENT_DISK_LAYER, "s", "a b" },
                { "name with :", 0, AGENT_DISK_LAYER, "s", "a:b" },
                { "name with ,", 2, AGENT_DISK_LAYER, "s", "a,b" },
                { "name 65 chars", 0, AGENT_DISK_LAYER, "s",
                  "12345678901234567890123456789012345678901234567890123456789012345" },
                { "second profile", 0, AGENT_DISK_PROFILE, "s", "" },
        };
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
                AgentMsg m = disks_msg();
                AgentDisk *d = &m.session_start.disks[bad[k].i];
                d->kind = bad[k].kind;
                /* Over-long strings are written to the wire by hand: the struct cannot hold them. */
                Writer w;
                writer_init(&w, AGENT_FRAME_MAX);
                writer_string(&w, m.session_start.user);
                writer_u32(&w, 1000);
                writer_u16(&w, 1280);
                writer_u16(&w, 800);
                writer_u8(&w, m.session_start.n_disks);
                for (unsigned i = 0; i < m.session_start.n_disks; i++) {
                        writer_u8(&w, m.session_start.disks[i].kind);
                        writer_string(&w, i == bad[k].i ? bad[k].serial : m.session_start.disks[i].serial);
                        writer_string(&w, i == bad[k].i ? bad[k].name : m.session_start.disks[i].name);
                        writer_u64(&w, m.session_start.disks[i].offset);
                        writer_u64(&w, m.session_start.disks[i].length);
                }
                cr_assert_eq(w.error, 0);
                Frame f = { .type = AGENT_MSG_SESSION_START, .version = AGENT_PROTO_VERSION, .len = (uint32_t)w.len,
                            .payload = w.data };
                AgentMsg out;
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "%s accepted", bad[k].what);
                writer_free(&w);
        }
}

Test(proto, session_start_disk_count_outside_1_to_max_is_rejected)
{
        AgentMsg m = disks_msg();
        m.session_start.n_disks = 1;
        Writer w;
        encode(&m, &w);
        /* The count byte sits right after height: 8 header + 2+5 user + 4 + 2 + 2. */
        size_t at = AGENT_HEADER_SIZE + 15;
        cr_assert_eq(w.data[at], 1);
        const uint8_t counts[] = { 0, AGENT_DISKS_MAX + 1, 0xff, 2 };
        for (size_t i = 0; i < sizeof counts; i++) {
                w.data[at] = counts[i];
                Frame f = { .type = AGENT_MSG_SESSION_START, .version = AGENT_PROTO_VERSION,
                            .len = (uint32_t)(w.len - AGENT_HEADER_SIZE), .payload = w.data + AGENT_HEADER_SIZE };
                AgentMsg out;
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "count %u accepted", counts[i]);
        }
        writer_free(&w);
}

Test(proto, session_start_disks_cut_short_or_with_trailing_bytes_are_rejected)
{
        AgentMsg m = disks_msg();
        Writer w;
        encode(&m, &w);
        writer_u8(&w, 0);
        uint32_t full = (uint32_t)(w.len - 1 - AGENT_HEADER_SIZE);
        /* Every length from just after height (15: no disks, valid) up to one byte too many. */
        for (uint32_t len = 16; len <= full + 1; len++) {
                if (len == full)
                        continue;
                Frame f = { .type = AGENT_MSG_SESSION_START, .version = AGENT_PROTO_VERSION, .len = len,
                            .payload = w.data + AGENT_HEADER_SIZE };
                AgentMsg out;
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "len %u of %u accepted", len, full);
        }
        writer_free(&w);
}

Test(proto, disks_check_is_the_rule_decode_applies)
{
        AgentMsg m = disks_msg();
        cr_assert_eq(agent_disks_check(m.session_start.disks, 3), 0);
        cr_assert_eq(agent_disks_check(m.session_start.disks, 0), -EBADMSG);
        cr_assert_eq(agent_disks_check(m.session_start.disks, AGENT_DISKS_MAX + 1), -EBADMSG);
        /* A profile's name may be anything allowed, or empty. */
        snprintf(m.session_start.disks[1].name, sizeof m.session_start.disks[1].name, "home.v2");
        cr_assert_eq(agent_disks_check(m.session_start.disks, 3), 0);
}

/* The agent maps each extent with a loop device: it must be aligned, not empty, not wrap around,
 * and not share bytes with another extent of the same slot (a layer's blocks are no profile's). */
Test(proto, session_start_with_bad_extents_is_rejected)
{
        static const struct { const char *what; unsigned i; uint64_t offset, length; } bad[] = {
                { "length 0", 0, 0, 0 },
                { "offset not aligned", 2, (8 << 20) + 512, 4096 },
                { "length not aligned", 0, 0, 4095 },
                { "offset + length past 2^64", 1, UINT64_MAX - 4095, 8192 },
                { "overlaps the first layer", 2, (8 << 20) - 4096, 8192 },
                { "inside the first layer", 2, 4096, 4096 },
                { "covers the first layer", 2, 0, 16 << 20 },
        };
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
                AgentMsg m = disks_msg();
                m.session_start.disks[bad[k].i].offset = bad[k].offset;
                m.session_start.disks[bad[k].i].length = bad[k].length;
                cr_assert_eq(agent_disks_check(m.session_start.disks, 3), -EBADMSG, "%s passed the check", bad[k].what);
                Writer w;
                encode(&m, &w);
                Frame f = { .type = AGENT_MSG_SESSION_START, .version = AGENT_PROTO_VERSION,
                            .len = (uint32_t)(w.len - AGENT_HEADER_SIZE), .payload = w.data + AGENT_HEADER_SIZE };
                AgentMsg out;
                cr_assert_eq(agent_msg_decode(&f, &out), -EBADMSG, "%s decoded", bad[k].what);
                writer_free(&w);
        }
}

Test(proto, extents_may_touch_and_may_overlap_on_different_slots)
{
        AgentMsg m = disks_msg();
        /* The second layer starts where the first ends; the profile's slot has its own offsets. */
        m.session_start.disks[2].offset = 8 << 20;
        m.session_start.disks[1].offset = 0;
        m.session_start.disks[1].length = 16 << 20;
        cr_assert_eq(agent_disks_check(m.session_start.disks, 3), 0);
        /* Listed in any order. */
        m.session_start.disks[0].offset = 16 << 20;
        m.session_start.disks[2].offset = 4096;
        cr_assert_eq(agent_disks_check(m.session_start.disks, 3), 0);
}

/* IDENTITY (host → agent) and IDENTIFIED (agent → host): a clone's new identity. */
static AgentMsg identity_msg(AgentMsgType type)
{
        AgentMsg m = { .type = type };
        strcpy(m.identity.boot_id, "0b6c2a4e-7f1d-4c1e-9d7a-3c5e8f1a2b3c");
        strcpy(m.identity.hostname, "d-0a1b2c3d4e");
        strcpy(m.identity.machine_id, "00112233445566778899aabbccddeeff");
        for (unsigned i = 0; i < AGENT_TOKEN_SIZE; i++)
                m.identity.token[i] = (uint8_t)(i * 7);
        if (type == AGENT_MSG_IDENTITY) {
                for (unsigned i = 0; i < AGENT_ENTROPY_SIZE; i++)
                        m.identity.entropy[i] = (uint8_t)(255 - i);
                m.identity.realtime_ms = 1796669394123ull;
        } else {
                for (unsigned i = 0; i < AGENT_RNG_SAMPLE_SIZE; i++)
                        m.identity.rng_sample[i] = (uint8_t)(i + 1);
                m.identity.flags = AGENT_IDENTITY_RESEEDED | AGENT_IDENTITY_CANARY;
        }
        return m;
}

Test(proto, identity_roundtrips_every_field)
{
        AgentMsg in = identity_msg(AGENT_MSG_IDENTITY), out;
        roundtrip(&in, &out);
        cr_assert_eq(memcmp(&in.identity, &out.identity, sizeof in.identity), 0);
        in = identity_msg(AGENT_MSG_IDENTIFIED);
        roundtrip(&in, &out);
        cr_assert_eq(memcmp(&in.identity, &out.identity, sizeof in.identity), 0);
        cr_assert_str_eq(agent_msg_type_name(AGENT_MSG_IDENTITY), "identity");
        cr_assert_str_eq(agent_msg_type_name(AGENT_MSG_IDENTIFIED), "identified");
}

/* Encodes m, decodes it, and says whether decode accepted it. */
static int encode_decode(const AgentMsg *m)
{
        Writer w;
        encode(m, &w);
        AgentParser p;
        AgentFrame f;
        agent_parser_init(&p, 0);
        parse_one(&p, w.data, w.len, &f);
        AgentMsg out;
        int r = agent_msg_decode(&f, &out);
        agent_parser_free(&p);
        writer_free(&w);
        return r;
}

Test(proto, identity_fields_a_guest_could_abuse_are_refused)
{
        /* The agent writes these into files and the host into its log: only their characters. */
        AgentMsg m = identity_msg(AGENT_MSG_IDENTITY);
        strcpy(m.identity.hostname, "../etc");
        cr_assert_eq(encode_decode(&m), -EBADMSG);
        m = identity_msg(AGENT_MSG_IDENTITY);
        strcpy(m.identity.boot_id, "x'; reboot");
        cr_assert_eq(encode_decode(&m), -EBADMSG);
        m = identity_msg(AGENT_MSG_IDENTITY);
        strcpy(m.identity.machine_id, "00112233445566778899AABBCCDDEEFF");
        cr_assert_eq(encode_decode(&m), -EBADMSG);
        m = identity_msg(AGENT_MSG_IDENTITY);
        m.identity.hostname[0] = 0;     /* the host always names the desktop */
        cr_assert_eq(encode_decode(&m), -EBADMSG);
        /* The guest may report no machine-id (it could not write one), never a partial one. */
        m = identity_msg(AGENT_MSG_IDENTIFIED);
        m.identity.machine_id[0] = 0;
        cr_assert_eq(encode_decode(&m), 0);
        strcpy(m.identity.machine_id, "0011");
        cr_assert_eq(encode_decode(&m), -EBADMSG);
}
