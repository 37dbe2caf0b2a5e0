/*
 * -t: the container's terminal. It is made inside the container (its own
 * devpts, so `tty` names a /dev/pts entry that exists there); the child
 * sends the master end back to the parent over a socket pair made before
 * the clone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "executor.h"

int step_pty(struct executor *ex, const struct step *st)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ex->console_socket) < 0)
		return fail(ex, st, "socketpair", NULL);
	return 0;
}

static int send_fd(int sock, int fd)
{
	char data = 'm';
	struct iovec iov = { &data, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) < 0 ? -1 : 0;
}

/* Make the slave our controlling terminal and stdio (run_child has made
 * us the leader of a session without one). */
static int take_terminal(struct executor *ex, const struct step *st, int slave, const char *name)
{
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return fail(ex, st, "ioctl(TIOCSCTTY)", name);
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		return fail(ex, st, "dup2", name);
	return 0;
}

/* In the child, after pivot_root: open a pty in the container's devpts and
 * pass the master to the parent. Whatever fails, master and slave are
 * closed (the slave stays only as stdio). */
int step_console(struct executor *ex, const struct step *st)
{
	char name[128];
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return fail(ex, st, "posix_openpt", "/dev/ptmx");
	if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0) {
		int rc = fail(ex, st, "unlockpt", "/dev/ptmx");
		close(master);
		return rc;
	}
	int slave = open(name, O_RDWR | O_NOCTTY);
	int rc = slave < 0 ? fail(ex, st, "open", name) : 0;
	if (rc == 0 && send_fd(ex->console_socket[1], master) < 0)
		rc = fail(ex, st, "sendmsg", "console socket");
	close(master);
	close(ex->console_socket[1]);
	ex->console_socket[1] = -1;
	if (rc == 0)
		rc = take_terminal(ex, st, slave, name);
	if (slave > 2)
		close(slave);
	return rc;
}

/* In the parent: the master end of the container's terminal, or -1 if the
 * child failed before sending it. */
int receive_console(struct executor *ex)
{
	char data;
	struct iovec iov = { &data, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	ssize_t n;
	while ((n = recvmsg(ex->console_socket[0], &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	struct cmsghdr *cmsg = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	int fd = -1;
	if (cmsg && cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	close(ex->console_socket[0]);
	ex->console_socket[0] = -1;
	return fd;
}
