/* The PAM conversation relay between a logon thread and the loop (prompter.h). One message is
 * in flight at a time: PAM's conversation is a call that waits for its answer anyway. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "broker/prompter.h"
#include "common/cleanup.h"
#include "common/util.h"

struct Prompter {
        uv_async_t async;       /* first: the callback finds the Prompter from it */
        uv_mutex_t mu;
        uv_cond_t cv;
        PrompterShow show;
        void *ud;
        unsigned max_prompts, timeout_ms;
        unsigned prompts, messages;
        /* The message in flight, under mu. */
        bool posted;            /* the thread has one for the loop */
        bool delivered;         /* the loop has shown it */
        bool want_reply;
        bool waiting;           /* shown, a reply is due */
        bool answered;
        bool cancelled;
        IpcPromptStyle style;
        char text[IPC_TEXT_MAX + 1];
        char *reply;
};

static void reply_drop(Prompter *p)
{
        if (p->reply) {
                secret_wipe(p->reply, strlen(p->reply));
                free(p->reply);
                p->reply = NULL;
        }
}

static void on_async(uv_async_t *a)
{
        Prompter *p = (Prompter *)a;
        IpcPromptStyle style;
        char text[IPC_TEXT_MAX + 1];
        uv_mutex_lock(&p->mu);
        if (!p->posted || p->delivered || p->cancelled) {
                uv_mutex_unlock(&p->mu);
                return;
        }
        p->delivered = true;
        p->waiting = p->want_reply;
        style = p->style;
        memcpy(text, p->text, sizeof text);
        uv_mutex_unlock(&p->mu);
        /* May cancel (the connection is gone): not under the lock. */
        p->show(p->ud, style, text);
        uv_mutex_lock(&p->mu);
        uv_cond_broadcast(&p->cv);      /* a line is done once shown */
        uv_mutex_unlock(&p->mu);
}

Prompter *prompter_new(uv_loop_t *loop, PrompterShow show, void *ud, unsigned max_prompts, unsigned timeout_ms)
{
        Prompter *p = xmalloc0(sizeof *p);
        uv_mutex_init(&p->mu);
        uv_cond_init(&p->cv);
        uv_async_init(loop, &p->async, on_async);
        p->show = show;
        p->ud = ud;
        p->max_prompts = max_prompts;
        p->timeout_ms = timeout_ms;
        return p;
}

int prompter_ask(void *ptr, IpcPromptStyle style, const char *text, char **ret_reply)
{
        Prompter *p = ptr;
        bool want = ret_reply != NULL;
        int r = 0;
        uv_mutex_lock(&p->mu);
        if (p->cancelled) {
                uv_mutex_unlock(&p->mu);
                return -ECONNRESET;
        }
        /* A stack that keeps asking (or a module that loops on its lines) ends the attempt. */
        if ((want && ++p->prompts > p->max_prompts) || ++p->messages > 2 * p->max_prompts) {
                uv_mutex_unlock(&p->mu);
                return -E2BIG;
        }
        p->style = style;
        snprintf(p->text, sizeof p->text, "%s", text);
        p->want_reply = want;
        p->posted = true;
        p->delivered = p->answered = p->waiting = false;
        uv_mutex_unlock(&p->mu);
        uv_async_send(&p->async);
        uint64_t deadline = now_ms() + p->timeout_ms;
        uv_mutex_lock(&p->mu);
        while (!p->cancelled && !(want ? p->answered : p->delivered)) {
                uint64_t now = now_ms();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                uv_cond_timedwait(&p->cv, &p->mu, (deadline - now) * 1000000ull);
        }
        if (!r && p->cancelled && !(want ? p->answered : p->delivered))
                r = -ECONNRESET;
        if (!r && want)
                *ret_reply = TAKE_PTR(p->reply);
        reply_drop(p);
        p->posted = p->waiting = false;
        uv_mutex_unlock(&p->mu);
        return r;
}

int prompter_reply(Prompter *p, const char *text)
{
        uv_mutex_lock(&p->mu);
        if (!p->waiting || p->cancelled) {
                uv_mutex_unlock(&p->mu);
                return -EPROTO;
        }
        p->reply = xstrdup(text);
        p->waiting = false;
        p->answered = true;
        uv_cond_broadcast(&p->cv);
        uv_mutex_unlock(&p->mu);
        return 0;
}

void prompter_cancel(Prompter *p)
{
        if (!p)
                return;
        uv_mutex_lock(&p->mu);
        p->cancelled = true;
        uv_cond_broadcast(&p->cv);
        uv_mutex_unlock(&p->mu);
}

static void closed(uv_handle_t *h)
{
        Prompter *p = (Prompter *)h;
        reply_drop(p);
        uv_mutex_destroy(&p->mu);
        uv_cond_destroy(&p->cv);
        free(p);
}

void prompter_free(Prompter *p)
{
        if (p)
                uv_close((uv_handle_t *)&p->async, closed);
}
