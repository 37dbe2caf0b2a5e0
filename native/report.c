/*
 * What the executor tells minibox, on the status pipe (fd 4): one line per
 * event. The TypeScript side knows what each step means and prints it in
 * words; here a step is only its line number in the plan.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "executor.h"

double elapsed_ms(const struct executor *ex)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ex->t0.tv_sec) * 1e3 + (double)(now.tv_nsec - ex->t0.tv_nsec) / 1e6;
}

/* Where the status pipe is: STATUS_FD, until pass-fds needs that number for
 * one of the caller's descriptors and moves it (move_status_fd). The one
 * piece of state outside the executor: status() is called from everywhere. */
static int status_fd = STATUS_FD;

int move_status_fd(int lowest)
{
	int fd = fcntl(status_fd, F_DUPFD_CLOEXEC, lowest);
	if (fd < 0 && errno == EBADF) {
		status_fd = -1; /* already let go of (wait-start): nobody listens */
		return 0;
	}
	if (fd < 0)
		return -1;
	close(status_fd);
	status_fd = fd;
	return 0;
}

/* Lines below PIPE_BUF are written atomically, so the parent and the child
 * can both report without interleaving. */
void status(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (status_fd < 0)
		return;
	if (write(status_fd, buf, (size_t)n) < 0) {
		/* Nobody listens any more; the exit status still tells the story. */
	}
}

int fail(struct executor *ex, const struct step *st, const char *call, const char *detail)
{
	struct failure *f = &ex->failed;
	f->err = errno;
	f->line = st->line;
	f->op = st->op->name;
	f->call = call;
	snprintf(f->detail, sizeof(f->detail), "%.500s", detail ? detail : "");
	return -1;
}

void report_failure(const struct executor *ex)
{
	const struct failure *f = &ex->failed;
	status("error %d %s %s %d %s", f->line, f->op, f->call, f->err, f->detail);
}

int run_steps(struct executor *ex, const struct section *sec)
{
	for (int i = 0; i < sec->n; i++) {
		const struct step *st = &sec->steps[i];
		ex->step_start = ex->tracing ? elapsed_ms(ex) : 0;
		if (st->op->run(ex, st) < 0)
			return -1;
		/* Which step, when, how long. */
		if (ex->tracing)
			status("trace %d %.3f %.3f", st->line, ex->step_start, elapsed_ms(ex) - ex->step_start);
	}
	return 0;
}
