/* RDP listeners: accept, apply the pre-auth caps, hand the socket to a new connection. slated
 * never parses RDP: slate-session does, unprivileged (conn.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "broker/conn.h"
#include "broker/listener.h"
#include "common/log.h"
#include "common/util.h"

static void accepted_close(uv_handle_t *h) { free(h); }

/* A token bucket: accept-rate tokens a second, up to twice that saved for a burst. */
static bool accept_allowed(Broker *b)
{
        unsigned rate = b->cfg->accept_rate;
        if (rate == 0)
                return true;
        uint64_t now = now_ms();
        double cap = 2.0 * rate;
        if (b->accept_refill_ms == 0)
                b->accept_tokens = cap;
        else
                b->accept_tokens += (double)(now - b->accept_refill_ms) * rate / 1000.0;
        if (b->accept_tokens > cap)
                b->accept_tokens = cap;
        b->accept_refill_ms = now;
        if (b->accept_tokens < 1.0)
                return false;
        b->accept_tokens -= 1.0;
        return true;
}

static void on_connection(uv_stream_t *server, int status)
{
        Broker *b = server->data;
        if (status < 0)
                return;
        uv_tcp_t *client = xmalloc0(sizeof *client);
        uv_tcp_init(b->loop, client);
        if (uv_accept(server, (uv_stream_t *)client) < 0) {
                uv_close((uv_handle_t *)client, accepted_close);
                return;
        }
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char addr[INET6_ADDRSTRLEN + 8] = "?";
        if (uv_tcp_getpeername(client, (struct sockaddr *)&ss, &len) == 0) {
                if (ss.ss_family == AF_INET)
                        uv_ip4_name((struct sockaddr_in *)&ss, addr, sizeof addr);
                else
                        uv_ip6_name((struct sockaddr_in6 *)&ss, addr, sizeof addr);
        }
        uv_os_fd_t fd;
        int sock = -1;
        unsigned from_addr = conn_count_preauth(b, addr);
        if (!accept_allowed(b)) {
                /* Each connection costs a process: a flood is turned away before one starts. */
                log_warn("connection %s refused: more than %u new connections a second (accept-rate)", addr,
                         b->cfg->accept_rate);
        } else if (b->preauth >= b->cfg->max_preauth) {
                /* Bounded pre-auth work: a flood of half-open logons cannot exhaust slated. */
                log_warn("connection %s refused: %u connections already waiting to authenticate", addr, b->preauth);
        } else if (from_addr >= b->cfg->max_preauth_per_source) {
                /* ...and one address cannot take all the pre-auth slots from everyone else. */
                log_warn("connection %s refused: %u connections from this address's source (its /64, or "
                         "auth-ipv4-prefix) are waiting to authenticate", addr, from_addr);
        } else if (uv_fileno((uv_handle_t *)client, &fd) == 0) {
                sock = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        }
        uv_close((uv_handle_t *)client, accepted_close);
        if (sock >= 0)
                conn_spawn(b, sock, addr);
}

/* "host:port" or "[v6]:port" → sockaddr. */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
        char host[128];
        const char *colon;
        int port;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
                        return -EINVAL;
                snprintf(host, sizeof host, "%.*s", (int)(end - s - 1), s + 1);
                colon = end + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon || (size_t)(colon - s) >= sizeof host)
                        return -EINVAL;
                snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
        }
        port = atoi(colon + 1);
        if (port <= 0 || port > 65535)
                return -EINVAL;
        if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
                return 0;
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
                return 0;
        return -EINVAL;
}

int listener_start(Broker *b)
{
        _cleanup_free_ char *list = xstrdup(b->cfg->listen);
        char *save = NULL;
        for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
                if (strcmp(tok, "none") == 0)
                        return 0;
                struct sockaddr_storage ss;
                if (parse_listen(tok, &ss) < 0)
                        return log_error_errno(-EINVAL, "listen: cannot parse \"%s\" (host:port or [v6]:port)", tok);
                if (b->n_listeners >= ELEMENTSOF(b->listeners))
                        return log_error_errno(-E2BIG, "listen: more than %zu addresses", ELEMENTSOF(b->listeners));
                uv_tcp_t *t = &b->listeners[b->n_listeners];
                uv_tcp_init(b->loop, t);
                t->data = b;
                int r = uv_tcp_bind(t, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
                if (r == 0)
                        r = uv_listen((uv_stream_t *)t, 128, on_connection);
                if (r < 0) {
                        uv_close((uv_handle_t *)t, NULL);
                        if (r == UV_EADDRNOTAVAIL || r == UV_EAFNOSUPPORT) {
                                log_warn("listen %s: %s; skipped", tok, uv_strerror(r));
                                continue;
                        }
                        return log_error_errno(-EADDRINUSE, "listen %s: %s", tok, uv_strerror(r));
                }
                b->n_listeners++;
                log_info("RDP: listening on %s", tok);
        }
        return 0;
}

void listener_stop(Broker *b)
{
        for (unsigned i = 0; i < b->n_listeners; i++)
                uv_close((uv_handle_t *)&b->listeners[i], NULL);
        b->n_listeners = 0;
        conn_stop_all(b);
}
