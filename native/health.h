/* Health checks, run by the monitor: a timer, a probe (the executor with an exec plan), a state file. */
#ifndef MINIBOX_HEALTH_H
#define MINIBOX_HEALTH_H

#include <sys/types.h>

struct health;

/* Docker's State.Health.Status values. */
enum health_status { HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY };

/* What Docker keeps between probes (daemon/health.go). */
struct health_state {
	enum health_status status;
	int failing_streak;
};

/* One probe's verdict applied to `s`, by Docker's rules: a pass makes it
 * healthy and clears the streak; a failure counts unless the container is
 * still starting within its start period; `retries` counted failures in a
 * row make it unhealthy. Pure: no clock, no I/O. */
void health_apply(struct health_state *s, int passed, int in_start_period, int retries);

/* The monitor's side. `h` may be NULL (no health check): then these do nothing. */
/* How long poll may sleep before the next health event, in ms (-1: forever). */
int health_poll_timeout(const struct health *h);
/* The running probe's output pipe, to poll (-1: none). */
int health_fd(const struct health *h);
/* After each poll: read the probe's output, reap it or kill it at its
 * timeout, record the result, start the next probe when it is due. */
void health_tick(struct health *h);
/* The container is gone: kill a probe still running and reap it. */
void health_stop(struct health *h);

#endif
