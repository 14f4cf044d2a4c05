/* The PAM conversation between a logon thread and the loop, for a logon screen: the thread's
 * ask (an AuthAsk) hands one message at a time to the loop and waits for it to be shown or
 * answered; the loop sends it on the connection and hands the user's reply back. Bounded: a
 * number of prompts and of messages per attempt, a time per prompt; a user who left answers
 * every prompt with an error at once. Never logs what is typed; replies are wiped after use. */
#pragma once
#include <stdbool.h>
#include <uv.h>
#include "common/ipc.h"

typedef struct Prompter Prompter;

/* On the loop: show one message to the user (IPC_PROMPT). A prompt then waits for
 * prompter_reply; a line (ERROR, INFO) is done once this returns. */
typedef void (*PrompterShow)(void *ud, IpcPromptStyle style, const char *text);

/* On the loop. At most max_prompts prompts (and 2 x that many messages in all) per Prompter,
 * each answered within timeout_ms. */
Prompter *prompter_new(uv_loop_t *loop, PrompterShow show, void *ud, unsigned max_prompts, unsigned timeout_ms);
/* On the logon thread (AuthAsk.ask, ud = the Prompter): blocks until shown or answered. 0;
 * -ECONNRESET (cancelled: the user left), -E2BIG (over a bound: the stack asks too much),
 * -ETIMEDOUT (no answer in time). */
int prompter_ask(void *p, IpcPromptStyle style, const char *text, char **ret_reply);
/* On the loop: the user's answer to the prompt shown. -EPROTO when no prompt waits for one
 * (a late answer after its prompt timed out): the caller drops it. text is not kept. */
int prompter_reply(Prompter *p, const char *text);
/* On the loop: the user left or the logon ended: the waiting ask and every later one fail. */
void prompter_cancel(Prompter *p);
/* On the loop, once no thread can call prompter_ask any more (the PAM job is done). */
void prompter_free(Prompter *p);
