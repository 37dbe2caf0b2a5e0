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

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int log_fd = -1;
static const char *log_path;
static long long log_size, max_size; /* bytes; max_size 0: no rotation */
static int max_files = 1;

/* Entries are collected here and written in batches: one write(2) per
 * burst of output, not per line, and never half an entry. */
static char pending[1 << 17];
static size_t pending_len;
static struct stream out = { "stdout", 1, -1, -1, 0, { 0 } };
static struct stream err = { "stderr", 2, -1, -1, 0, { 0 } };
static int echoing;

int monitor_open_log(const char *path, long long rotate_at, int keep_files, int piped)
{
	int p[2], q[2];
	struct stat sb;
	log_path = path;
	max_size = rotate_at;
	max_files = keep_files > 0 ? keep_files : 1;
	log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log_fd >= 0 && fstat(log_fd, &sb) == 0)
		log_size = sb.st_size;
	if (!piped)
		return log_fd >= 0 ? 0 : -1; /* -t: the terminal relay feeds the log */
	if (log_fd < 0 || pipe2(p, O_CLOEXEC) < 0 || pipe2(q, O_CLOEXEC) < 0)
		return -1;
	out.read_fd = p[0];
	out.write_fd = p[1];
	err.read_fd = q[0];
	err.write_fd = q[1];
	return 0;
}

int monitor_logging(void)
{
	return out.read_fd >= 0;
}

int monitor_child_stdio(void)
{
	if (dup2(out.write_fd, 1) < 0 || dup2(err.write_fd, 2) < 0)
		return -1;
	close(out.read_fd);
	close(err.read_fd);
	close(log_fd);
	return 0;
}

void monitor_after_clone(void)
{
	/* Only the container writes into the pipes: EOF means it is gone. */
	close(out.write_fd);
	close(err.write_fd);
}

/* Append `s` as the body of a JSON string the way Docker's jsonlog does:
 * control characters escaped, <, > and & as \u003c-style escapes, invalid
 * UTF-8 replaced by U+FFFD. Returns the new length of `dst`. */
static size_t json_escape(char *dst, size_t o, const unsigned char *s, size_t n)
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

static void flush_pending(void)
{
	for (size_t off = 0; off < pending_len;) {
		ssize_t w = write(log_fd, pending + off, pending_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* disk full or gone: the container goes on, as with Docker */
		off += (size_t)w;
	}
	log_size += (long long)pending_len;
	pending_len = 0;
}

/* --log-opt max-size/max-file: <log>.1 is the newest old file, like Docker's. */
static void rotate(void)
{
	char from[4096], to[4096];
	close(log_fd);
	if (max_files <= 1) {
		log_fd = open(log_path, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
	} else {
		for (int i = max_files - 1; i >= 1; i--) {
			if (i == 1)
				snprintf(from, sizeof(from), "%s", log_path);
			else
				snprintf(from, sizeof(from), "%s.%d", log_path, i - 1);
			snprintf(to, sizeof(to), "%s.%d", log_path, i);
			rename(from, to);
		}
		log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	}
	log_size = 0;
}

/* One log entry, appended to the batch (flushed first if it would not fit). */
static void write_entry(const struct stream *s, const char *data, size_t n)
{
	static char line[MAX_ENTRY * 6 + 128];
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	size_t o = (size_t)sprintf(line, "{\"log\":\"");
	o = json_escape(line, o, (const unsigned char *)data, n);
	o += (size_t)sprintf(line + o, "\",\"stream\":\"%s\",\"time\":\"%s.%09ldZ\"}\n", s->name, when, ts.tv_nsec);
	if (pending_len + o > sizeof(pending) || (max_size > 0 && log_size + (long long)(pending_len + o) > max_size))
		flush_pending();
	if (max_size > 0 && log_size > 0 && log_size + (long long)o > max_size)
		rotate();
	/* An entry (< 100 KiB, see `line`) always fits once the batch is flushed. */
	memcpy(pending + pending_len, line, o);
	pending_len += o;
}

/* Read what is there; log each complete line, and full buffers as partial
 * entries. Returns 0 at EOF. */
static void split_lines(struct stream *s, int at_eof);

static int pump(struct stream *s, int at_eof)
{
	ssize_t n = at_eof ? 0 : read(s->read_fd, s->buf + s->len, sizeof(s->buf) - s->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n > 0 && echoing) {
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
	split_lines(s, n <= 0);
	return n > 0;
}

/* Log every complete line in the buffer; a full buffer, or what is left at
 * EOF, as a partial entry. */
static void split_lines(struct stream *s, int at_eof)
{
	size_t start = 0;
	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] == '\n') {
			write_entry(s, s->buf + start, i + 1 - start);
			start = i + 1;
		}
	}
	if (start > 0) {
		memmove(s->buf, s->buf + start, s->len - start);
		s->len -= start;
	}
	if (s->len == sizeof(s->buf) || (at_eof && s->len > 0)) {
		write_entry(s, s->buf, s->len);
		s->len = 0;
	}
	flush_pending();
}

void monitor_record_tty(const char *data, size_t n)
{
	/* A terminal has one stream: Docker logs it all as stdout. */
	while (n > 0 && log_fd >= 0) {
		size_t take = sizeof(out.buf) - out.len < n ? sizeof(out.buf) - out.len : n;
		memcpy(out.buf + out.len, data, take);
		out.len += take;
		data += take;
		n -= take;
		split_lines(&out, 0);
	}
}

void monitor_record_tty_end(void)
{
	if (log_fd >= 0)
		split_lines(&out, 1);
}

int monitor_wait(pid_t child, int signal_fd, int foreground)
{
	echoing = foreground;
	int open_out = 1, open_err = 1;
	for (;;) {
		struct pollfd fds[3] = {
			{ open_out ? out.read_fd : -1, POLLIN, 0 },
			{ open_err ? err.read_fd : -1, POLLIN, 0 },
			{ signal_fd, POLLIN, 0 },
		};
		/* After both pipes closed, wake up now and then to reap. */
		if (poll(fds, 3, open_out || open_err ? -1 : 100) < 0 && errno != EINTR)
			break;
		if (fds[0].revents & (POLLIN | POLLHUP))
			open_out = pump(&out, 0);
		if (fds[1].revents & (POLLIN | POLLHUP))
			open_err = pump(&err, 0);
		if (fds[2].revents & POLLIN) {
			/* The signal pipe carries signal numbers; in the foreground, pass
			 * on what minibox forwards to us (SIGCHLD only wakes us up). */
			unsigned char sig[64];
			ssize_t got;
			while ((got = read(signal_fd, sig, sizeof(sig))) > 0)
				for (ssize_t k = 0; foreground && k < got; k++)
					if (sig[k] != SIGCHLD)
						kill(child, sig[k]);
		}
		int st;
		if (!open_out && !open_err && waitpid(child, &st, WNOHANG) == child)
			return st;
	}
	int st = 0;
	waitpid(child, &st, 0);
	return st;
}

void monitor_finish(const char *exit_file, int wait_status, char **hook)
{
	if (exit_file) {
		/* Written to a temporary name and renamed: readers see all or nothing. */
		char tmp[4096];
		struct timespec ts;
		struct tm tm;
		char when[32];
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(tmp, sizeof(tmp), "%s.tmp", exit_file);
		FILE *f = fopen(tmp, "we");
		if (f) {
			if (WIFEXITED(wait_status))
				fprintf(f, "{\"exitCode\":%d,\"signal\":null", WEXITSTATUS(wait_status));
			else
				fprintf(f, "{\"exitCode\":%d,\"signal\":%d", 128 + WTERMSIG(wait_status), WTERMSIG(wait_status));
			fprintf(f, ",\"finishedAt\":\"%s.%09ldZ\"}\n", when, ts.tv_nsec);
			if (fclose(f) == 0)
				rename(tmp, exit_file);
		}
	}
	if (hook && hook[0]) {
		execv(hook[0], hook);
		/* No hook: the next minibox command notices the exit file instead. */
	}
}
