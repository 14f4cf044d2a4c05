/* The test guest's slate-agent: the production agent's core (agent/agent.h) plus --test-desktop,
 * the desktop it draws itself on /dev/fb0 (desk.c). Built for the test guest and the tests only;
 * it must never be what image publishing installs outside the tests. */
#include "agent/agent.h"
#include "tests/guest/desk.h"

_Static_assert(DESK_INPUT_MAX <= AGENT_DESK_POLLFDS_MAX, "the agent's loop watches every keyboard");

static void desk_ops_init(void *d) { desk_init(d); }
static void desk_ops_done(void *d) { desk_done(d); }
static void desk_ops_stop(void *d) { desk_session_stop(d); }
static bool desk_ops_input(void *d, int fd) { return desk_input(d, fd) > 0; }

static int desk_ops_start(void *d, const char *user, unsigned width, unsigned height, char *detail, size_t size)
{
        return desk_session_start(d, user, width, height, detail, size);
}

static int desk_ops_usable(void *d) { return desk_usable_delay_ms(d); }

static const char *desk_ops_user(void *d)
{
        const Desk *desk = d;
        return desk->active ? desk->user : NULL;
}

static unsigned desk_ops_pollfds(void *d, struct pollfd *pfd, unsigned max)
{
        return desk_pollfds(d, pfd, max);
}

int main(int argc, char **argv)
{
        Desk desk = { .fb = { .fd = -1 }, .tty_fd = -1 };
        const AgentDesk ops = {
                .data = &desk,
                .help = "  --test-desktop  sessions draw the test desktop on " DESK_FB_PATH " (test guest only)\n",
                .init = desk_ops_init,
                .session_start = desk_ops_start,
                .session_stop = desk_ops_stop,
                .session_user = desk_ops_user,
                .usable_delay_ms = desk_ops_usable,
                .pollfds = desk_ops_pollfds,
                .input = desk_ops_input,
                .done = desk_ops_done,
        };
        return agent_main(argc, argv, &ops);
}
