/*
 * minibox-net: what a bridge network needs on the host outside any one
 * container's plan, over the same rtnetlink code as the executor.
 *
 *   minibox-net bridge NAME ADDR/PREFIX MTU   the bridge, created if missing,
 *                                             given ADDR if it lacks it, up
 *   minibox-net del LINK                      delete LINK (missing: done)
 *   minibox-net link-exists NAME              exit 0 if it exists, 2 if not
 *   minibox-net attach HOSTIF PEERIF PID BRIDGE MAC ADDR/PREFIX GATEWAY
 *                                             `network connect` on a running
 *                                             container: see cmd_attach
 *
 * bridge, del and link-exists are idempotent, so minibox can run them on
 * every start without asking first. Nothing is printed on success; a
 * failure is one line on stderr, exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "netlink.h"

#define EXIT_NO_SUCH_LINK 2

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* "netlink RTM_NEWLINK bridge mbr0: File exists (the kernel's extended-ACK words)" */
static int say_netlink(const struct nl *nl)
{
	const char *text = strerror(errno);
	return nl->why[0] ? die("netlink %s: %s (%s)", nl->what, text, nl->why) : die("netlink %s: %s", nl->what, text);
}

static int die_netlink(struct nl *nl)
{
	int rc = say_netlink(nl);
	nl_close(nl);
	return rc;
}

static int check_name(const char *name)
{
	if (nl_check_name(name) == 0)
		return 0;
	return die("invalid interface name \"%s\": 1 to 15 characters, no '/', ':' or whitespace", name);
}

static int open_netlink(struct nl *nl)
{
	if (nl_open(nl) == 0)
		return 0;
	return die("netlink socket: %s", strerror(errno));
}

/* The bridge's ifindex, creating it if missing; a non-bridge of that name is an error. */
static int ensure_bridge(struct nl *nl, const char *name, unsigned mtu, int *index)
{
	char kind[32];
	if (nl_link_get(nl, name, index, kind, sizeof(kind)) == 0) {
		if (strcmp(kind, "bridge"))
			return die("%s exists and is not a bridge (its kind: %s)", name, kind[0] ? kind : "none");
		return 0;
	}
	/* EEXIST: another minibox created it between our two requests. */
	if (errno != ENODEV || (nl_bridge_add(nl, name, mtu) < 0 && errno != EEXIST))
		return die_netlink(nl);
	return nl_link_get(nl, name, index, NULL, 0) < 0 ? die_netlink(nl) : 0;
}

static int cmd_bridge(const char *name, const char *cidr, const char *mtu_text)
{
	struct in_addr addr;
	unsigned prefix;
	char *end;
	unsigned long mtu = strtoul(mtu_text, &end, 10);
	int index;
	struct nl nl;
	if (check_name(name))
		return 1;
	if (nl_parse_cidr(cidr, &addr, &prefix) < 0)
		return die("invalid address \"%s\": want A.B.C.D/PREFIX", cidr);
	if (*end || !*mtu_text || (mtu && (mtu < 68 || mtu > 65535)))
		return die("invalid MTU \"%s\": want 68 to 65535 (0: the kernel's default)", mtu_text);
	if (open_netlink(&nl) || ensure_bridge(&nl, name, (unsigned)mtu, &index))
		return 1;
	if (nl_addr_add(&nl, index, name, addr, prefix) < 0 && errno != EEXIST)
		return die_netlink(&nl);
	if (nl_link_up(&nl, name, NULL, 0) < 0)
		return die_netlink(&nl);
	nl_close(&nl);
	return 0;
}

static int cmd_del(const char *name)
{
	struct nl nl;
	if (check_name(name) || open_netlink(&nl))
		return 1;
	if (nl_link_del(&nl, name) < 0 && errno != ENODEV)
		return die_netlink(&nl);
	nl_close(&nl);
	return 0;
}

static int cmd_link_exists(const char *name)
{
	struct nl nl;
	int index;
	if (check_name(name) || open_netlink(&nl))
		return 1;
	if (nl_link_get(&nl, name, &index, NULL, 0) < 0) {
		if (errno != ENODEV)
			return die_netlink(&nl);
		nl_close(&nl);
		return EXIT_NO_SUCH_LINK;
	}
	nl_close(&nl);
	return 0;
}

/* What `attach` is asked to make, its arguments parsed. */
struct attach {
	struct nl_veth veth;   /* host end, peer name, PID whose netns gets the peer */
	const char *bridge;
	unsigned char mac[6];
	struct in_addr addr;
	unsigned prefix;
	struct in_addr gw;
	int route;             /* add the default route via gw (GATEWAY was not "-") */
};

static int parse_attach(char **argv, struct attach *a)
{
	char *end;
	long pid = strtol(argv[3], &end, 10);
	a->veth = (struct nl_veth){ .host = argv[1], .peer = argv[2], .pid = (pid_t)pid };
	a->bridge = argv[4];
	if (check_name(argv[1]) || check_name(argv[2]) || check_name(argv[4]))
		return 1;
	if (*end || pid <= 0)
		return die("invalid PID \"%s\"", argv[3]);
	if (nl_parse_mac(argv[5], a->mac) < 0)
		return die("invalid MAC address \"%s\"", argv[5]);
	if (nl_parse_cidr(argv[6], &a->addr, &a->prefix) < 0)
		return die("invalid address \"%s\": want A.B.C.D/PREFIX", argv[6]);
	a->route = strcmp(argv[7], "-") != 0;
	if (a->route && inet_pton(AF_INET, argv[7], &a->gw) != 1)
		return die("invalid gateway \"%s\"", argv[7]);
	return 0;
}

/* The pair, its peer made directly in the netns of the PID, the host end on the bridge (hairpin), up. */
static int make_veth(struct nl *host, struct attach *a)
{
	int index;
	if (nl_link_get(host, a->bridge, &a->veth.master, NULL, 0) < 0 || nl_veth_add(host, &a->veth) < 0)
		return -1;
	if (nl_link_get(host, a->veth.host, &index, NULL, 0) < 0 || nl_brport_hairpin(host, index, a->veth.host) < 0)
		return -1;
	return 0;
}

/* This process into the network namespace of PID (it is single-threaded: setns moves all of it). */
static int enter_netns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("open %s: %s", path, strerror(errno));
	if (setns(fd, CLONE_NEWNET) < 0) {
		int saved = errno;
		close(fd);
		return die("setns %s: %s", path, strerror(saved));
	}
	close(fd);
	return 0;
}

/* Inside the container's netns: the peer's MAC, up, its address; the default route unless it has one. */
static int configure_peer(struct nl *nl, const struct attach *a)
{
	int index;
	if (nl_link_up(nl, a->veth.peer, a->mac, 0) < 0 || nl_link_get(nl, a->veth.peer, &index, NULL, 0) < 0 ||
	    nl_addr_add(nl, index, a->veth.peer, a->addr, a->prefix) < 0)
		return -1;
	/* EEXIST: the container has a default route already (through its first network); keep it. */
	if (a->route && nl_route_default(nl, a->gw, index) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * `network connect` on a running container: what the executor's veth,
 * netif and route-default steps do at start, done from outside. The host
 * socket stays in the host's netns after setns (a socket keeps the netns
 * it was made in), so a failure inside can still delete the host end, and
 * the pair with it: nothing is left half made.
 */
static int cmd_attach(char **argv)
{
	struct attach a;
	struct nl host, inside;
	if (parse_attach(argv, &a) || open_netlink(&host))
		return 1;
	if (make_veth(&host, &a) < 0) {
		say_netlink(&host);
	} else if (enter_netns(a.veth.pid) == 0 && open_netlink(&inside) == 0) {
		if (configure_peer(&inside, &a) == 0) {
			nl_close(&inside);
			nl_close(&host);
			return 0;
		}
		die_netlink(&inside);
	}
	/* Whatever was made goes (ENODEV when the veth never was). */
	nl_link_del(&host, a.veth.host);
	nl_close(&host);
	return 1;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "bridge") && argc == 5)
		return cmd_bridge(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "del") && argc == 3)
		return cmd_del(argv[2]);
	if (!strcmp(cmd, "link-exists") && argc == 3)
		return cmd_link_exists(argv[2]);
	if (!strcmp(cmd, "attach") && argc == 9)
		return cmd_attach(argv + 1);
	return die("usage: minibox-net bridge NAME ADDR/PREFIX MTU | del LINK | link-exists NAME |"
		   " attach HOSTIF PEERIF PID BRIDGE MAC ADDR/PREFIX GATEWAY|-");
}
