/*
 * --init: stay as PID 1, run the program as PID 2, forward signals to it,
 * reap every zombie (orphans are re-parented to us), and exit with its
 * status. The smallest useful init, like tini.
 *
 * Signals are read from a signalfd rather than caught by a handler, so no
 * global has to tell a handler who the child is. Blocked signals are also
 * the ones PID 1 receives at all: the kernel drops a signal sent from inside
 * the namespace to an init that leaves it at its default action, but queues
 * it when it is blocked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"

/* Reap what has exited; when it is the program, leave with its status. */
static void reap(pid_t program, int flags)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, flags)) != 0) {
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			_exit(0);
		if (pid == program)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

static _Noreturn void be_init(pid_t program)
{
	/* PID 1 needs none of our descriptors; holding the error pipe open
	 * would make the parent wait for us instead of for execve. */
	syscall(SYS_close_range, 3, ~0U, 0);
	sigset_t all;
	sigfillset(&all);
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	for (;;) {
		struct signalfd_siginfo si;
		if (sfd < 0) {
			reap(program, 0); /* no signalfd: reap, forward nothing */
			continue;
		}
		if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD)
			reap(program, WNOHANG);
		else
			kill(program, (int)si.ssi_signo);
	}
}

int step_init(struct executor *ex, const struct step *st)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	/* PID 1 stays this binary for the container's whole life: it is not
	 * dumpable, so its /proc/1/exe is out of the container's reach
	 * (stay_undumpable in steps-credentials.c). */
	pid_t program = fork();
	if (program < 0) {
		int rc = fail(ex, st, "fork", "init");
		sigprocmask(SIG_SETMASK, &old, NULL);
		return rc;
	}
	if (program == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 0; /* the program goes on to exec */
	}
	be_init(program);
}
