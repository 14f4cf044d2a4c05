/* The PAM conversation relay between a logon thread and the loop (broker/prompter.c), with a real
 * libuv loop and a real thread in place of PAM's: prompts reach the loop and answers the thread,
 * lines need no answer, the bounds hold, and a user who left ends the wait at once. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "broker/prompter.h"
#include "common/util.h"

typedef struct Fixture {
        uv_loop_t loop;
        Prompter *p;
        uv_thread_t thread;
        /* What the thread asks, and what it got. */
        int n_asks;
        IpcPromptStyle styles[20];
        int results[20];
        char *replies[20];
        bool done;
        uint64_t done_ms;
        /* The loop's side: what it showed, how it answers. */
        int shown;
        char last_text[64];
        bool answer, cancel_on_show;
        uv_async_t finished;
} Fixture;

static void show(void *ud, IpcPromptStyle style, const char *text)
{
        Fixture *f = ud;
        f->shown++;
        snprintf(f->last_text, sizeof f->last_text, "%s", text);
        if (f->cancel_on_show)
                prompter_cancel(f->p);
        else if (f->answer && (style == IPC_PROMPT_SECRET || style == IPC_PROMPT_TEXT))
                cr_assert_eq(prompter_reply(f->p, "123456"), 0);
}

static void thread_main(void *arg)
{
        Fixture *f = arg;
        for (int i = 0; i < f->n_asks; i++) {
                bool prompt = f->styles[i] == IPC_PROMPT_SECRET || f->styles[i] == IPC_PROMPT_TEXT;
                f->results[i] = prompter_ask(f->p, f->styles[i], "Code: ", prompt ? &f->replies[i] : NULL);
        }
        f->done_ms = now_ms();
        uv_async_send(&f->finished);
}

static void on_finished(uv_async_t *a)
{
        Fixture *f = a->data;
        f->done = true;
        uv_close((uv_handle_t *)a, NULL);
        prompter_free(f->p);
}

static void run(Fixture *f, unsigned max_prompts, unsigned timeout_ms)
{
        uv_loop_init(&f->loop);
        f->p = prompter_new(&f->loop, show, f, max_prompts, timeout_ms);
        uv_async_init(&f->loop, &f->finished, on_finished);
        f->finished.data = f;
        uv_thread_create(&f->thread, thread_main, f);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_thread_join(&f->thread);
        uv_loop_close(&f->loop);
        cr_assert(f->done);
}

Test(prompter, a_prompt_reaches_the_loop_and_its_answer_the_thread)
{
        Fixture f = { .n_asks = 3, .answer = true,
                      .styles = { IPC_PROMPT_INFO, IPC_PROMPT_SECRET, IPC_PROMPT_ERROR } };
        run(&f, 8, 5000);
        cr_assert_eq(f.shown, 3);
        cr_assert_eq(f.results[0], 0);
        cr_assert_eq(f.results[1], 0);
        cr_assert_str_eq(f.replies[1], "123456");
        cr_assert_eq(f.results[2], 0);
        cr_assert_str_eq(f.last_text, "Code: ");
        free(f.replies[1]);
}

Test(prompter, more_prompts_than_the_bound_end_the_conversation)
{
        Fixture f = { .n_asks = 4, .answer = true };
        for (int i = 0; i < 4; i++)
                f.styles[i] = IPC_PROMPT_TEXT;
        run(&f, 3, 5000);
        cr_assert_eq(f.shown, 3);
        cr_assert_eq(f.results[2], 0);
        cr_assert_eq(f.results[3], -E2BIG);
        for (int i = 0; i < 4; i++)
                free(f.replies[i]);
}

Test(prompter, lines_are_bounded_too)
{
        Fixture f = { .n_asks = 20 };
        for (int i = 0; i < 20; i++)
                f.styles[i] = IPC_PROMPT_INFO;
        run(&f, 4, 5000);
        cr_assert_eq(f.shown, 8, "2 x 4 messages shown, not %d", f.shown);
        cr_assert_eq(f.results[8], -E2BIG);
}

Test(prompter, an_unanswered_prompt_times_out)
{
        Fixture f = { .n_asks = 1, .styles = { IPC_PROMPT_SECRET } };
        uint64_t t0 = now_ms();
        run(&f, 8, 300);
        cr_assert_eq(f.results[0], -ETIMEDOUT);
        cr_assert_geq(f.done_ms - t0, 290);
        cr_assert_lt(f.done_ms - t0, 3000);
        cr_assert_null(f.replies[0]);
}

/* The user left while the prompt was shown: the thread hears so at once, and so does every
 * later ask, without waiting for the prompt's bound. */
Test(prompter, a_user_who_left_ends_the_wait_at_once)
{
        Fixture f = { .n_asks = 2, .cancel_on_show = true, .styles = { IPC_PROMPT_SECRET, IPC_PROMPT_TEXT } };
        uint64_t t0 = now_ms();
        run(&f, 8, 60000);
        cr_assert_eq(f.results[0], -ECONNRESET);
        cr_assert_eq(f.results[1], -ECONNRESET);
        cr_assert_lt(f.done_ms - t0, 2000, "the thread waited %llu ms", (unsigned long long)(f.done_ms - t0));
        cr_assert_eq(f.shown, 1);
}
