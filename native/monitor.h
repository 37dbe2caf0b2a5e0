/* The monitor of a detached container: logs, exit status, exit hook. */
#ifndef MINIBOX_MONITOR_H
#define MINIBOX_MONITOR_H

#include <sys/types.h>

/* Open the json-file log and the pipes the container's stdout/stderr go into. */
int monitor_open_log(const char *path, long long rotate_at, int keep_files, int piped);
/* Whether the container's output goes through our pipes (not a terminal). */
int monitor_logging(void);
/* In the container's init, before anything else: stdout/stderr into the pipes. */
int monitor_child_stdio(void);
/* In the monitor, after the clone: drop its copies of the pipes' write ends. */
void monitor_after_clone(void);
/* Copy output to the log (and, in the foreground, to our own stdout/stderr,
 * forwarding the signals we get) until the container is gone; returns its
 * wait status. */
int monitor_wait(pid_t child, int signal_fd, int foreground);
/* -t: log what the terminal relay copies (one stream, as Docker does). */
void monitor_record_tty(const char *data, size_t n);
void monitor_record_tty_end(void);
/* Write the exit file, then exec the hook (argv, NULL-terminated), if any. */
void monitor_finish(const char *exit_file, int wait_status, char **hook);

#endif
