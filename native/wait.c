/*
 * The parent's wait, once the container's program runs: forward signals to
 * it, relay its terminal (-t), log its output, and report how it ended.
 *
 * Signals are blocked and read from a signalfd inside the poll loop, rather
 * than caught by a handler that would need a global to write to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "executor.h"
#include "health.h"

/* Block `sigs` and return a signalfd that reads them (-1 on failure). */
static int signal_fd_for(const int *sigs, size_t n, sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < n; i++)
		sigaddset(set, sigs[i]);
	if (sigprocmask(SIG_BLOCK, set, NULL) < 0)
		return -1;
	return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* Our own exit status mirrors the container's: its code, or 128+signal. */
static int report_exit(int wait_status)
{
	if (WIFEXITED(wait_status)) {
		status("exit %d", WEXITSTATUS(wait_status));
		return WEXITSTATUS(wait_status);
	}
	status("signal %d", WTERMSIG(wait_status));
	return 128 + WTERMSIG(wait_status);
}

/* Copy what is readable from one fd to another; 0 at EOF or error. What the
 * container's terminal shows is logged too. */
static int relay(struct executor *ex, int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return 0;
	if (from == ex->tty_master)
		monitor_record_tty(ex->monitor, buf, (size_t)n);
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		off += w;
	}
	return 1;
}

static void copy_window_size(int tty_master)
{
	struct winsize ws;
	if (tty_master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(tty_master, TIOCSWINSZ, &ws);
}

static void forward_signals(struct executor *ex, int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue; /* only wakes us up to reap */
		if (si.ssi_signo == SIGWINCH)
			copy_window_size(ex->tty_master);
		else
			kill(ex->child, (int)si.ssi_signo);
	}
}

/* Relay until the child exits; 0 with its wait status, -1 if poll fails. */
static int relay_until_exit(struct executor *ex, int sfd, int *wait_status)
{
	int stdin_open = ex->tty_master >= 0, master_open = ex->tty_master >= 0;
	for (;;) {
		if (waitpid(ex->child, wait_status, WNOHANG) == ex->child) {
			health_stop(ex->health);
			/* Drain what the container wrote last before reporting. */
			if (master_open)
				fcntl(ex->tty_master, F_SETFL, O_NONBLOCK);
			while (master_open && relay(ex, ex->tty_master, 1))
				;
			monitor_record_tty_end(ex->monitor);
			return 0;
		}
		struct pollfd fds[4] = {
			{ sfd, POLLIN, 0 },
			{ stdin_open ? 0 : -1, POLLIN, 0 },
			{ master_open ? ex->tty_master : -1, POLLIN, 0 },
			{ health_fd(ex->health), POLLIN, 0 },
		};
		/* -t in the foreground: the health check runs from this loop. */
		if (poll(fds, 4, health_poll_timeout(ex->health)) < 0 && errno != EINTR)
			return -1;
		health_tick(ex->health);
		if (fds[0].revents & POLLIN)
			forward_signals(ex, sfd);
		if (fds[1].revents & (POLLIN | POLLHUP) && !relay(ex, 0, ex->tty_master))
			stdin_open = 0;
		if (fds[2].revents & (POLLIN | POLLHUP) && !relay(ex, ex->tty_master, 1))
			master_open = 0;
	}
}

/* A foreground run without a log pipe (exec, or -t): signals forwarded, the
 * terminal relayed in raw mode and restored before we report. */
int wait_for_child(struct executor *ex)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD };
	sigset_t set;
	int sfd = signal_fd_for(forwarded, sizeof(forwarded) / sizeof(*forwarded), &set);
	if (sfd < 0)
		return EXIT_SETUP_FAILED;
	struct termios saved;
	bool raw = false;
	if (ex->tty_master >= 0 && isatty(0) && tcgetattr(0, &saved) == 0) {
		struct termios r = saved;
		cfmakeraw(&r);
		raw = tcsetattr(0, TCSANOW, &r) == 0;
	}
	int wait_status = 0;
	int rc = relay_until_exit(ex, sfd, &wait_status);
	if (raw)
		tcsetattr(0, TCSAFLUSH, &saved);
	close(sfd);
	return rc < 0 ? EXIT_SETUP_FAILED : report_exit(wait_status);
}

/* A foreground run that is logged: the monitor's loop, echoing the output to
 * minibox's own stdout/stderr and forwarding its signals. */
int foreground_monitor(struct executor *ex)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD };
	sigset_t set;
	int sfd = signal_fd_for(forwarded, sizeof(forwarded) / sizeof(*forwarded), &set);
	if (sfd < 0)
		return EXIT_SETUP_FAILED;
	int wait_status = monitor_wait(ex->monitor, ex->child, sfd, 1, ex->health);
	close(sfd);
	return report_exit(wait_status);
}

static void stdio_to_null(void)
{
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		return;
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	if (null > 2)
		close(null);
}

/* -d: minibox has what it needs ("started"); from here on nobody reads our
 * status lines. Become the container's monitor until it exits. */
int run_as_monitor(struct executor *ex)
{
	static const int woken_by[] = { SIGCHLD };
	sigset_t set;
	release_plan(ex);
	int sfd = signal_fd_for(woken_by, 1, &set);
	if (sfd < 0)
		return EXIT_SETUP_FAILED;
	close(STATUS_FD);
	close(CONTROL_FD);
	stdio_to_null();
	int wait_status = monitor_wait(ex->monitor, ex->child, sfd, 0, ex->health);
	close(sfd);
	/* Out of the private mount namespace (run_parent left it already; a
	 * no-op then): the hook must not see the overlay and idmapped layers. */
	leave_private_mntns(ex);
	/* The hook is exec'd and a blocked mask survives execve. */
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	monitor_finish(ex->exit_file, wait_status, ex->exit_hook);
	return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}
