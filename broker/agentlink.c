/* Broker side of the agent protocol. Pre-hello frames are capped tighter than later ones, every
 * frame is decoded through agent/proto.c, and only the permit table decides what is answered. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/agentlink.h"
#include "common/log.h"
#include "common/permit.h"
#include "common/util.h"

/* Before HELLO the agent has no business sending more than a hello's worth of bytes. */
#define AGENT_PRE_HELLO_MAX 1024
#define CONNECT_RETRY_MS 50

struct AgentLink {
        uv_loop_t *loop;
        uv_pipe_t pipe;
        uv_timer_t timer;
        enum { PIPE_NONE, PIPE_OPEN, PIPE_CLOSING } pipe_state;
        bool closing;
        int open_handles;
        AgentLinkOpen open;
        void *open_data;
        AgentLinkState state;
        AgentParser parser;
        unsigned interval_ms, misses;
        uint64_t seq, last_reply_ms, last_ping_ms;
        uint64_t connected_ms, hello_nudge_ms;  /* 0: never connect again for want of a HELLO */
        AgentLinkCallbacks cb;
        void *userdata;
        /* The guest said its session STARTED (or an earlier slated saw it start): only then may
         * it say USABLE. A stop, logout or failure ends it. */
        bool session_live;
        char readbuf[4096];
};

static const PermitRow permits[] = {
        /* A heartbeat may come first after a slated restart: the reply to the last slated's ping,
         * or the agent's own during a disk job, queued in the port while no host was connected. */
        { AGENT_LINK_AWAIT_HELLO, { AGENT_MSG_HELLO, AGENT_MSG_HEARTBEAT } },
        { AGENT_LINK_AWAIT_READY, { AGENT_MSG_READY, AGENT_MSG_HEARTBEAT } },
        /* A restarted agent (or a restarted slated reconnecting) says hello again. */
        { AGENT_LINK_READY, { AGENT_MSG_HEARTBEAT, AGENT_MSG_HELLO, AGENT_MSG_SESSION_STATE, AGENT_MSG_IDENTIFIED } },
};

bool agent_link_permits(AgentLinkState state, uint8_t type)
{
        return permit_allows(permits, ELEMENTSOF(permits), (int)state, type);
}

AgentLinkState agent_link_state(const AgentLink *l) { return l->state; }

void agent_link_session_adopt(AgentLink *l) { l->session_live = true; }

void agent_link_hello_nudge(AgentLink *l, unsigned ms) { l->hello_nudge_ms = ms; }

static void try_connect(AgentLink *l);
static void pipe_closed_cb(uv_handle_t *h);

static void fail(AgentLink *l, const char *fmt, ...) _printf_(2, 3);
static void fail(AgentLink *l, const char *fmt, ...)
{
        if (l->state == AGENT_LINK_FAILED || l->closing)
                return;
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        l->state = AGENT_LINK_FAILED;
        uv_timer_stop(&l->timer);
        if (l->pipe_state == PIPE_OPEN)
                uv_read_stop((uv_stream_t *)&l->pipe);
        if (l->cb.on_failure)
                l->cb.on_failure(l, msg, l->userdata);
}

static void write_done(uv_write_t *w, int status)
{
        free(w->data);
        free(w);
}

static void send_msg(AgentLink *l, const AgentMsg *m)
{
        Writer w;
        writer_init(&w, AGENT_FRAME_MAX + AGENT_HEADER_SIZE);
        if (agent_msg_encode(m, &w) < 0) {
                writer_free(&w);
                return;
        }
        uv_write_t *req = xmalloc0(sizeof *req);
        req->data = w.data;
        uv_buf_t buf = uv_buf_init((char *)w.data, (unsigned)w.len);
        if (uv_write(req, (uv_stream_t *)&l->pipe, &buf, 1, write_done) < 0) {
                free(w.data);
                free(req);
        }
}

static void handle_frame(AgentLink *l, const AgentFrame *f)
{
        if (!agent_link_permits(l->state, f->type)) {
                fail(l, "agent sent %s (type %u) in state %d: not permitted", agent_msg_type_name(f->type), f->type,
                     l->state);
                return;
        }
        AgentMsg m;
        if (agent_msg_decode(f, &m) < 0) {
                fail(l, "agent sent a malformed %s frame (%u bytes)", agent_msg_type_name(f->type), f->len);
                return;
        }
        l->last_reply_ms = now_ms();
        switch (m.type) {
        case AGENT_MSG_HELLO:
                l->state = AGENT_LINK_AWAIT_READY;
                agent_parser_free(&l->parser);
                agent_parser_init(&l->parser, AGENT_FRAME_MAX);
                if (l->cb.on_hello)
                        l->cb.on_hello(l, &m, l->userdata);
                break;
        case AGENT_MSG_READY:
                l->state = AGENT_LINK_READY;
                if (l->cb.on_ready)
                        l->cb.on_ready(l, l->userdata);
                break;
        case AGENT_MSG_HEARTBEAT:
                break;
        case AGENT_MSG_IDENTIFIED:
                if (l->cb.on_identified)
                        l->cb.on_identified(l, &m, l->userdata);
                break;
        case AGENT_MSG_SESSION_STATE:
                if (m.session_state.state == AGENT_SESSION_USABLE && !l->session_live) {
                        fail(l, "agent said usable with no session started");
                        return;
                }
                l->session_live = m.session_state.state == AGENT_SESSION_STARTED ||
                                  m.session_state.state == AGENT_SESSION_USABLE;
                if (l->cb.on_session_state)
                        l->cb.on_session_state(l, &m, l->userdata);
                break;
        default:
                break;
        }
}

int agent_link_send(AgentLink *l, const AgentMsg *m)
{
        if (l->state != AGENT_LINK_READY || l->pipe_state != PIPE_OPEN)
                return -ENOTCONN;
        send_msg(l, m);
        return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        AgentLink *l = h->data;
        *buf = uv_buf_init(l->readbuf, sizeof l->readbuf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        AgentLink *l = s->data;
        if (n < 0) {
                /* QEMU closes the chardev only when it exits: the VM supervisor handles that. */
                uv_read_stop(s);
                log_debug("agent: connection closed: %s", uv_strerror((int)n));
                return;
        }
        size_t off = 0;
        while (off < (size_t)n && l->state != AGENT_LINK_FAILED && !l->closing) {
                size_t used;
                AgentFrame f;
                int r = agent_parser_feed(&l->parser, (const uint8_t *)buf->base + off, (size_t)n - off, &used, &f);
                off += used;
                if (r < 0) {
                        fail(l, "agent protocol error: %s", r == -EMSGSIZE ? "frame too large" : "bad frame header");
                        return;
                }
                if (r == 0)
                        break;
                handle_frame(l, &f);
        }
}

static void timer_cb(uv_timer_t *t)
{
        AgentLink *l = t->data;
        if (l->state == AGENT_LINK_CONNECTING) {
                try_connect(l);
                return;
        }
        uint64_t now = now_ms();
        if (l->state == AGENT_LINK_AWAIT_HELLO && l->hello_nudge_ms && now - l->connected_ms >= l->hello_nudge_ms) {
                /* Connected, and the guest never heard of it (a clone's port event lost across
                 * the state load): close and connect again, which tells the guest anew. */
                log_info("agent: no hello %llu ms after connecting; connecting again",
                         (unsigned long long)(now - l->connected_ms));
                l->hello_nudge_ms *= 2;         /* a guest that is only slow gets longer each time */
                uv_read_stop((uv_stream_t *)&l->pipe);
                l->pipe_state = PIPE_CLOSING;
                uv_close((uv_handle_t *)&l->pipe, pipe_closed_cb);
                agent_parser_free(&l->parser);
                agent_parser_init(&l->parser, AGENT_PRE_HELLO_MAX);
                l->state = AGENT_LINK_CONNECTING;
                uv_timer_start(&l->timer, timer_cb, CONNECT_RETRY_MS, 0);
                return;
        }
        if (l->state == AGENT_LINK_READY || l->state == AGENT_LINK_AWAIT_READY) {
                if (now - l->last_reply_ms > (uint64_t)l->interval_ms * l->misses) {
                        fail(l, "agent missed %u heartbeats (silent for %llu ms)", l->misses,
                             (unsigned long long)(now - l->last_reply_ms));
                        return;
                }
                AgentMsg m = { .type = AGENT_MSG_HEARTBEAT, .heartbeat = { .seq = ++l->seq } };
                send_msg(l, &m);
                l->last_ping_ms = now;
        }
        uv_timer_start(&l->timer, timer_cb, l->interval_ms, 0);
}

static void closed_cb(uv_handle_t *h);

static void pipe_closed_cb(uv_handle_t *h)
{
        AgentLink *l = h->data;
        l->pipe_state = PIPE_NONE;
        if (l->closing)
                closed_cb(h);
}

static void try_connect(AgentLink *l)
{
        if (l->pipe_state == PIPE_OPEN || l->closing)
                return;
        /* uv_close of the previous attempt must finish before the handle is reused. */
        if (l->pipe_state == PIPE_CLOSING) {
                uv_timer_start(&l->timer, timer_cb, CONNECT_RETRY_MS, 0);
                return;
        }
        int fd;
        if (l->open(l->open_data, &fd) < 0) {
                /* The socket appears a moment after the VM starts; retry until the boot deadline. */
                uv_timer_start(&l->timer, timer_cb, CONNECT_RETRY_MS, 0);
                return;
        }
        uv_pipe_init(l->loop, &l->pipe, 0);
        l->pipe.data = l;
        if (uv_pipe_open(&l->pipe, fd) < 0) {
                close(fd);
                l->pipe_state = PIPE_CLOSING;
                uv_close((uv_handle_t *)&l->pipe, pipe_closed_cb);
                uv_timer_start(&l->timer, timer_cb, CONNECT_RETRY_MS, 0);
                return;
        }
        l->pipe_state = PIPE_OPEN;
        l->state = AGENT_LINK_AWAIT_HELLO;
        l->last_reply_ms = l->connected_ms = now_ms();
        uv_read_start((uv_stream_t *)&l->pipe, alloc_cb, read_cb);
        uv_timer_start(&l->timer, timer_cb, l->interval_ms, 0);
}

int agent_link_start(uv_loop_t *loop, AgentLinkOpen open, void *open_data, unsigned heartbeat_interval_s,
                     unsigned heartbeat_misses, const AgentLinkCallbacks *cb, void *userdata, AgentLink **ret)
{
        AgentLink *l = xmalloc0(sizeof *l);
        l->loop = loop;
        l->open = open;
        l->open_data = open_data;
        l->interval_ms = (heartbeat_interval_s ? heartbeat_interval_s : 2) * 1000;
        l->misses = heartbeat_misses ? heartbeat_misses : 5;
        l->cb = *cb;
        l->userdata = userdata;
        l->state = AGENT_LINK_CONNECTING;
        agent_parser_init(&l->parser, AGENT_PRE_HELLO_MAX);
        uv_timer_init(loop, &l->timer);
        l->timer.data = l;
        try_connect(l);
        *ret = l;
        return 0;
}

static void closed_cb(uv_handle_t *h)
{
        AgentLink *l = h->data;
        if (--l->open_handles > 0)
                return;
        agent_parser_free(&l->parser);
        free(l);
}

void agent_link_free(AgentLink *l)
{
        if (!l || l->closing)
                return;
        l->closing = true;
        l->open_handles = 1;
        uv_timer_stop(&l->timer);
        uv_close((uv_handle_t *)&l->timer, closed_cb);
        if (l->pipe_state == PIPE_OPEN) {
                l->open_handles++;
                l->pipe_state = PIPE_CLOSING;
                uv_close((uv_handle_t *)&l->pipe, pipe_closed_cb);
        } else if (l->pipe_state == PIPE_CLOSING) {
                l->open_handles++;      /* its pending close callback finishes the job */
        }
}
