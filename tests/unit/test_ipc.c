/* slated ⇄ slate-session IPC: every message round-trips, limits hold before allocation,
 * malformed payloads are refused, secrets are wiped, and an fd really crosses the socket. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/ipc.h"

static int roundtrip(const IpcMsg *in, IpcMsg *out)
{
        Writer w;
        writer_init(&w, IPC_FRAME_MAX + FRAME_HEADER_SIZE);
        cr_assert_eq(ipc_msg_encode(in, &w), 0);
        FrameParser p;
        ipc_parser_init(&p, IPC_FRAME_MAX);
        size_t used;
        Frame f;
        cr_assert_eq(frame_parser_feed(&p, w.data, w.len, &used, &f), 1);
        cr_assert_eq(used, w.len);
        int r = ipc_msg_decode(&f, out);
        frame_parser_free(&p);
        writer_free(&w);
        return r;
}

Test(ipc, auth_roundtrips_and_clear_wipes_the_password)
{
        IpcMsg m = { .type = IPC_AUTH }, out;
        strcpy(m.auth.user, "alice");
        strcpy(m.auth.domain, "CORP");
        strcpy(m.auth.password, "s3cret");
        strcpy(m.auth.client_host, "thin01");
        m.auth.width = 1280;
        m.auth.height = 800;
        cr_assert_eq(roundtrip(&m, &out), 0);
        cr_assert_str_eq(out.auth.user, "alice");
        cr_assert_str_eq(out.auth.password, "s3cret");
        cr_assert_eq(out.auth.width, 1280);
        ipc_msg_clear(&out);
        for (size_t i = 0; i < sizeof out.auth.password; i++)
                cr_assert_eq(out.auth.password[i], 0);
}

Test(ipc, sign_roundtrip_and_limits)
{
        IpcMsg m = { .type = IPC_SIGN }, out;
        m.sign.alg = 2;
        m.sign.len = IPC_SIGN_MAX;
        memset(m.sign.data, 0xab, IPC_SIGN_MAX);
        cr_assert_eq(roundtrip(&m, &out), 0);
        cr_assert_eq(out.sign.alg, 2);
        cr_assert_eq(out.sign.len, IPC_SIGN_MAX);
        cr_assert_eq(memcmp(out.sign.data, m.sign.data, IPC_SIGN_MAX), 0);
        /* A declared length beyond the limit is refused by the encoder and by the decoder. */
        m.sign.len = IPC_SIGN_MAX + 1;
        Writer w;
        writer_init(&w, IPC_FRAME_MAX + FRAME_HEADER_SIZE);
        cr_assert_eq(ipc_msg_encode(&m, &w), -EINVAL);
        writer_free(&w);
        uint8_t body[3] = { 1, (IPC_SIGN_MAX + 1) >> 8, (IPC_SIGN_MAX + 1) & 0xff };
        Frame f = { .type = IPC_SIGNATURE, .version = IPC_VERSION, .payload = body, .len = sizeof body };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
}

Test(ipc, config_attach_result_and_others_roundtrip)
{
        IpcMsg m = { .type = IPC_CONFIG }, out;
        m.config.cert_pem = "-----BEGIN CERTIFICATE-----\nabc\n";
        m.config.max_width = 4096;
        m.config.handshake_timeout_ms = 15000;
        cr_assert_eq(roundtrip(&m, &out), 0);
        cr_assert_str_eq(out.config.cert_pem, m.config.cert_pem);
        cr_assert_eq(out.config.handshake_timeout_ms, 15000);
        ipc_msg_clear(&out);

        IpcMsg a = { .type = IPC_ATTACH };
        strcpy(a.attach.desktop_id, "d-1");
        strcpy(a.attach.session_id, "s-1");
        a.attach.reconnect = true;
        cr_assert_eq(roundtrip(&a, &out), 0);
        cr_assert(out.attach.reconnect);
        cr_assert_str_eq(out.attach.session_id, "s-1");

        IpcMsg r = { .type = IPC_AUTH_RESULT };
        r.auth_result.status = IPC_AUTH_LOCKED_OUT;
        strcpy(r.auth_result.message, "try later");
        cr_assert_eq(roundtrip(&r, &out), 0);
        cr_assert_eq(out.auth_result.status, IPC_AUTH_LOCKED_OUT);

        IpcMsg types[] = { { .type = IPC_LOGOUT }, { .type = IPC_END }, { .type = IPC_FIRST_FRAME }, { .type = IPC_PHASE } };
        for (size_t i = 0; i < 4; i++) {
                cr_assert_eq(roundtrip(&types[i], &out), 0);
                cr_assert_eq(out.type, types[i].type);
        }
}

Test(ipc, preauth_limit_refuses_a_big_frame_before_allocating)
{
        uint8_t hdr[8] = { 0x53, 0x49, IPC_VERSION, IPC_AUTH, 0x00, 0x01, 0x00, 0x00 }; /* 64 KiB */
        FrameParser p;
        ipc_parser_init(&p, IPC_PREAUTH_MAX);
        size_t used;
        Frame f;
        cr_assert_eq(frame_parser_feed(&p, hdr, sizeof hdr, &used, &f), -EMSGSIZE);
        cr_assert_null(p.payload);
}

Test(ipc, malformed_payloads_are_refused)
{
        IpcMsg out;
        /* auth-result with an unknown status */
        uint8_t bad_status[] = { 9, 0, 0 };
        Frame f = { .type = IPC_AUTH_RESULT, .payload = bad_status, .len = sizeof bad_status };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
        /* trailing byte after a logout */
        uint8_t one[] = { 0 };
        f = (Frame){ .type = IPC_LOGOUT, .payload = one, .len = 1 };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
        /* a user name longer than the limit */
        uint8_t longname[4 + 300] = { 0x01, 0x2c };
        memset(longname + 2, 'a', 300);
        f = (Frame){ .type = IPC_AUTH, .payload = longname, .len = sizeof longname };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
        /* an unknown type */
        f = (Frame){ .type = 200, .payload = NULL, .len = 0 };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
        /* a config blob with a NUL inside */
        uint8_t nul[] = { 0, 0, 0, 2, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        f = (Frame){ .type = IPC_CONFIG, .payload = nul, .len = sizeof nul };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
}

Test(ipc, a_file_descriptor_crosses_the_socket)
{
        int sp[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        int fd = open("/dev/null", O_RDONLY);
        IpcMsg m = { .type = IPC_ATTACH };
        strcpy(m.attach.desktop_id, "d-9");
        cr_assert_eq(ipc_send(sp[0], &m, fd), 0);
        uint8_t buf[512];
        int got;
        ssize_t n = ipc_recv(sp[1], buf, sizeof buf, &got);
        cr_assert_gt(n, 0);
        cr_assert_geq(got, 0);
        cr_assert_neq(got, fd);
        FrameParser p;
        ipc_parser_init(&p, IPC_FRAME_MAX);
        size_t used;
        Frame f;
        cr_assert_eq(frame_parser_feed(&p, buf, (size_t)n, &used, &f), 1);
        IpcMsg out;
        cr_assert_eq(ipc_msg_decode(&f, &out), 0);
        cr_assert_str_eq(out.attach.desktop_id, "d-9");
        frame_parser_free(&p);
        close(got);
        close(fd);
}

Test(ipc, progress_prompt_and_reply_roundtrip_and_limits)
{
        IpcMsg m = { .type = IPC_PROGRESS }, out;
        m.progress.kind = IPC_PROGRESS_STEP;
        m.progress.step = 3;
        m.progress.steps = 7;
        strcpy(m.progress.title, "Welcome, alice");
        strcpy(m.progress.text, "Attaching your apps");
        cr_assert_eq(roundtrip(&m, &out), 0);
        cr_assert_eq(out.progress.kind, IPC_PROGRESS_STEP);
        cr_assert_eq(out.progress.step, 3);
        cr_assert_eq(out.progress.steps, 7);
        cr_assert_str_eq(out.progress.title, "Welcome, alice");
        cr_assert_str_eq(out.progress.text, "Attaching your apps");
        /* A step past the count, and an unknown kind, are refused. */
        m.progress.step = 8;
        cr_assert_eq(roundtrip(&m, &out), -EBADMSG);
        m.progress.step = 0;
        m.progress.kind = IPC_PROGRESS_KIND_LAST + 1;
        cr_assert_eq(roundtrip(&m, &out), -EBADMSG);

        IpcMsg p = { .type = IPC_PROMPT };
        p.prompt.style = IPC_PROMPT_SECRET;
        strcpy(p.prompt.text, "One-time password (OATH) for `alice': ");
        cr_assert_eq(roundtrip(&p, &out), 0);
        cr_assert_eq(out.prompt.style, IPC_PROMPT_SECRET);
        cr_assert_str_eq(out.prompt.text, p.prompt.text);
        p.prompt.style = 0;
        cr_assert_eq(roundtrip(&p, &out), -EBADMSG);

        IpcMsg r = { .type = IPC_PROMPT_REPLY };
        strcpy(r.prompt_reply.text, "123456");
        cr_assert_eq(roundtrip(&r, &out), 0);
        cr_assert_str_eq(out.prompt_reply.text, "123456");
        ipc_msg_clear(&out);
        for (size_t i = 0; i < sizeof out.prompt_reply.text; i++)
                cr_assert_eq(out.prompt_reply.text[i], 0);

        IpcMsg a = { .type = IPC_AUTH };
        strcpy(a.auth.user, "alice");
        a.auth.flags = IPC_AUTH_INTERACTIVE;
        cr_assert_eq(roundtrip(&a, &out), 0);
        cr_assert_eq(out.auth.flags, IPC_AUTH_INTERACTIVE);
        ipc_msg_clear(&out);
        a.auth.flags = 0x80;    /* unknown flags: a peer speaking something else */
        cr_assert_eq(roundtrip(&a, &out), -EBADMSG);

        IpcMsg c = { .type = IPC_CONFIG };
        c.config.cert_pem = "pem";
        strcpy(c.config.banner, "Acme hospital — authorised staff only");
        cr_assert_eq(roundtrip(&c, &out), 0);
        cr_assert_str_eq(out.config.banner, c.config.banner);
        ipc_msg_clear(&out);
}

Test(ipc, a_spare_gets_the_client_socket_with_ipc_client)
{
        /* slated hands a spare slate-session the accepted socket; IPC_CONFIG follows and must
         * not be eaten by the read that takes the socket. */
        int sp[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        int fd = open("/dev/null", O_RDONLY);
        IpcMsg m = { .type = IPC_CLIENT };
        cr_assert_eq(ipc_send(sp[0], &m, fd), 0);
        IpcMsg cfg = { .type = IPC_CONFIG, .config = { .cert_pem = "PEM", .max_width = 640, .max_height = 480 } };
        cr_assert_eq(ipc_send(sp[0], &cfg, -1), 0);
        IpcMsg out;
        int got;
        cr_assert_eq(ipc_recv_one_fd(sp[1], IPC_FRAME_MAX, -1, &out, &got), 0);
        cr_assert_eq(out.type, IPC_CLIENT);
        cr_assert_geq(got, 0);
        cr_assert_str_eq(ipc_type_name(IPC_CLIENT), "client");
        ipc_msg_clear(&out);
        cr_assert_eq(ipc_recv_one_fd(sp[1], IPC_FRAME_MAX, 1000, &out, &got), 0);
        cr_assert_eq(out.type, IPC_CONFIG);
        cr_assert_eq(got, -1);
        cr_assert_str_eq(out.config.cert_pem, "PEM");
        ipc_msg_clear(&out);
        /* A payload on IPC_CLIENT is malformed; EOF is -EPIPE, with no fd left open. */
        uint8_t one[] = { 'x' };
        Frame f = { .type = IPC_CLIENT, .payload = one, .len = 1 };
        cr_assert_eq(ipc_msg_decode(&f, &out), -EBADMSG);
        close(sp[0]);
        cr_assert_eq(ipc_recv_one_fd(sp[1], IPC_FRAME_MAX, -1, &out, &got), -EPIPE);
        cr_assert_eq(got, -1);
        close(sp[1]);
        close(fd);
}
