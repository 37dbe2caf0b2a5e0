/*
 * What every part of the executor shares: the parsed plan, the one struct
 * that carries state from step to step, the op table and the reporting
 * helpers. Nothing here is a global: every handler gets the executor.
 */
#ifndef MINIBOX_EXECUTOR_H
#define MINIBOX_EXECUTOR_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "monitor.h"

#define PLAN_FD 3
#define STATUS_FD 4
#define CONTROL_FD 5
/* minibox-runc: the caller's descriptors for the program (pass-fds) start here. */
#define PASSED_FDS_BASE 6
#define EXIT_SETUP_FAILED 125
#define EXIT_CANNOT_EXECUTE 126
#define EXIT_NOT_FOUND 127
/* On the errors pipe: the child waits for `start` (an errno is never negative). */
#define START_WAITING (-1)

struct executor;
struct step;

/* A handler performs one step; 0, or -1 after fail() recorded why. */
typedef int step_fn(struct executor *ex, const struct step *st);

/* One row of the op table (ops.c). */
struct op {
	const char *name;
	int min_args;   /* fields after the op name */
	int max_args;   /* VARIADIC: no upper bound */
	int stride;     /* optional fields come in groups of this many (mkdir's owner: uid AND gid) */
	step_fn *run;   /* NULL: performed by the executor itself (clone) */
};

#define VARIADIC (-1)

const struct op *find_op(const char *name);
/* "5", "2 or 4", "at least 1": what `op` accepts, for the error line. */
void describe_arity(const struct op *op, char *out, size_t size);

struct step {
	int line;              /* line number in the plan, for error and trace lines */
	int nfields;           /* the op name included */
	char **field;          /* field[0] is the op name; NULL after the last */
	const struct op *op;
};

struct section {
	struct step *steps;
	int n;
};

struct plan {
	char *text;            /* the plan as read; fields point into it */
	struct step *steps;    /* every step, one allocation */
	char **fields;         /* every field pointer, one allocation */
	struct section setup, child, parent;
};

/* The first failed step: which one, what call, why. */
struct failure {
	int line;
	const char *op;
	const char *call;
	int err;
	char detail[512];
};

/* A growing, NULL-terminated array of strings (the container's environment). */
struct strv {
	char **v;
	size_t n, cap;
};

struct executor {
	bool tracing;          /* --trace: a trace line per step */
	bool detached;         /* --detach: outlive minibox, log, run the exit hook */
	bool let_go;           /* --let-go: exit once the child waits for `start` or runs (minibox-runc create, exec -d) */
	struct timespec t0;
	double step_start;     /* ms since t0 when the running step began */
	struct plan plan;
	struct failure failed;

	/* Left by one step for a later one, or for the wait. */
	int host_mntns;        /* mountns: the way back (leave_private_mntns), -1 once taken */
	int idmap_userns;      /* idmap-userns: the mapping idmap-mount attaches */
	const char *exit_file; /* exit-file */
	char **exit_hook;      /* on-exit: argv, NULL-terminated */
	struct strv env;       /* env steps, for exec */
	struct strv roots;     /* root steps: directories whose paths are resolved inside them */
	const char *base;      /* base: the working directory paths under it are opened from */
	pid_t child;           /* the cloned init */
	int console_socket[2]; /* pty: [0] parent's end, [1] child's end */
	int tty_master;        /* the container's terminal, received from the child */
	int exec_fifo;         /* exec-fifo: what wait-start reads its go from */
	int errors_fd;         /* the child's end of the errors pipe (wait-start says "created" there) */
	struct monitor *monitor; /* log: the container's output goes through us */
	struct health *health; /* health: the monitor runs the container's health check */
	int *held_ports;       /* hold-port: the published host ports' sockets, kept open */
	size_t n_held_ports;
	pid_t cgroup_warmer;   /* warm-cgroup: the child paying the first migration's wait, until reaped */
};

/* plan.c */
/* Read, parse and check the whole plan; on failure the error line is written. */
int load_plan(struct executor *ex, int fd);
/* Copy out what a detached monitor still needs, then free the plan. */
void release_plan(struct executor *ex);

/* report.c */
double elapsed_ms(const struct executor *ex);
/* One line on the status pipe. */
void status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The status pipe moved to descriptor LOWEST or above, close-on-exec (pass-fds
 * fills 3..): 0, or -1 with errno. */
int move_status_fd(int lowest);
/* Record a failed step (errno is read here); returns -1 for the handler. */
int fail(struct executor *ex, const struct step *st, const char *call, const char *detail);
void report_failure(const struct executor *ex);
/* Run a section's steps in order, tracing each; -1 at the first failure. */
int run_steps(struct executor *ex, const struct section *sec);

/* steps-credentials.c */
/* PR_SET_DUMPABLE 0: our /proc/PID/exe (the host's binary) out of the container's reach. */
void stay_undumpable(void);

/* steps-host.c */
/* `in` with every "{pid}" replaced by `pid`, in a new string (NULL if out of memory). */
char *expand_pid(const char *in, pid_t pid);
/* Write `content` to an existing file in one write(2) (proc and cgroup files want that). */
int write_string(const char *path, const char *content);

/* cgroup-warm.c */
/* Wait for warm-cgroup's child (none: return at once); before the init joins its cgroup. */
void reap_cgroup_warmer(struct executor *ex);
void warm_cgroup(struct executor *ex, const char *procs_file);
void leave_private_mntns(struct executor *ex);

/* in-root.c */
/* Open `path` (O_CLOEXEC added): below a declared root with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) relative to it, else as it is. */
int open_in_root(const struct executor *ex, const char *path, int flags, mode_t mode);
/* `path` relative to the base directory if it lies under it, else as it is. */
const char *from_base(const struct executor *ex, const char *path);
/* The directory that holds `path`, opened O_PATH as above; its last component in *name. */
int open_parent_in_root(const struct executor *ex, const char *path, const char **name);
/* "/proc/self/fd/N": what mount(2) is given for a descriptor. */
struct fd_path {
	char path[32];
};
const char *fd_path(int fd, struct fd_path *buf);

/* steps-terminal.c */
/* The master end of the container's terminal, sent by the child's console step. */
int receive_console(struct executor *ex);

/* steps-ports.c */
/* Close the published ports' sockets (the cloned child does, first thing). */
void close_held_ports(struct executor *ex);

/* wait.c */
int wait_for_child(struct executor *ex);
int foreground_monitor(struct executor *ex);
int run_as_monitor(struct executor *ex);

/* Field i of a step ("" past the end; the table has checked the count). */
static inline const char *arg(const struct step *st, int i)
{
	return i < st->nfields ? st->field[i] : "";
}

static inline unsigned long num(const char *s)
{
	return strtoul(s, NULL, 0);
}

/* "-" stands for an absent (NULL) string argument. */
static inline const char *opt(const char *s)
{
	return strcmp(s, "-") ? s : NULL;
}

/* The handlers, one per op, grouped by concern in steps-*.c and init.c. */
step_fn step_root, step_base, step_mountns, step_mount, step_mkdir, step_touch, step_mknod, step_chown, step_symlink,
	step_remount_ro, step_mask, step_pivot_root, step_idmap_userns, step_idmap_mount;
step_fn step_unshare, step_setns, step_user, step_groups, step_bounding, step_caps, step_no_new_privs,
	step_rlimit, step_chdir, step_sethostname, step_setdomainname, step_ifup, step_closefds, step_stdin_null,
	step_env, step_exec, step_init, step_seccomp;
step_fn step_pty, step_console;
step_fn step_write, step_report_pid, step_wait_go, step_log, step_exit_file, step_on_exit, step_health;
step_fn step_veth, step_netif, step_route_default, step_hold_port;
step_fn step_warm_cgroup;
step_fn step_exec_fifo, step_wait_start, step_console_socket, step_join_ns, step_pass_fds;

#endif
