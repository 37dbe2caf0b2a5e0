/*
 * Steps the executor performs for itself, on the host side of the clone:
 * writing the child's maps and cgroup membership, telling minibox the PID,
 * waiting for its go, and what the monitor needs (log, exit file, hook).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "executor.h"

char *expand_pid(const char *in, pid_t pid)
{
	char digits[16];
	int dlen = snprintf(digits, sizeof(digits), "%d", (int)pid);
	size_t count = 0;
	for (const char *p = strstr(in, "{pid}"); p; p = strstr(p + 5, "{pid}"))
		count++;
	char *out = malloc(strlen(in) + count * (size_t)dlen + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (const char *p; (p = strstr(in, "{pid}")); in = p + 5) {
		memcpy(o, in, (size_t)(p - in));
		o += p - in;
		memcpy(o, digits, (size_t)dlen);
		o += dlen;
	}
	strcpy(o, in);
	return out;
}

int write_string(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(content);
	ssize_t n = write(fd, content, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? 0 : -1;
}

/* "write FILE CONTENT", "{pid}" in either standing for the child's PID. A
 * file under a root (a --sysctl in the container's /proc) is found inside it. */
int step_write(struct executor *ex, const struct step *st)
{
	char *path = expand_pid(arg(st, 1), ex->child);
	char *content = expand_pid(arg(st, 2), ex->child);
	int rc = 0, fd = -1;
	if (!path || !content)
		rc = fail(ex, st, "malloc", arg(st, 1));
	else if ((fd = open_in_root(ex, path, O_WRONLY, 0)) < 0)
		rc = fail(ex, st, "openat2", path);
	else if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		rc = fail(ex, st, "write", path);
	if (fd >= 0)
		close(fd);
	free(path);
	free(content);
	return rc;
}

int step_report_pid(struct executor *ex, const struct step *st)
{
	(void)st;
	status("pid %d", (int)ex->child);
	return 0;
}

/* Hold the child until minibox, which has the PID, is done with it. */
int step_wait_go(struct executor *ex, const struct step *st)
{
	char c = 0;
	ssize_t n;
	while ((n = read(CONTROL_FD, &c, 1)) < 0 && errno == EINTR)
		;
	if (n != 1 || c != 'g') {
		errno = ECANCELED;
		return fail(ex, st, "read", "control pipe: minibox went away");
	}
	return 0;
}

/* "log FILE MAX-SIZE MAX-FILES tty|pipes" */
int step_log(struct executor *ex, const struct step *st)
{
	struct monitor *m = monitor_open_log(arg(st, 1), strtoll(arg(st, 2), NULL, 10), (int)num(arg(st, 3)),
					     strcmp(arg(st, 4), "tty") != 0);
	if (!m)
		return fail(ex, st, "open", arg(st, 1));
	ex->monitor = m;
	return 0;
}

int step_exit_file(struct executor *ex, const struct step *st)
{
	ex->exit_file = st->field[1];
	return 0;
}

int step_on_exit(struct executor *ex, const struct step *st)
{
	ex->exit_hook = &st->field[1];
	return 0;
}
