/* The monitor: the container's output into a json-file log, its exit status, the exit hook. */
#ifndef MINIBOX_MONITOR_H
#define MINIBOX_MONITOR_H

#include <stddef.h>
#include <sys/types.h>

struct monitor;
struct health;

/* Open the json-file log and, unless `piped` is 0 (-t: the terminal relay
 * feeds the log), the pipes the container's stdout/stderr go into. NULL
 * with errno set on failure. */
struct monitor *monitor_open_log(const char *path, long long rotate_at, int keep_files, int piped);
/* Whether the container's output goes through our pipes (not a terminal). */
int monitor_logging(const struct monitor *m);
/* In the container's init, before anything else: stdout/stderr into the pipes. */
int monitor_child_stdio(struct monitor *m);
/* In the monitor, after the clone: drop its copies of the pipes' write ends. */
void monitor_after_clone(struct monitor *m);
/* Copy output to the log (and, in the foreground, to our own stdout/stderr,
 * forwarding the signals read from `signal_fd`, a signalfd) and run the
 * health checks until the container is gone; returns its wait status. `m`
 * may be NULL (no log), `h` too (no health check). */
int monitor_wait(struct monitor *m, pid_t child, int signal_fd, int foreground, struct health *h);
/* -t: log what the terminal relay copies (one stream, as Docker does). */
void monitor_record_tty(struct monitor *m, const char *data, size_t n);
void monitor_record_tty_end(struct monitor *m);
/* Append `s` (n bytes) to dst at offset o as the body of a JSON string, as
 * Docker's jsonlog escapes it (dst needs 6 bytes per input byte); returns the new length. */
size_t json_escape(char *dst, size_t o, const unsigned char *s, size_t n);
/* The time as Docker writes it: RFC 3339 in UTC, with nanoseconds. */
void utc_now(char *out, size_t size);
/* Write the exit file, then exec the hook (argv, NULL-terminated), if any. */
void monitor_finish(const char *exit_file, int wait_status, char **hook);

#endif
