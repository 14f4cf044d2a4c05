/* ipc-session: a stand-in for slate-session that speaks slated's IPC as a logon screen would,
 * driven by lines on its client socket, so slated's PAM conversation relay can be tested with
 * the real slated and real PAM but no RDP (tests/integration/logon-screen.sh). slated execs it
 * as session-program with the client socket on fd 3 and the IPC on fd 4. For tests only.
 * From the client, one command a line:
 *   auth USER PASSWORD     IPC_AUTH with IPC_AUTH_INTERACTIVE (typed into a logon screen)
 *   plain USER PASSWORD    IPC_AUTH as a client that sent its password (no screen)
 *   reply TEXT             IPC_PROMPT_REPLY
 *   phase NAME             IPC_PHASE NAME
 *   quit                   the session goes away mid-conversation
 * To the client, one line per IPC message from slated:
 *   config BANNER | prompt STYLE TEXT | result STATUS MESSAGE | end REASON | msg TYPE | ipc-closed */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/ipc.h"

#define CLIENT 3
#define IPC 4

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
        char line[2200];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (n > 0 && write(CLIENT, line, (size_t)n) < 0)
                exit(1);
}

static void send_msg(IpcMsg *m)
{
        if (ipc_send(IPC, m, -1) < 0)
                exit(1);
        ipc_msg_clear(m);
}

static void command(char *line)
{
        IpcMsg m = { 0 };
        char *sp = strchr(line, ' '), *arg = sp ? sp + 1 : (char *)"";
        if (sp)
                *sp = 0;
        if (strcmp(line, "auth") == 0 || strcmp(line, "plain") == 0) {
                char *pw = strchr(arg, ' ');
                if (pw)
                        *pw++ = 0;
                m.type = IPC_AUTH;
                snprintf(m.auth.user, sizeof m.auth.user, "%s", arg);
                snprintf(m.auth.password, sizeof m.auth.password, "%s", pw ? pw : "");
                snprintf(m.auth.client_host, sizeof m.auth.client_host, "test");
                m.auth.width = 1024;
                m.auth.height = 768;
                m.auth.flags = strcmp(line, "auth") == 0 ? IPC_AUTH_INTERACTIVE : 0;
                send_msg(&m);
        } else if (strcmp(line, "reply") == 0) {
                m.type = IPC_PROMPT_REPLY;
                snprintf(m.prompt_reply.text, sizeof m.prompt_reply.text, "%s", arg);
                send_msg(&m);
        } else if (strcmp(line, "phase") == 0) {
                m.type = IPC_PHASE;
                snprintf(m.phase.name, sizeof m.phase.name, "%s", arg);
                send_msg(&m);
        } else if (strcmp(line, "quit") == 0) {
                exit(0);
        }
}

static void from_slated(void)
{
        IpcMsg m;
        int r = ipc_recv_one(IPC, IPC_FRAME_MAX, 5000, &m);
        if (r < 0) {
                out("ipc-closed\n");
                exit(0);
        }
        char num[16];
        switch (m.type) {
        case IPC_CONFIG:
                out("config %s\n", m.config.banner);
                break;
        case IPC_PROMPT:
                snprintf(num, sizeof num, "%u", m.prompt.style);
                out("prompt %s %s\n", num, m.prompt.text);
                break;
        case IPC_AUTH_RESULT:
                snprintf(num, sizeof num, "%u", m.auth_result.status);
                out("result %s %s\n", num, m.auth_result.message);
                break;
        case IPC_END:
                out("end %s\n", m.end.reason);
                break;
        default:
                out("msg %s\n", ipc_type_name((uint8_t)m.type));
                break;
        }
        ipc_msg_clear(&m);
}

int main(void)
{
        char buf[4096];
        size_t have = 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = CLIENT, .events = POLLIN }, { .fd = IPC, .events = POLLIN } };
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        return 1;
                if (p[1].revents)
                        from_slated();
                if (p[0].revents) {
                        ssize_t n = read(CLIENT, buf + have, sizeof buf - 1 - have);
                        if (n <= 0)
                                return 0;
                        have += (size_t)n;
                        buf[have] = 0;
                        char *nl;
                        while ((nl = strchr(buf, '\n'))) {
                                *nl = 0;
                                command(buf);
                                have -= (size_t)(nl + 1 - buf);
                                memmove(buf, nl + 1, have + 1);
                        }
                        if (have == sizeof buf - 1)
                                return 1;
                }
        }
}
