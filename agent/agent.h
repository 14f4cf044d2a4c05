/* slate-agent's core (agent/slate-agent.c), shared by the agent every image gets (agent/main.c)
 * and the test guest's agent (tests/guest/agent-testdesk.c), which adds a desktop it draws itself.
 * The production agent must never contain that desktop: it reaches the core only through here. */
#pragma once
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/* Most fds a desktop backend may ask the main loop to watch. */
#define AGENT_DESK_POLLFDS_MAX 8

/* A session backend the agent runs in-process (--test-desktop), instead of --session-script.
 * Every call comes from the agent's main loop, with data as given. */
typedef struct AgentDesk {
        void *data;
        const char *help;       /* the --test-desktop line of --help */
        void (*init)(void *data);
        /* 0 or a negative errno; detail (for the host) says what happened either way. user is as
         * the host sent it (the backend checks it); width/height: what it asked for (0: any). */
        int (*session_start)(void *data, const char *user, unsigned width, unsigned height, char *detail,
                             size_t size);
        void (*session_stop)(void *data);               /* no-op without a session */
        const char *(*session_user)(void *data);        /* the running session's user, or NULL */
        /* After a session_start that succeeded: in how many ms its desktop is usable (0: now), or
         * -1: never (tests). NULL: the backend cannot tell (no AGENT_CAP_USABLE). */
        int (*usable_delay_ms)(void *data);
        unsigned (*pollfds)(void *data, struct pollfd *pfd, unsigned max);     /* POLLIN fds */
        bool (*input)(void *data, int fd);              /* true: the user logged out */
        void (*done)(void *data);
} AgentDesk;

/* The whole agent: options, then the loop until SIGTERM/SIGINT. desk is NULL in the production
 * agent (--test-desktop is then refused). Returns main's exit status. */
int agent_main(int argc, char **argv, const AgentDesk *desk);
