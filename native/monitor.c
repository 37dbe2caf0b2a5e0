/*
 * The monitor: what the executor stays as for a detached container.
 *
 * Once the container's program runs, this process (its init's parent) only
 * has three jobs, like podman's conmon:
 *   1. copy the container's stdout and stderr into a log file, in Docker's
 *      json-file format: one object per line,
 *      {"log":"hello\n","stream":"stdout","time":"2026-01-01T00:00:00.000000000Z"}
 *   2. wait for the init to exit and write its status to an exit file
 *   3. run the exit hook (minibox itself, which removes the cgroup, records
 *      the exit, applies --rm) by exec'ing it, so no C decides anything here.
 * It must stay small: it is one process per running container.
 */
#define _GNU_SOURCE
#include "monitor.h"

#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Docker cuts a line longer than this into several entries. */
#define MAX_ENTRY 16384

struct stream {
	const char *name;
	int echo_fd; /* foreground: also copied, as read, to our own stdout/stderr */
	int read_fd, write_fd;
	size_t len;
	char buf[MAX_ENTRY];
};

struct monitor {
	int log_fd;
	const char *log_path;
	long long log_size, max_size; /* bytes; max_size 0: no rotation */
	int max_files;
	int echoing;
	struct stream out, err;
	/* Entries are collected here and written in batches: one write(2) per
	 * burst of output, not per line, and never half an entry. */
	size_t pending_len;
	char pending[1 << 17];
	char line[MAX_ENTRY * 6 + 128]; /* one entry, escaped (6 bytes per input byte at worst) */
};

static void init_stream(struct stream *s, const char *name, int echo_fd)
{
	s->name = name;
	s->echo_fd = echo_fd;
	s->read_fd = s->write_fd = -1;
	s->len = 0;
}

struct monitor *monitor_open_log(const char *path, long long rotate_at, int keep_files, int piped)
{
	int p[2], q[2];
	struct stat sb;
	struct monitor *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	m->log_path = path;
	m->max_size = rotate_at;
	m->max_files = keep_files > 0 ? keep_files : 1;
	m->log_size = 0;
	m->echoing = 0;
	m->pending_len = 0;
	init_stream(&m->out, "stdout", 1);
	init_stream(&m->err, "stderr", 2);
	m->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (m->log_fd < 0) {
		free(m);
		return NULL;
	}
	if (fstat(m->log_fd, &sb) == 0)
		m->log_size = sb.st_size;
	if (!piped)
		return m; /* -t: the terminal relay feeds the log */
	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	if (pipe2(q, O_CLOEXEC) < 0) {
		close(p[0]);
		close(p[1]);
		goto fail;
	}
	m->out.read_fd = p[0];
	m->out.write_fd = p[1];
	m->err.read_fd = q[0];
	m->err.write_fd = q[1];
	return m;
fail:;
	int saved = errno;
	close(m->log_fd);
	free(m);
	errno = saved;
	return NULL;
}

int monitor_logging(const struct monitor *m)
{
	return m && m->out.read_fd >= 0;
}

int monitor_child_stdio(struct monitor *m)
{
	if (dup2(m->out.write_fd, 1) < 0 || dup2(m->err.write_fd, 2) < 0)
		return -1;
	close(m->out.read_fd);
	close(m->err.read_fd);
	close(m->log_fd);
	return 0;
}

void monitor_after_clone(struct monitor *m)
{
	/* Only the container writes into the pipes: EOF means it is gone. */
	close(m->out.write_fd);
	close(m->err.write_fd);
}

/* Append `s` as the body of a JSON string the way Docker's jsonlog does:
 * control characters escaped, <, > and & as \u003c-style escapes, invalid
 * UTF-8 replaced by U+FFFD. Returns the new length of `dst`. */
size_t json_escape(char *dst, size_t o, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c == '"' || c == '\\') {
				dst[o++] = '\\';
				dst[o++] = (char)c;
			} else if (c == '\n') {
				dst[o++] = '\\';
				dst[o++] = 'n';
			} else if (c == '\r') {
				dst[o++] = '\\';
				dst[o++] = 'r';
			} else if (c == '\t') {
				dst[o++] = '\\';
				dst[o++] = 't';
			} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
				o += (size_t)sprintf(dst + o, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
			} else {
				dst[o++] = (char)c;
			}
			i++;
			continue;
		}
		/* A multi-byte sequence: check its length and continuation bytes. */
		size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
		int ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = (s[i + k] & 0xc0) == 0x80;
		if (ok && len == 3)
			ok = !(c == 0xe0 && s[i + 1] < 0xa0) && !(c == 0xed && s[i + 1] > 0x9f);
		if (ok && len == 4)
			ok = !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] > 0x8f);
		if (!ok) {
			memcpy(dst + o, "\\ufffd", 6);
			o += 6;
			i++;
		} else if (len == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
			o += (size_t)sprintf(dst + o, "\\u202%c", s[i + 2] == 0xa8 ? '8' : '9');
			i += 3;
		} else {
			memcpy(dst + o, s + i, len);
			o += len;
			i += len;
		}
	}
	return o;
}

static void flush_pending(struct monitor *m)
{
	for (size_t off = 0; off < m->pending_len;) {
		ssize_t w = write(m->log_fd, m->pending + off, m->pending_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* disk full or gone: the container goes on, as with Docker */
		off += (size_t)w;
	}
	m->log_size += (long long)m->pending_len;
	m->pending_len = 0;
}

/* --log-opt max-size/max-file: <log>.1 is the newest old file, like Docker's. */
static void rotate(struct monitor *m)
{
	char from[4096], to[4096];
	close(m->log_fd);
	if (m->max_files <= 1) {
		m->log_fd = open(m->log_path, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
	} else {
		for (int i = m->max_files - 1; i >= 1; i--) {
			if (i == 1)
				snprintf(from, sizeof(from), "%s", m->log_path);
			else
				snprintf(from, sizeof(from), "%s.%d", m->log_path, i - 1);
			snprintf(to, sizeof(to), "%s.%d", m->log_path, i);
			rename(from, to);
		}
		m->log_fd = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	}
	m->log_size = 0;
}

/* The time as Docker writes it: RFC 3339 in UTC, with nanoseconds. */
void utc_now(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char seconds[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(seconds, sizeof(seconds), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%09ldZ", seconds, ts.tv_nsec);
}

/* One log entry, appended to the batch (flushed first if it would not fit). */
static void write_entry(struct monitor *m, const struct stream *s, const char *data, size_t n)
{
	char when[64];
	utc_now(when, sizeof(when));
	size_t o = (size_t)sprintf(m->line, "{\"log\":\"");
	o = json_escape(m->line, o, (const unsigned char *)data, n);
	o += (size_t)sprintf(m->line + o, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", s->name, when);
	if (m->pending_len + o > sizeof(m->pending) ||
	    (m->max_size > 0 && m->log_size + (long long)(m->pending_len + o) > m->max_size))
		flush_pending(m);
	if (m->max_size > 0 && m->log_size > 0 && m->log_size + (long long)o > m->max_size)
		rotate(m);
	/* An entry (< 100 KiB, see `line`) always fits once the batch is flushed. */
	memcpy(m->pending + m->pending_len, m->line, o);
	m->pending_len += o;
}

/* Log every complete line in the buffer; a full buffer, or what is left at
 * EOF, as a partial entry. */
static void split_lines(struct monitor *m, struct stream *s, int at_eof)
{
	size_t start = 0;
	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] == '\n') {
			write_entry(m, s, s->buf + start, i + 1 - start);
			start = i + 1;
		}
	}
	if (start > 0) {
		memmove(s->buf, s->buf + start, s->len - start);
		s->len -= start;
	}
	if (s->len == sizeof(s->buf) || (at_eof && s->len > 0)) {
		write_entry(m, s, s->buf, s->len);
		s->len = 0;
	}
	flush_pending(m);
}

/* Read what is there; log each complete line, and full buffers as partial
 * entries. Returns 0 at EOF. */
static int pump(struct monitor *m, struct stream *s)
{
	ssize_t n = read(s->read_fd, s->buf + s->len, sizeof(s->buf) - s->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n > 0 && m->echoing) {
		/* Foreground: the terminal (or pipe) minibox was given sees every byte, unchanged. */
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(s->echo_fd, s->buf + s->len + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += w;
		}
	}
	if (n > 0)
		s->len += (size_t)n;
	split_lines(m, s, n <= 0);
	return n > 0;
}

void monitor_record_tty(struct monitor *m, const char *data, size_t n)
{
	/* A terminal has one stream: Docker logs it all as stdout. */
	while (m && n > 0 && m->log_fd >= 0) {
		struct stream *out = &m->out;
		size_t take = sizeof(out->buf) - out->len < n ? sizeof(out->buf) - out->len : n;
		memcpy(out->buf + out->len, data, take);
		out->len += take;
		data += take;
		n -= take;
		split_lines(m, out, 0);
	}
}

void monitor_record_tty_end(struct monitor *m)
{
	if (m && m->log_fd >= 0)
		split_lines(m, &m->out, 1);
}

/* Signals read from the signalfd; in the foreground, pass on what minibox
 * forwards to us (SIGCHLD only wakes us up). */
static void forward_signals(int signal_fd, pid_t child, int foreground)
{
	struct signalfd_siginfo si;
	while (read(signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (foreground && si.ssi_signo != SIGCHLD)
			kill(child, (int)si.ssi_signo);
}

/* The shorter of two poll timeouts (-1: none). */
static int sooner(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int monitor_wait(struct monitor *m, pid_t child, int signal_fd, int foreground, struct health *h)
{
	int open_out = monitor_logging(m), open_err = open_out;
	if (m)
		m->echoing = foreground;
	for (;;) {
		struct pollfd fds[4] = {
			{ open_out ? m->out.read_fd : -1, POLLIN, 0 },
			{ open_err ? m->err.read_fd : -1, POLLIN, 0 },
			{ signal_fd, POLLIN, 0 },
			{ health_fd(h), POLLIN, 0 },
		};
		/* After both pipes closed, wake up now and then to reap; and when a health check is due. */
		int timeout = sooner(open_out || open_err ? -1 : 100, health_poll_timeout(h));
		if (poll(fds, 4, timeout) < 0 && errno != EINTR)
			break;
		health_tick(h);
		if (fds[0].revents & (POLLIN | POLLHUP))
			open_out = pump(m, &m->out);
		if (fds[1].revents & (POLLIN | POLLHUP))
			open_err = pump(m, &m->err);
		if (fds[2].revents & POLLIN)
			forward_signals(signal_fd, child, foreground);
		int st;
		if (!open_out && !open_err && waitpid(child, &st, WNOHANG) == child) {
			health_stop(h);
			return st;
		}
	}
	health_stop(h);
	int st = 0;
	waitpid(child, &st, 0);
	return st;
}

/* Written to a temporary name and renamed: readers see all or nothing. */
static void write_exit_file(const char *exit_file, int wait_status)
{
	char tmp[4096];
	char when[64];
	utc_now(when, sizeof(when));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", exit_file) >= (int)sizeof(tmp))
		return;
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	if (WIFEXITED(wait_status))
		fprintf(f, "{\"exitCode\":%d,\"signal\":null", WEXITSTATUS(wait_status));
	else
		fprintf(f, "{\"exitCode\":%d,\"signal\":%d", 128 + WTERMSIG(wait_status), WTERMSIG(wait_status));
	fprintf(f, ",\"finishedAt\":\"%s\"}\n", when);
	if (fclose(f) == 0)
		rename(tmp, exit_file);
}

void monitor_finish(const char *exit_file, int wait_status, char **hook)
{
	if (exit_file)
		write_exit_file(exit_file, wait_status);
	if (hook && hook[0]) {
		execv(hook[0], hook);
		/* No hook: the next minibox command notices the exit file instead. */
	}
}
