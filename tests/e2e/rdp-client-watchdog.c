/* rdp-client's watchdog: a thread that breaks a connect the server left silent and, past a
 * backstop, ends the process with a timeout report. It must never let the client hang. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <freerdp/freerdp.h>

#include "rdp-client.h"

/* ---- watchdog ---- */

/* freerdp_connect's X.224 and TLS reads block and ignore the abort event, so a
 * server that accepts TCP and stays silent would hang it for a minute: abort and
 * shut the sockets down under it. */
static void watchdog_break_connect(freerdp *instance)
{
	void *rfds[64], *wfds[64];
	int rcount = 0, wcount = 0;

	freerdp_abort_connect(instance);
	if (!freerdp_get_fds(instance, rfds, &rcount, wfds, &wcount))
		return;
	for (int i = 0; i < rcount && i < 64; i++)
		shutdown((int)(intptr_t)rfds[i], SHUT_RDWR);
}

static void *watchdog_run(void *arg)
{
	Watchdog *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		uint64_t now = now_ns();
		uint64_t next = 0;

		if (w->abort_at_ns && now >= w->abort_at_ns) {
			w->abort_at_ns = 0;
			w->fired = true;
			watchdog_break_connect(w->instance);
		}
		if (w->backstop_at_ns && now >= w->backstop_at_ns) {
			Report r = { .result = "timeout", .connect_ms = -1, .first_frame_ms = -1,
				     .change_ms = -1, .error = "backstop" };
			note("a library call blocked past the deadline; giving up");
			report_print(&r, w->json);
			_exit(EXIT_TIMEOUT);
		}
		if (w->abort_at_ns)
			next = w->abort_at_ns;
		if (w->backstop_at_ns && (!next || w->backstop_at_ns < next))
			next = w->backstop_at_ns;
		if (!next) {
			pthread_cond_wait(&w->cond, &w->lock);
		} else {
			struct timespec ts = { .tv_sec = (time_t)(next / 1000000000u),
					       .tv_nsec = (long)(next % 1000000000u) };
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int watchdog_start(Watchdog *w, pthread_t *ret)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	return -pthread_create(ret, NULL, watchdog_run, w);
}

void watchdog_set(Watchdog *w, uint64_t abort_at, uint64_t backstop_at)
{
	pthread_mutex_lock(&w->lock);
	w->abort_at_ns = abort_at;
	w->backstop_at_ns = backstop_at;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Disarms the connect abort; tells whether it had already fired. */
bool watchdog_disarm(Watchdog *w)
{
	bool fired;

	pthread_mutex_lock(&w->lock);
	w->abort_at_ns = 0;
	fired = w->fired;
	pthread_mutex_unlock(&w->lock);
	return fired;
}

void watchdog_stop(Watchdog *w, pthread_t t)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(t, NULL);
}

