/* The logon's words for slate-session's progress screen (logon_progress.h). Sends nothing on a
 * connection that is gone (c NULL or closed): the logon goes on without anyone watching. */
#include <stdio.h>
#include <string.h>
#include "broker/conn.h"
#include "broker/logon_progress.h"
#include "common/ipc.h"
#include "common/cleanup.h"

/* What each step the logon waits on is doing, in the user's words; a step not listed (the
 * handshake, the first frame) changes nothing on the screen. */
static const struct {
        const char *step, *text;
} step_texts[] = {
        { "auth", "Checking your password" },
        { "pam-session", "Opening your session" },
        { "desktop", "Starting your desktop" },
        { "apps", "Attaching your apps" },
        { "profile", "Attaching your profile" },
        { "agent", "Starting your session" },
        { "usable", "Waiting for your desktop to be ready" },
};

/* One IPC_PROGRESS to the client's slate-session: a step (step of steps), USABLE, or FAILED. */
static void progress_send(Conn *c, const char *user, IpcProgressKind kind, unsigned step, unsigned steps,
                          const char *text)
{
        if (!c || !conn_alive(c))
                return;
        IpcMsg m = { .type = IPC_PROGRESS };
        m.progress.kind = (uint8_t)kind;
        m.progress.step = (uint8_t)step;
        m.progress.steps = (uint8_t)steps;
        snprintf(m.progress.title, sizeof m.progress.title, "Welcome, %.200s", user);
        snprintf(m.progress.text, sizeof m.progress.text, "%s", text ? text : "");
        conn_send(c, &m, -1);
}

void logon_progress_step(Conn *c, const char *user, const StepRun *run)
{
        const char *name = run->steps[run->cur].name;
        for (size_t i = 0; i < ELEMENTSOF(step_texts); i++)
                if (strcmp(step_texts[i].step, name) == 0)
                        progress_send(c, user, IPC_PROGRESS_STEP, (unsigned)run->cur + 1, (unsigned)run->n,
                                      step_texts[i].text);
}

void logon_progress_usable(Conn *c, const char *user)
{
        progress_send(c, user, IPC_PROGRESS_USABLE, 0, 0, NULL);
}

void logon_progress_failed(Conn *c, const char *user, const char *why)
{
        progress_send(c, user, IPC_PROGRESS_FAILED, 0, 0, why);
}
