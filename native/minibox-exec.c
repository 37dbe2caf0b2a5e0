/*
 * minibox-exec: the small, single-threaded executor of a container plan.
 *
 * Why this exists: Node always runs several threads, and the kernel refuses
 * some of what a container needs to a multi-threaded process:
 * unshare(CLONE_NEWUSER) fails with EINVAL, and setns() into a mount
 * namespace would move only the calling thread. So TypeScript decides
 * everything and writes it down as a plan; this program only performs the
 * plan's steps, in order, and reports the first one that fails (its line,
 * the syscall, errno).
 *
 * File descriptors (set up by the TypeScript side):
 *   0,1,2  the container's stdio (inherited as they are, no copying)
 *   3      the plan (read to EOF)
 *   4      status: lines we write back ("pid N", "trace ...", "error ...",
 *          "started", "exit N" / "signal N")
 *   5      control: one byte "g" releases a `wait-go` step
 *
 * The plan (plan.c) has three sections:
 *   [setup]   run here, as real root, in a private mount namespace: layer
 *             idmapping, the overlay, /dev; ends with `clone FLAGS`
 *   [child]   run by the cloned child, inside its new namespaces, ending in
 *             `exec` (or `init` + `exec`)
 *   [parent]  run here after the clone: uid/gid maps, cgroup membership;
 *             then the child is released and waited for
 * Each step's op is looked up in the table in ops.c.
 *
 * Our own exit status mirrors the container's (its code, or 128+signal);
 * 125 when a step failed before the container's program started, 126 when
 * its program could not be executed, 127 when it was not found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"

static void init_executor(struct executor *ex, int argc, char **argv)
{
	memset(ex, 0, sizeof(*ex));
	clock_gettime(CLOCK_MONOTONIC, &ex->t0);
	ex->host_mntns = ex->idmap_userns = ex->tty_master = ex->exec_fifo = ex->errors_fd = -1;
	ex->console_socket[0] = ex->console_socket[1] = -1;
	for (int i = 1; i < argc; i++) {
		ex->tracing |= !strcmp(argv[i], "--trace");
		ex->detached |= !strcmp(argv[i], "--detach");
		ex->let_go |= !strcmp(argv[i], "--let-go");
	}
}

static int exit_code_for(const struct failure *f)
{
	if (f->call && !strcmp(f->call, "execve"))
		return f->err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
	return EXIT_SETUP_FAILED;
}

/* Dispositions set to "ignore" and blocked signals survive execve: give the
 * container default signal handling (the monitor ignores SIGPIPE, for one; a
 * container that inherited that would never see a broken pipe). */
static void default_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
}

/* The cloned child: wait to be released, run [child], end in execve.
 * release: parent -> child "go"; errors: child -> parent, closed by execve. */
static _Noreturn void run_child(struct executor *ex, int release[2], int errors[2])
{
	char c;
	close(release[1]);
	close(errors[0]);
	ex->errors_fd = errors[1];
	close_held_ports(ex);
	/* The init dies with its parent: minibox (foreground) or the monitor
	 * (-d). Not under --let-go: there we exit first, on purpose, and the
	 * caller's subreaper adopts it (until released it exits on the
	 * release pipe's EOF anyway). */
	if (!ex->let_go)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* A session of our own, without a controlling terminal, as runc does.
	 * stdio may be the caller's terminal (`exec`, `run -i` without -t), and
	 * in the caller's session the container could push input into it with
	 * TIOCSTI, which the caller's shell runs once minibox exits; outside it
	 * that takes CAP_SYS_ADMIN in the host's user namespace. Ctrl-C still
	 * reaches the container: the executor, in minibox's foreground process
	 * group, forwards it. -t's console step makes the pty our terminal. */
	if (setsid() < 0)
		_exit(EXIT_SETUP_FAILED);
	default_signals();
	if (monitor_logging(ex->monitor) && monitor_child_stdio(ex->monitor) < 0)
		_exit(EXIT_SETUP_FAILED);
	/* Wait until the parent has written our maps and cgroup. */
	if (read(release[0], &c, 1) != 1)
		_exit(EXIT_SETUP_FAILED);
	close(release[0]);
	if (run_steps(ex, &ex->plan.child) < 0) {
		report_failure(ex);
		/* Also tell the parent, so it reports even if the status pipe is gone. */
		if (write(errors[1], &ex->failed.err, sizeof(ex->failed.err)) < 0) {
			/* nothing more we can do */
		}
		_exit(exit_code_for(&ex->failed));
	}
	_exit(EXIT_SETUP_FAILED); /* a plan without exec */
}

enum child_news { CHILD_STARTED, CHILD_WAITING, CHILD_FAILED };

/* The errors pipe closes without data when execve succeeds; wait-start
 * writes START_WAITING on it (create); a failed step writes its errno. */
static enum child_news child_news(int errors)
{
	int child_errno = 0;
	ssize_t n;
	while ((n = read(errors, &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	close(errors);
	if (n == 0)
		return CHILD_STARTED;
	return n == sizeof(child_errno) && child_errno == START_WAITING ? CHILD_WAITING : CHILD_FAILED;
}

/* After the clone: run [parent], release the child, then wait as the run needs. */
static int run_parent(struct executor *ex, int release[2], int errors[2])
{
	close(release[0]);
	close(errors[1]);
	if (monitor_logging(ex->monitor))
		monitor_after_clone(ex->monitor);
	if (ex->console_socket[1] >= 0) {
		close(ex->console_socket[1]);
		ex->console_socket[1] = -1;
	}
	/* Out of the cgroup before the init joins it (cgroup-warm.c). */
	reap_cgroup_warmer(ex);
	if (run_steps(ex, &ex->plan.parent) < 0) {
		report_failure(ex);
		kill(ex->child, SIGKILL);
		waitpid(ex->child, NULL, 0);
		close(release[1]);
		close(errors[0]);
		return EXIT_SETUP_FAILED;
	}
	if (write(release[1], "g", 1) != 1) {
		status("error 0 release write %d", errno);
		close(release[1]);
		close(errors[0]);
		return EXIT_SETUP_FAILED;
	}
	close(release[1]);
	if (ex->console_socket[0] >= 0) {
		struct winsize ws;
		ex->tty_master = receive_console(ex);
		if (ex->tty_master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0)
			ioctl(ex->tty_master, TIOCSWINSZ, &ws);
	}
	enum child_news news = child_news(errors[0]);
	if (news == CHILD_WAITING && ex->let_go) {
		/* minibox-runc create: the child waits for `start`; we are done,
		 * and it is adopted by the caller's subreaper. */
		status("created");
		return 0;
	}
	if (news == CHILD_STARTED)
		status("started");
	if (news == CHILD_STARTED && ex->let_go)
		return 0; /* minibox-runc exec --detach: the same, once it runs */
	/* The child is past every step that needed our namespace: let it go
	 * now, its teardown overlapping the container's run (steps-mount.c). */
	leave_private_mntns(ex);
	if (ex->detached)
		return run_as_monitor(ex);
	if (monitor_logging(ex->monitor) && ex->tty_master < 0)
		return foreground_monitor(ex);
	return wait_for_child(ex);
}

static void close_pair(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

static int open_pipes(int release[2], int errors[2])
{
	if (pipe2(release, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(errors, O_CLOEXEC) == 0)
		return 0;
	int saved = errno;
	close_pair(release);
	errno = saved;
	return -1;
}

/* The clone that ends [setup]: its flags are the new namespaces. */
static int clone_and_run(struct executor *ex, const struct step *clone_step)
{
	int release[2], errors[2];
	if (open_pipes(release, errors) < 0) {
		status("error %d clone pipe %d", clone_step->line, errno);
		return EXIT_SETUP_FAILED;
	}
	double clone_start = elapsed_ms(ex);
	ex->child = (pid_t)syscall(SYS_clone, num(arg(clone_step, 1)) | SIGCHLD, 0, 0, 0, 0);
	if (ex->child < 0) {
		fail(ex, clone_step, "clone", arg(clone_step, 1));
		report_failure(ex);
		close_pair(release);
		close_pair(errors);
		return EXIT_SETUP_FAILED;
	}
	if (ex->child == 0)
		run_child(ex, release, errors);
	if (ex->tracing)
		status("trace %d %.3f %.3f pid=%d", clone_step->line, clone_start, elapsed_ms(ex) - clone_start,
		       (int)ex->child);
	return run_parent(ex, release, errors);
}

int main(int argc, char **argv)
{
	struct executor ex;
	/* First: every process of ours that enters a container is a fork of
	 * this one (CVE-2019-5736, see stay_undumpable). */
	stay_undumpable();
	init_executor(&ex, argc, argv);
	if (ex.detached) {
		/* Outlive minibox: a session of our own (no terminal signals), and
		 * no SIGPIPE when minibox stops reading our status lines. */
		setsid();
		signal(SIGPIPE, SIG_IGN);
	} else {
		/* Die with the minibox that started us (no orphaned containers). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			return EXIT_SETUP_FAILED;
	}
	/* Before the plan: minibox is still building it (cgroup-warm.c). */
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--warm-cgroup"))
			warm_cgroup(&ex, argv[i + 1]);
	if (load_plan(&ex, PLAN_FD) < 0) {
		reap_cgroup_warmer(&ex); /* out of the cgroup before minibox removes it */
		return EXIT_SETUP_FAILED;
	}
	/* load_plan has checked that the last setup step is `clone`. */
	struct section before_clone = { ex.plan.setup.steps, ex.plan.setup.n - 1 };
	if (run_steps(&ex, &before_clone) < 0) {
		report_failure(&ex);
		reap_cgroup_warmer(&ex);
		return EXIT_SETUP_FAILED;
	}
	int rc = clone_and_run(&ex, &ex.plan.setup.steps[ex.plan.setup.n - 1]);
	reap_cgroup_warmer(&ex); /* reaped already unless the clone failed */
	return rc;
}
