/* pool.c: see pool.h. */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "event.h"
#include "pool.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define POOL_WINDOW 16
#define POOL_STALL_MS 2000

struct task {
	struct task *next;
	void (*fn)(void *);
	void *arg;
};

struct op_record {
	uint64_t id, dur_us, run_us;
	struct timespec start;
	int failed;
	char key[96];
	char error[128];
};

struct pool {
	struct pool_config cfg;
	pthread_mutex_t mu;
	pthread_cond_t work;    /* workers: a task or quit */
	pthread_cond_t ready;   /* writer: the head slot is ready, or quit */
	pthread_cond_t space;   /* reader: room, progress, failure */
	pthread_t *workers;
	pthread_t writer, reader;
	int nworkers;

	void **item;
	unsigned char *done;
	uint64_t head, next;    /* next slot to emit, next slot to reserve */
	long holds;
	struct task *qhead, *qtail;
	size_t queued;
	int running;
	int writer_busy;
	int reader_waits;       /* the reader sleeps in pool_reserve or pool_drain */
	uint64_t progress;
	int quit, failed;
	int draining;           /* pool_drain was called (newest_first) */

	/* Operation tracking. */
	uint64_t op_next, pending, active, ndone, nfailed;
	struct lat_hist lat;    /* op_p50_us ...: under mu */
	struct op_record window[POOL_WINDOW];
	size_t wn, wpos;
};

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(c, m, &ts);
}

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

static int full(const struct pool *p)
{
	return (long)(p->next - p->head) + p->holds >= (long)p->cfg.max_inflight ||
	       p->next - p->head >= p->cfg.max_inflight;
}

/* Free slots. */
static long room(const struct pool *p)
{
	long used = (long)(p->next - p->head) + (p->holds > 0 ? p->holds : 0);
	return (long)p->cfg.max_inflight - used;
}

/* Nothing queued, running, being written or ready to write. */
static int quiet(const struct pool *p)
{
	size_t cap = p->cfg.max_inflight;
	int head_ready = p->head < p->next && p->done[p->head % cap];
	return !p->qhead && !p->running && !p->writer_busy && !head_ready;
}

/*
 * Once the pool was full, the reader waits for an eighth of it to be
 * free (or for the pool to go quiet: then it must not wait for more than
 * one slot, which may only come from more input), so that it wakes once
 * per few lines rather than once per line: each wake is a context switch
 * on cores the workers need.
 */
static long low_water(const struct pool *p)
{
	long l = (long)p->cfg.max_inflight / 8;
	return l > 1 ? l : 1;
}

/*
 * Under p->mu, after progress: wake the reader only when it waits and
 * has something to do now (room, the end of a drain, a failure, or a
 * quiet pool that it must unstick).
 */
static void wake_reader(struct pool *p)
{
	if (p->reader_waits && (room(p) >= low_water(p) || p->head == p->next || p->failed || quiet(p)))
		pthread_cond_broadcast(&p->space);
}

/* Under p->mu: whether queued tasks wait (cfg.newest_first). */
static int held(const struct pool *p)
{
	return p->cfg.newest_first && !p->draining && !full(p);
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct task *t;
		while ((!p->qhead || held(p)) && !p->quit)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		t = p->qhead;
		p->qhead = t->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->queued--;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		t->fn(t->arg);
		free(t);
		pthread_mutex_lock(&p->mu);
		p->running--;
		p->progress++;
		wake_reader(p);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void *writer_main(void *arg)
{
	struct pool *p = arg;
	size_t cap = p->cfg.max_inflight;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->failed)
			break;
		if (p->head < p->next && p->done[p->head % cap]) {
			void *item = p->item[p->head % cap];
			p->item[p->head % cap] = NULL;
			p->done[p->head % cap] = 0;
			p->head++;
			p->writer_busy = 1;
			pthread_mutex_unlock(&p->mu);
			p->cfg.emit(p->cfg.arg, item);
			pthread_mutex_lock(&p->mu);
			p->writer_busy = 0;
			p->progress++;
			wake_reader(p);
			continue;
		}
		if (p->quit)
			break;
		p->writer_busy = 1;
		pthread_mutex_unlock(&p->mu);
		if (p->cfg.idle)
			p->cfg.idle(p->cfg.arg);
		pthread_mutex_lock(&p->mu);
		p->writer_busy = 0;
		if (!(p->head < p->next && p->done[p->head % cap]) && !p->quit && !p->failed)
			timed_wait(&p->ready, &p->mu, 100);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct pool *pool_new(const struct pool_config *cfg)
{
	struct pool *p = xcalloc(1, sizeof *p);
	p->cfg = *cfg;
	if (p->cfg.workers < 1)
		p->cfg.workers = 1;
	if (p->cfg.max_inflight < 1)
		p->cfg.max_inflight = 1;
	p->item = xcalloc(p->cfg.max_inflight, sizeof *p->item);
	p->done = xcalloc(p->cfg.max_inflight, 1);
	pthread_mutex_init(&p->mu, NULL);
	cond_init_mono(&p->work);
	cond_init_mono(&p->ready);
	cond_init_mono(&p->space);
	p->reader = pthread_self();
	p->workers = xcalloc((size_t)p->cfg.workers, sizeof *p->workers);
	for (int i = 0; i < p->cfg.workers; i++) {
		int e = pthread_create(&p->workers[i], NULL, worker_main, p);
		if (e) {
			log_msg(LOG_ERROR, NULL, "cannot start worker thread: %s", strerror(e));
			exit(KERF_EX_SOFTWARE);
		}
		p->nworkers++;
	}
	if (pthread_create(&p->writer, NULL, writer_main, p) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot start writer thread");
		exit(KERF_EX_SOFTWARE);
	}
	return p;
}

int pool_reserve(struct pool *p, uint64_t *slot)
{
	uint64_t seen = 0, since = 0;
	int was_full;
	pthread_mutex_lock(&p->mu);
	was_full = full(p);
	if (was_full && p->cfg.newest_first)
		pthread_cond_broadcast(&p->work);
	while (full(p) || (was_full && room(p) < low_water(p) && !quiet(p))) {
		if (p->failed || sig_stop) {
			pthread_mutex_unlock(&p->mu);
			return -1;
		}
		if (full(p) && quiet(p) && p->cfg.stall) {
			/* Nothing can move unless the caller lets go of something. */
			if (seen != p->progress || !since) {
				seen = p->progress;
				since = mono_ms();
			} else if (mono_ms() - since > POOL_STALL_MS) {
				pthread_mutex_unlock(&p->mu);
				log_msg(LOG_ERROR, NULL, "internal error: the worker pool is stalled at slot %llu",
					(unsigned long long)p->head);
				pool_fail(p, KERF_EX_SOFTWARE);
				return -1;
			}
			pthread_mutex_unlock(&p->mu);
			p->cfg.stall(p->cfg.arg);
			pthread_mutex_lock(&p->mu);
			if (!full(p))
				break;
		}
		p->reader_waits = 1;
		timed_wait(&p->space, &p->mu, 50);
		p->reader_waits = 0;
	}
	*slot = p->next++;
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void pool_complete(struct pool *p, uint64_t slot, void *item)
{
	size_t cap = p->cfg.max_inflight;
	pthread_mutex_lock(&p->mu);
	p->item[slot % cap] = item;
	p->done[slot % cap] = 1;
	p->progress++;
	if (slot == p->head)
		pthread_cond_signal(&p->ready);
	pthread_mutex_unlock(&p->mu);
}

void pool_submit(struct pool *p, void (*fn)(void *), void *arg)
{
	struct task *t = xmalloc(sizeof *t);
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (p->cfg.newest_first) {
		t->next = p->qhead;
		p->qhead = t;
		if (!p->qtail)
			p->qtail = t;
	} else {
		if (p->qtail)
			p->qtail->next = t;
		else
			p->qhead = t;
		p->qtail = t;
	}
	p->queued++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

void pool_hold(struct pool *p, long delta)
{
	pthread_mutex_lock(&p->mu);
	p->holds += delta;
	p->progress++;
	wake_reader(p);
	pthread_mutex_unlock(&p->mu);
}

int pool_drain(struct pool *p)
{
	int r;
	pthread_mutex_lock(&p->mu);
	p->draining = 1;
	pthread_cond_broadcast(&p->work);
	while (p->head < p->next && !p->failed) {
		p->reader_waits = 1;
		timed_wait(&p->space, &p->mu, 100);
		p->reader_waits = 0;
	}
	r = p->failed ? -1 : 0;
	pthread_mutex_unlock(&p->mu);
	return r;
}

void pool_fail(struct pool *p, int code)
{
	int first;
	pthread_mutex_lock(&p->mu);
	first = !p->failed;
	if (first)
		p->failed = code;
	pthread_cond_broadcast(&p->ready);
	pthread_cond_broadcast(&p->space);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	/* The reader may sit in read(2): interrupt it so it sees the failure. */
	if (first && !pthread_equal(pthread_self(), p->reader))
		pthread_kill(p->reader, SIGTERM);
}

int pool_failed(struct pool *p)
{
	int f;
	pthread_mutex_lock(&p->mu);
	f = p->failed;
	pthread_mutex_unlock(&p->mu);
	return f;
}

void pool_free(struct pool *p)
{
	size_t cap;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	pthread_join(p->writer, NULL);
	cap = p->cfg.max_inflight;
	for (uint64_t s = p->head; s < p->next; s++)
		if (p->done[s % cap] && p->cfg.discard)
			p->cfg.discard(p->cfg.arg, p->item[s % cap]);
	while (p->qhead) {
		struct task *t = p->qhead;
		p->qhead = t->next;
		free(t);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->ready);
	pthread_cond_destroy(&p->space);
	free_all(p->workers, p->item, p->done, p);
}

void pool_op_begin(struct pool *p, struct pool_op *op, const char *key)
{
	snprintf(op->key, sizeof op->key, "%s", key);
	real_now(&op->start);
	op->start_us = mono_us();
	op->active_us = 0;
	pthread_mutex_lock(&p->mu);
	op->id = ++p->op_next;
	op->state = 1;
	p->pending++;
	pthread_mutex_unlock(&p->mu);
}

void pool_op_active(struct pool *p, struct pool_op *op)
{
	pthread_mutex_lock(&p->mu);
	if (op->state == 1) {
		p->pending--;
		p->active++;
		op->state = 2;
		op->active_us = mono_us();
	}
	pthread_mutex_unlock(&p->mu);
}

void pool_op_end(struct pool *p, struct pool_op *op, int failed, const char *error)
{
	uint64_t now = mono_us(), dur;
	struct op_record *r;
	pthread_mutex_lock(&p->mu);
	if (op->state == 1)
		p->pending--;
	else if (op->state == 2)
		p->active--;
	else {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	op->state = 3;
	if (failed)
		p->nfailed++;
	else
		p->ndone++;
	dur = now - op->start_us;
	lat_hist_add(&p->lat, dur);
	r = &p->window[p->wpos];
	p->wpos = (p->wpos + 1) % POOL_WINDOW;
	if (p->wn < POOL_WINDOW)
		p->wn++;
	r->id = op->id;
	r->start = op->start;
	r->dur_us = dur;
	r->run_us = op->active_us ? now - op->active_us : 0;
	r->failed = failed;
	snprintf(r->key, sizeof r->key, "%s", op->key);
	snprintf(r->error, sizeof r->error, "%s", error ? error : "");
	pthread_mutex_unlock(&p->mu);
}

json_t *pool_stats_json(struct pool *p)
{
	json_t *o = json_object(), *recent = json_array();
	pthread_mutex_lock(&p->mu);
	json_object_set_new(o, "pending", json_integer((json_int_t)p->pending));
	json_object_set_new(o, "active", json_integer((json_int_t)p->active));
	json_object_set_new(o, "done", json_integer((json_int_t)p->ndone));
	json_object_set_new(o, "failed", json_integer((json_int_t)p->nfailed));
	json_object_set_new(o, "inflight", json_integer((json_int_t)(p->next - p->head)));
	json_object_set_new(o, "held", json_integer((json_int_t)p->holds));
	json_object_set_new(o, "queued", json_integer((json_int_t)p->queued));
	json_object_set_new(o, "op_p50_us", json_integer((json_int_t)lat_hist_percentile(&p->lat, 50)));
	json_object_set_new(o, "op_p90_us", json_integer((json_int_t)lat_hist_percentile(&p->lat, 90)));
	json_object_set_new(o, "op_p99_us", json_integer((json_int_t)lat_hist_percentile(&p->lat, 99)));
	for (size_t i = 0; i < p->wn; i++) {
		/* Oldest first. */
		const struct op_record *r = &p->window[(p->wpos + POOL_WINDOW - p->wn + i) % POOL_WINDOW];
		char ts[32];
		json_t *e = json_object();
		event_time_fmt(&r->start, ts);
		json_object_set_new(e, "id", json_integer((json_int_t)r->id));
		json_object_set_new(e, "key", json_string(r->key));
		json_object_set_new(e, "start", json_string(ts));
		json_object_set_new(e, "dur_us", json_integer((json_int_t)r->dur_us));
		json_object_set_new(e, "run_us", json_integer((json_int_t)r->run_us));
		json_object_set_new(e, "outcome", json_string(r->failed ? "failed" : "done"));
		if (r->error[0])
			json_object_set_new(e, "error", json_string(r->error));
		json_array_append_new(recent, e);
	}
	pthread_mutex_unlock(&p->mu);
	json_object_set_new(o, "recent", recent);
	return o;
}
