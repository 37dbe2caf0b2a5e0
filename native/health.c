/*
 * Health checks (HEALTHCHECK, run --health-*), run by the container's
 * monitor: no daemon, as everything else about a detached container.
 *
 * minibox writes an exec plan for the check's command when the container
 * starts (the same plan `minibox exec` builds: the container's cgroup,
 * namespaces, user, capabilities, seccomp filter). Every interval the
 * monitor forks and runs this very executor (/proc/self/exe) on that plan,
 * as `exec` would, with the probe's stdout and stderr in one pipe. A probe
 * still running at its timeout is killed (SIGKILL; the process it forked
 * into the container has a parent-death signal and goes with it) and counts
 * as a failure. Each result goes into the state file, Docker's
 * State.Health: written whole to a temporary name and renamed, so readers
 * (inspect, ps, wait) see all or nothing.
 *
 * Nothing here runs unless the plan has a `health` step.
 */
#define _GNU_SOURCE
#include "health.h"

void health_apply(struct health_state *s, int passed, int in_start_period, int retries)
{
	if (passed) {
		s->failing_streak = 0;
		s->status = HEALTH_HEALTHY;
		return;
	}
	/* Docker: failures while still starting, within the start period, do not count. */
	if (s->status == HEALTH_STARTING && in_start_period)
		return;
	s->failing_streak++;
	if (s->failing_streak >= retries)
		s->status = HEALTH_UNHEALTHY;
}

/* health-test links the state machine alone. */
#ifndef HEALTH_STATE_ONLY

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"

/* Docker's limits: 4 KiB of output per probe, the last 5 probes kept. */
#define MAX_OUTPUT 4096
#define KEEP_RESULTS 5

struct result {
	char start[40], end[40];
	int exit_code; /* -1: killed at the timeout */
	size_t len;
	char output[MAX_OUTPUT];
};

struct health {
	char *plan_path, *state_path, *timeout_text;
	char *events_path, *actor; /* the store's event journal; the event's Actor as JSON */
	long long interval, timeout, start_period, start_interval; /* ms */
	int retries;
	long long began;   /* monotonic ms when the container started */
	long long next_at; /* monotonic ms of the next probe */
	struct health_state state;
	/* The running probe: its pid (0: none), output pipe, deadline. */
	pid_t probe;
	int out_fd;
	long long deadline, probe_began;
	struct result current;
	struct result log[KEEP_RESULTS]; /* oldest first */
	int n_log;
	char escaped[MAX_OUTPUT * 6 + 1]; /* one output as a JSON string body */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *status_name(enum health_status s)
{
	return s == HEALTH_HEALTHY ? "healthy" : s == HEALTH_UNHEALTHY ? "unhealthy" : "starting";
}

/* Docker's State.Health, written to a temporary name and renamed. */
static void write_state(struct health *h)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", h->state_path) >= (int)sizeof(tmp))
		return;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "{\"Status\":\"%s\",\"FailingStreak\":%d,\"Log\":[", status_name(h->state.status),
		h->state.failing_streak);
	for (int i = 0; i < h->n_log; i++) {
		const struct result *r = &h->log[i];
		size_t n = json_escape(h->escaped, 0, (const unsigned char *)r->output, r->len);
		h->escaped[n] = '\0';
		fprintf(f, "%s{\"Start\":\"%s\",\"End\":\"%s\",\"ExitCode\":%d,\"Output\":\"%s\"}", i ? "," : "",
			r->start, r->end, r->exit_code, h->escaped);
	}
	fprintf(f, "]}\n");
	if (fclose(f) == 0)
		rename(tmp, h->state_path);
}

/* The next probe: the start interval while starting within the start period, else the interval. */
static void schedule(struct health *h)
{
	long long now = now_ms();
	int starting = h->state.status == HEALTH_STARTING && now < h->began + h->start_period;
	h->next_at = now + (starting ? h->start_interval : h->interval);
}

/* "health PLAN STATE INTERVAL TIMEOUT START-PERIOD START-INTERVAL RETRIES TIMEOUT-TEXT EVENTS ACTOR"
 * (times in ms; TIMEOUT-TEXT is how Docker words the timeout in its message;
 * EVENTS the store's journal, ACTOR the container as events name it, JSON). */
int step_health(struct executor *ex, const struct step *st)
{
	struct health *h = calloc(1, sizeof(*h));
	if (!h)
		return fail(ex, st, "calloc", "health");
	/* Copied: the plan's text is freed once the monitor runs (release_plan). */
	h->plan_path = strdup(arg(st, 1));
	h->state_path = strdup(arg(st, 2));
	h->timeout_text = strdup(arg(st, 8));
	h->events_path = strdup(arg(st, 9));
	h->actor = strdup(arg(st, 10));
	if (!h->plan_path || !h->state_path || !h->timeout_text || !h->events_path || !h->actor)
		return fail(ex, st, "strdup", "health");
	h->interval = strtoll(arg(st, 3), NULL, 10);
	h->timeout = strtoll(arg(st, 4), NULL, 10);
	h->start_period = strtoll(arg(st, 5), NULL, 10);
	h->start_interval = strtoll(arg(st, 6), NULL, 10);
	h->retries = (int)num(arg(st, 7));
	h->out_fd = -1;
	h->began = now_ms();
	schedule(h);
	write_state(h); /* "starting", no results yet: a new start begins again */
	ex->health = h;
	return 0;
}

/* In the forked child: the executor's descriptors (0 /dev/null, 1 and 2 the
 * output pipe, 3 the plan, 4 and 5 /dev/null) and default signals, then exec. */
static _Noreturn void exec_probe(int plan, int out, int null)
{
	/* Above 5 first, so no dup2 below overwrites one not yet placed. */
	plan = fcntl(plan, F_DUPFD_CLOEXEC, 10);
	out = fcntl(out, F_DUPFD_CLOEXEC, 10);
	null = fcntl(null, F_DUPFD_CLOEXEC, 10);
	if (plan < 0 || out < 0 || null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    dup2(plan, PLAN_FD) < 0 || dup2(null, STATUS_FD) < 0 || dup2(null, CONTROL_FD) < 0)
		_exit(EXIT_SETUP_FAILED);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	char *argv[] = { "minibox-exec", NULL };
	execv("/proc/self/exe", argv);
	_exit(EXIT_SETUP_FAILED);
}

static void start_probe(struct health *h)
{
	int plan = open(h->plan_path, O_RDONLY | O_CLOEXEC);
	if (plan < 0) {
		schedule(h); /* minibox writes it once the container runs: try again later */
		return;
	}
	int p[2] = { -1, -1 };
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		close(plan);
		if (null >= 0)
			close(null);
		schedule(h);
		return;
	}
	memset(&h->current, 0, sizeof(h->current));
	utc_now(h->current.start, sizeof(h->current.start));
	h->probe_began = now_ms();
	h->probe = fork();
	if (h->probe == 0)
		exec_probe(plan, p[1], null);
	close(plan);
	close(null);
	close(p[1]);
	if (h->probe < 0) {
		h->probe = 0;
		close(p[0]);
		schedule(h);
		return;
	}
	h->out_fd = p[0];
	h->deadline = h->probe_began + h->timeout;
}

/* Keep the first MAX_OUTPUT bytes; read and drop the rest, so the probe never blocks on a full pipe. */
static void read_output(struct health *h)
{
	char scratch[4096];
	for (;;) {
		struct result *r = &h->current;
		char *into = r->len < MAX_OUTPUT ? r->output + r->len : scratch;
		size_t room = r->len < MAX_OUTPUT ? MAX_OUTPUT - r->len : sizeof(scratch);
		ssize_t n = read(h->out_fd, into, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (into != scratch)
			r->len += (size_t)n;
	}
}

/* A change of status is an event, as Docker's "health_status: healthy": one
 * line appended to the journal in one write(2) (O_APPEND: never interleaved
 * with another writer's), the shape src/events/journal.ts writes. Lost, not
 * fatal, if the journal cannot be written. */
static void record_event(const struct health *h)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long nano = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	char line[8192];
	int n = snprintf(line, sizeof(line),
			 "{\"Type\":\"container\",\"Action\":\"health_status: %s\",\"Actor\":%s,"
			 "\"scope\":\"local\",\"time\":%lld,\"timeNano\":%lld}\n",
			 status_name(h->state.status), h->actor, (long long)ts.tv_sec, nano);
	if (n < 0 || n >= (int)sizeof(line))
		return;
	int fd = open(h->events_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) < 0) {
		/* an event lost, never the check */
	}
	close(fd);
}

/* The probe is over: its result into the log (the last KEEP_RESULTS), the state file. */
static void record(struct health *h, int exit_code)
{
	enum health_status before = h->state.status;
	struct result *r = &h->current;
	if (h->out_fd >= 0) {
		read_output(h);
		close(h->out_fd);
		h->out_fd = -1;
	}
	h->probe = 0;
	r->exit_code = exit_code;
	if (exit_code == -1)
		r->len = (size_t)snprintf(r->output, sizeof(r->output), "Health check exceeded timeout (%s)",
					  h->timeout_text);
	utc_now(r->end, sizeof(r->end));
	health_apply(&h->state, exit_code == 0, h->probe_began - h->began < h->start_period, h->retries);
	if (h->n_log == KEEP_RESULTS)
		memmove(h->log, h->log + 1, sizeof(h->log[0]) * (KEEP_RESULTS - 1));
	else
		h->n_log++;
	h->log[h->n_log - 1] = *r;
	write_state(h);
	if (h->state.status != before)
		record_event(h);
	schedule(h);
}

int health_poll_timeout(const struct health *h)
{
	if (!h)
		return -1;
	long long wait = (h->probe ? h->deadline : h->next_at) - now_ms();
	if (h->probe && wait > 100)
		wait = 100; /* a probe's exit shows as SIGCHLD, but its output pipe may outlive it */
	return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

int health_fd(const struct health *h)
{
	return h && h->probe ? h->out_fd : -1;
}

void health_tick(struct health *h)
{
	if (!h)
		return;
	if (h->probe) {
		int st;
		read_output(h);
		pid_t done = waitpid(h->probe, &st, WNOHANG);
		if (done == h->probe)
			record(h, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		else if (now_ms() >= h->deadline) {
			kill(h->probe, SIGKILL);
			waitpid(h->probe, &st, 0);
			record(h, -1);
		}
		return;
	}
	if (now_ms() >= h->next_at)
		start_probe(h);
}

void health_stop(struct health *h)
{
	if (!h || !h->probe)
		return;
	kill(h->probe, SIGKILL);
	waitpid(h->probe, NULL, 0);
	h->probe = 0;
	if (h->out_fd >= 0)
		close(h->out_fd);
	h->out_fd = -1;
}

#endif /* HEALTH_STATE_ONLY */
