/*
 * What minibox-runc's `create` needs of the executor, beyond a run's plan:
 * the container waits before its program until `start` (runc's exec.fifo),
 * the caller's console socket receives the terminal, and namespaces given
 * by path in config.json are joined instead of created.
 *
 * The wait: `exec-fifo PATH` (setup) makes a FIFO in the container's state
 * directory and opens it read-write, which never blocks; the child inherits
 * that descriptor. `wait-start` (child, last before exec) tells the executor
 * "created" over the errors pipe, closes everything that ties it to minibox,
 * and reads one byte from the FIFO: `start` opens the FIFO for writing and
 * writes it. No path is needed after pivot_root (the descriptor is enough),
 * and a `start` that finds no reader (ENXIO) knows the container is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "executor.h"

int step_exec_fifo(struct executor *ex, const struct step *st)
{
	if (mkfifo(arg(st, 1), 0600) < 0)
		return fail(ex, st, "mkfifo", arg(st, 1));
	ex->exec_fifo = open(arg(st, 1), O_RDWR | O_CLOEXEC);
	if (ex->exec_fifo < 0)
		return fail(ex, st, "open", arg(st, 1));
	return 0;
}

int step_wait_start(struct executor *ex, const struct step *st)
{
	int created = START_WAITING;
	char go;
	ssize_t n;
	if (write(ex->errors_fd, &created, sizeof(created)) != sizeof(created))
		return fail(ex, st, "write", "errors pipe");
	/* minibox waits for the executor's status pipe to close: let go of it
	 * (and of the plan and control pipes) while we wait. */
	close(ex->errors_fd);
	close(PLAN_FD);
	close(STATUS_FD);
	close(CONTROL_FD);
	while ((n = read(ex->exec_fifo, &go, 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		return fail(ex, st, "read", "exec fifo");
	close(ex->exec_fifo);
	return 0;
}

/* "console-socket PATH": the caller's unix socket; the console step sends
 * the terminal's master end there (SCM_RIGHTS) instead of to us. */
int step_console_socket(struct executor *ex, const struct step *st)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(arg(st, 1)) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return fail(ex, st, "connect", arg(st, 1));
	}
	strcpy(addr.sun_path, arg(st, 1));
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return fail(ex, st, "socket", arg(st, 1));
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int rc = fail(ex, st, "connect", arg(st, 1));
		close(sock);
		return rc;
	}
	ex->console_socket[1] = sock;
	return 0;
}

/* The CLONE_ flag of each /proc/PID/ns name: setns checks the file is one. */
static int ns_flag(const char *type)
{
	static const struct {
		const char *name;
		int flag;
	} TYPES[] = { { "net", CLONE_NEWNET }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
		      { "pid", CLONE_NEWPID }, { "cgroup", CLONE_NEWCGROUP }, { "mnt", CLONE_NEWNS } };
	for (size_t i = 0; i < sizeof(TYPES) / sizeof(*TYPES); i++)
		if (!strcmp(type, TYPES[i].name))
			return TYPES[i].flag;
	return -1;
}

/* "join-ns PATH TYPE": setns into an existing namespace, so the child starts
 * in it (TYPE: net, ipc, uts, pid, cgroup before the clone; mnt first of
 * all, in place of `mountns`: the rootfs is then assembled in that
 * namespace, as runc does). setns is given TYPE's flag, so a file of
 * another type is refused (EINVAL) rather than joined. */
int step_join_ns(struct executor *ex, const struct step *st)
{
	int flag = ns_flag(arg(st, 2));
	if (flag < 0) {
		errno = EINVAL;
		return fail(ex, st, "parse", "namespace type");
	}
	if (flag == CLONE_NEWNS && ex->host_mntns < 0)
		ex->host_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC); /* the exit hook's way back */
	int fd = open(arg(st, 1), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(ex, st, "open", arg(st, 1));
	int rc = setns(fd, flag) < 0 ? fail(ex, st, "setns", arg(st, 1)) : 0;
	close(fd);
	return rc;
}

/* "pass-fds N" (LISTEN_FDS, --preserve-fds): the caller's descriptors
 * 3..3+N-1, which minibox handed us at PASSED_FDS_BASE.. (3-5 are our plan,
 * status and control pipes), put back at 3..3+N-1 for the program, without
 * close-on-exec. Ascending order is safe: each source is above its target
 * and is copied before a later step can overwrite it. Last before exec.
 * The status pipe goes first above all of them (still close-on-exec): a
 * failed execve reports on it, which must not write into a passed file. */
int step_pass_fds(struct executor *ex, const struct step *st)
{
	int n = (int)num(arg(st, 1));
	if (move_status_fd(PASSED_FDS_BASE + n) < 0)
		return fail(ex, st, "fcntl", "status pipe");
	for (int i = 0; i < n; i++)
		if (dup2(PASSED_FDS_BASE + i, 3 + i) < 0)
			return fail(ex, st, "dup2", "passed descriptor");
	return 0;
}
