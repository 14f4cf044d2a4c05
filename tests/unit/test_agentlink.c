/* The broker's permit table for agent messages: a guest may say only what its state allows;
 * a real link cut off when it says what only the host may. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "broker/agentlink.h"

Test(agentlink, only_hello_before_hello)
{
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_HELLO));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_READY));
        /* a stale heartbeat queued before a slated restart */
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_HEARTBEAT));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_SESSION_STATE));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, 0));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, 200));
}

Test(agentlink, ready_and_heartbeat_after_hello)
{
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_READY, AGENT_MSG_READY));
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_READY, AGENT_MSG_HEARTBEAT));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_READY, AGENT_MSG_HELLO));
}

Test(agentlink, nothing_when_connecting_or_failed)
{
        for (unsigned t = 0; t < 256; t++) {
                cr_assert_not(agent_link_permits(AGENT_LINK_CONNECTING, (uint8_t)t));
                cr_assert_not(agent_link_permits(AGENT_LINK_FAILED, (uint8_t)t));
        }
        cr_assert_not(agent_link_permits(AGENT_LINK_READY, AGENT_MSG_READY));
}

/* A hostile agent over a real AgentLink: after a proper hello and ready it sends what only the
 * host may send, a SESSION_START naming another user's profile and a layer. The link fails this
 * one desktop; nothing reaches the session callbacks. (Nothing the guest says picks a disk at all:
 * slated attaches from its own catalogue, and reads only the capability bits from the agent.) */
typedef struct Hostile {
        int fds[2];
        bool handed;
        int failures, states, hellos, readies;
        char reason[256];
} Hostile;

static int hostile_open(void *data, int *ret_fd)
{
        Hostile *h = data;
        if (h->handed)
                return -ENOTCONN;
        h->handed = true;
        *ret_fd = h->fds[0];
        return 0;
}

static void h_hello(AgentLink *l, const AgentMsg *m, void *ud) { ((Hostile *)ud)->hellos++; }
static void h_ready(AgentLink *l, void *ud) { ((Hostile *)ud)->readies++; }
static void h_state(AgentLink *l, const AgentMsg *m, void *ud) { ((Hostile *)ud)->states++; }
static void h_failure(AgentLink *l, const char *reason, void *ud)
{
        Hostile *h = ud;
        h->failures++;
        snprintf(h->reason, sizeof h->reason, "%s", reason);
}

static void guest_send(int fd, const AgentMsg *m)
{
        Writer w;
        writer_init(&w, AGENT_FRAME_MAX + 64);
        cr_assert_eq(agent_msg_encode(m, &w), 0);
        cr_assert_eq(write(fd, w.data, w.len), (ssize_t)w.len);
        writer_free(&w);
}

static void spin(uv_loop_t *loop, unsigned ms)
{
        uint64_t end = uv_now(loop) + ms;
        while (uv_now(loop) < end) {
                uv_run(loop, UV_RUN_NOWAIT);
                usleep(1000);
                uv_update_time(loop);
        }
}

Test(agentlink, a_guest_that_sends_session_start_naming_another_users_disks_is_cut_off)
{
        uv_loop_t loop;
        uv_loop_init(&loop);
        Hostile h = { 0 };
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h.fds), 0);
        static const AgentLinkCallbacks cb = { .on_hello = h_hello, .on_ready = h_ready,
                                               .on_session_state = h_state, .on_failure = h_failure };
        AgentLink *l;
        cr_assert_eq(agent_link_start(&loop, hostile_open, &h, 60, 5, &cb, &h, &l), 0);
        AgentMsg hello = { .type = AGENT_MSG_HELLO };
        snprintf(hello.hello.agent_version, sizeof hello.hello.agent_version, "evil");
        hello.hello.capabilities = AGENT_CAP_SESSION | AGENT_CAP_DISKS | AGENT_CAP_DISK_SLOTS;
        snprintf(hello.hello.boot_id, sizeof hello.hello.boot_id, "b");
        guest_send(h.fds[1], &hello);
        guest_send(h.fds[1], &(AgentMsg){ .type = AGENT_MSG_READY });
        spin(&loop, 200);
        cr_assert_eq(h.hellos, 1);
        cr_assert_eq(h.readies, 1);
        cr_assert_eq(agent_link_state(l), AGENT_LINK_READY);

        AgentMsg evil = { .type = AGENT_MSG_SESSION_START };
        snprintf(evil.session_start.user, sizeof evil.session_start.user, "bob");
        evil.session_start.n_disks = 2;
        evil.session_start.disks[0] = (AgentDisk){ .kind = AGENT_DISK_PROFILE, .serial = "slate-profile",
                                                   .length = 1 << 30 };
        evil.session_start.disks[1] = (AgentDisk){ .kind = AGENT_DISK_LAYER, .serial = "slate-apps", .name = "payroll",
                                                   .length = 1 << 20 };
        guest_send(h.fds[1], &evil);
        spin(&loop, 200);
        cr_assert_eq(h.failures, 1, "the link accepted a host-only message from the guest");
        cr_assert_eq(h.states, 0);
        cr_assert_eq(agent_link_state(l), AGENT_LINK_FAILED);
        cr_assert_not_null(strstr(h.reason, "session-start"), "reason: %s", h.reason);
        agent_link_free(l);
        spin(&loop, 50);
        close(h.fds[1]);
        uv_loop_close(&loop);
}

/* A clone's guest can miss the open event of its port: connected, it never says hello. The link
 * told to nudge connects again, and the guest says hello on the new connection. */
typedef struct Twice {
        int fds[2][2];
        unsigned opened;
} Twice;

static int twice_open(void *data, int *ret_fd)
{
        Twice *t = data;
        if (t->opened >= 2)
                return -ENOTCONN;
        *ret_fd = t->fds[t->opened++][0];
        return 0;
}

Test(agentlink, a_silent_guest_is_connected_again_and_its_hello_then_counts)
{
        uv_loop_t loop;
        uv_loop_init(&loop);
        Twice t = { 0 };
        Hostile h = { 0 };
        for (int i = 0; i < 2; i++)
                cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t.fds[i]), 0);
        static const AgentLinkCallbacks cb = { .on_hello = h_hello, .on_ready = h_ready, .on_failure = h_failure };
        AgentLink *l;
        cr_assert_eq(agent_link_start(&loop, twice_open, &t, 1, 30, &cb, &h, &l), 0);
        agent_link_hello_nudge(l, 500);
        spin(&loop, 300);
        cr_assert_eq(t.opened, 1);
        cr_assert_eq(agent_link_state(l), AGENT_LINK_AWAIT_HELLO);
        spin(&loop, 1500);     /* the first heartbeat tick (1 s) finds no hello: a new connection */
        cr_assert_eq(t.opened, 2, "the link did not connect again");
        guest_send(t.fds[1][1], &(AgentMsg){ .type = AGENT_MSG_HELLO });
        spin(&loop, 200);
        cr_assert_eq(h.hellos, 1);
        cr_assert_eq(h.failures, 0, "%s", h.reason);
        cr_assert_eq(agent_link_state(l), AGENT_LINK_AWAIT_READY);
        agent_link_free(l);
        spin(&loop, 50);
        close(t.fds[0][1]);
        close(t.fds[1][1]);
        uv_loop_close(&loop);
}

/* USABLE is the guest's word on a session it said had STARTED: said out of turn (no session, or
 * after it stopped) it is a guest making things up, and the link fails that desktop. */
static AgentLink *ready_link(uv_loop_t *loop, Hostile *h)
{
        static const AgentLinkCallbacks cb = { .on_hello = h_hello, .on_ready = h_ready,
                                               .on_session_state = h_state, .on_failure = h_failure };
        AgentLink *l;
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->fds), 0);
        cr_assert_eq(agent_link_start(loop, hostile_open, h, 60, 5, &cb, h, &l), 0);
        AgentMsg hello = { .type = AGENT_MSG_HELLO };
        hello.hello.capabilities = AGENT_CAP_SESSION | AGENT_CAP_USABLE;
        guest_send(h->fds[1], &hello);
        guest_send(h->fds[1], &(AgentMsg){ .type = AGENT_MSG_READY });
        spin(loop, 100);
        cr_assert_eq(agent_link_state(l), AGENT_LINK_READY);
        return l;
}

static void guest_state(int fd, uint8_t state)
{
        guest_send(fd, &(AgentMsg){ .type = AGENT_MSG_SESSION_STATE, .session_state = { .state = state } });
}

Test(agentlink, usable_only_for_a_started_session)
{
        uv_loop_t loop;
        uv_loop_init(&loop);
        Hostile h = { 0 };
        AgentLink *l = ready_link(&loop, &h);
        guest_state(h.fds[1], AGENT_SESSION_STARTED);
        guest_state(h.fds[1], AGENT_SESSION_USABLE);
        guest_state(h.fds[1], AGENT_SESSION_USABLE);    /* said twice: harmless, the logon ignores it */
        spin(&loop, 100);
        cr_assert_eq(h.failures, 0, "%s", h.reason);
        cr_assert_eq(h.states, 3);
        guest_state(h.fds[1], AGENT_SESSION_STOPPED);
        guest_state(h.fds[1], AGENT_SESSION_USABLE);
        spin(&loop, 100);
        cr_assert_eq(h.failures, 1, "usable after the session stopped was accepted");
        cr_assert_eq(h.states, 4);
        cr_assert_not_null(strstr(h.reason, "usable"), "reason: %s", h.reason);
        agent_link_free(l);
        spin(&loop, 50);
        close(h.fds[1]);
        uv_loop_close(&loop);
}

Test(agentlink, usable_before_any_start_cuts_the_link_unless_the_session_was_adopted)
{
        uv_loop_t loop;
        uv_loop_init(&loop);
        Hostile h = { 0 };
        AgentLink *l = ready_link(&loop, &h);
        guest_state(h.fds[1], AGENT_SESSION_USABLE);
        spin(&loop, 100);
        cr_assert_eq(h.failures, 1);
        cr_assert_eq(h.states, 0);
        agent_link_free(l);
        spin(&loop, 50);
        close(h.fds[1]);

        Hostile h2 = { 0 };
        l = ready_link(&loop, &h2);
        agent_link_session_adopt(l);    /* a restart adopted a desktop with a session in it */
        guest_state(h2.fds[1], AGENT_SESSION_USABLE);
        spin(&loop, 100);
        cr_assert_eq(h2.failures, 0, "%s", h2.reason);
        cr_assert_eq(h2.states, 1);
        agent_link_free(l);
        spin(&loop, 50);
        close(h2.fds[1]);
        uv_loop_close(&loop);
}
