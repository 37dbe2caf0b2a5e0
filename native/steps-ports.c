/*
 * Published ports: the host port a `-p` names is bound (and for TCP listened
 * on) here, in the executor, and kept open for the container's lifetime —
 * by the monitor for `run -d`, as podman's conmon does. Traffic to the port
 * never reaches this socket (the firewall's DNAT rule sends it to the
 * container first); holding it reserves the port: no other program can take
 * it while the container runs, and a port already in use is found before
 * anything else of the container is made.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "executor.h"

/* Keep `fd` open in the executor: it closes when the monitor exits (or execs its exit hook). */
static int keep_fd(struct executor *ex, int fd)
{
	int *more = realloc(ex->held_ports, (ex->n_held_ports + 1) * sizeof(*more));
	if (!more)
		return -1;
	more[ex->n_held_ports++] = fd;
	ex->held_ports = more;
	return 0;
}

/* "hold-port tcp|udp IP PORT" ([setup], before the clone). The cloned child
 * closes it first thing (close_held_ports); SOCK_CLOEXEC keeps it from the
 * exit hook the monitor execs. SO_REUSEADDR as Go's listeners
 * set it (Docker's proxy): TIME_WAIT leftovers do not block a restart, while a
 * second listener on the port is still refused with EADDRINUSE. */
int step_hold_port(struct executor *ex, const struct step *st)
{
	char where[80];
	bool udp = !strcmp(arg(st, 1), "udp");
	unsigned long port = num(arg(st, 3));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd, saved;
	snprintf(where, sizeof(where), "%s:%s", arg(st, 2), arg(st, 3));
	if ((!udp && strcmp(arg(st, 1), "tcp")) || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, arg(st, 2), &sa.sin_addr) != 1) {
		errno = EINVAL;
		return fail(ex, st, "parse", where);
	}
	fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(ex, st, "socket", where);
	if ((!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (!udp && listen(fd, 1) < 0) ||
	    keep_fd(ex, fd) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return fail(ex, st, "bind", where);
	}
	return 0;
}

/* In the cloned child: the held ports are the monitor's, never the container's.
 * Closed at once rather than left to CLOEXEC, so that no [child] step (nor
 * whatever runs before an execve) ever holds a host socket. */
void close_held_ports(struct executor *ex)
{
	for (size_t i = 0; i < ex->n_held_ports; i++)
		close(ex->held_ports[i]);
	ex->n_held_ports = 0;
}
