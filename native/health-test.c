/*
 * health-test: the health state machine (health_apply, Docker's rules from
 * daemon/health.go) checked case by case. Built with the executor; run by
 * test/unit/health-state.test.ts. Prints one line per failed case, exits 1
 * if any failed.
 */
#include <stdio.h>

#include "health.h"

static int failures;

static void expect(const char *name, struct health_state s, enum health_status status, int streak)
{
	if (s.status == status && s.failing_streak == streak)
		return;
	printf("%s: got status %d streak %d, want %d %d\n", name, s.status, s.failing_streak, status, streak);
	failures++;
}

int main(void)
{
	struct health_state s = { HEALTH_STARTING, 0 };
	health_apply(&s, 1, 1, 3);
	expect("a pass while starting makes it healthy", s, HEALTH_HEALTHY, 0);

	s = (struct health_state){ HEALTH_STARTING, 0 };
	health_apply(&s, 0, 1, 1);
	health_apply(&s, 0, 1, 1);
	expect("failures within the start period do not count", s, HEALTH_STARTING, 0);
	health_apply(&s, 0, 0, 2);
	expect("after the start period they count", s, HEALTH_STARTING, 1);
	health_apply(&s, 0, 0, 2);
	expect("retries failures in a row make it unhealthy", s, HEALTH_UNHEALTHY, 2);
	health_apply(&s, 0, 0, 2);
	expect("the streak goes on counting", s, HEALTH_UNHEALTHY, 3);
	health_apply(&s, 1, 0, 2);
	expect("one pass makes it healthy again", s, HEALTH_HEALTHY, 0);

	s = (struct health_state){ HEALTH_HEALTHY, 0 };
	health_apply(&s, 0, 1, 3);
	expect("once healthy, the start period no longer excuses a failure", s, HEALTH_HEALTHY, 1);
	health_apply(&s, 0, 0, 3);
	expect("healthy until the retries", s, HEALTH_HEALTHY, 2);
	health_apply(&s, 0, 0, 3);
	expect("then unhealthy", s, HEALTH_UNHEALTHY, 3);
	return failures ? 1 : 0;
}
