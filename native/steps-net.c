/*
 * A container's network, over rtnetlink (netlink.c): the veth pair made from
 * the host side once the child exists, and inside the child's netns its
 * interface's MAC, address and state, and the default route.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include "executor.h"
#include "netlink.h"

/* A failed request: the call is "netlink", the detail names the request and the device. */
static int fail_netlink(struct executor *ex, const struct step *st, struct nl *nl)
{
	char detail[400];
	int saved = errno;
	if (nl->why[0])
		snprintf(detail, sizeof(detail), "%s (%s)", nl->what, nl->why);
	else
		snprintf(detail, sizeof(detail), "%s", nl->what);
	nl_close(nl);
	errno = saved;
	return fail(ex, st, "netlink", detail);
}

static int fail_parse(struct executor *ex, const struct step *st, const char *what, const char *text)
{
	char detail[300];
	snprintf(detail, sizeof(detail), "%s %s", what, text);
	errno = EINVAL;
	return fail(ex, st, "parse", detail);
}

/* "veth HOSTIF PEERIF PID BRIDGE MTU" ([parent]): the pair, its peer created
 * directly in the netns of PID ("{pid}": the child) under its final name, the
 * host end on BRIDGE ("-": none) in hairpin mode, and up. MTU 0: the kernel's default. */
int step_veth(struct executor *ex, const struct step *st)
{
	char *pid = expand_pid(arg(st, 3), ex->child);
	struct nl_veth v = { .host = arg(st, 1), .peer = arg(st, 2), .mtu = (unsigned)num(arg(st, 5)) };
	const char *bridge = opt(arg(st, 4));
	struct nl nl;
	if (!pid)
		return fail(ex, st, "malloc", arg(st, 3));
	v.pid = (pid_t)num(pid);
	free(pid);
	if (nl_check_name(v.host) < 0)
		return fail_parse(ex, st, "interface name", v.host);
	if (nl_check_name(v.peer) < 0)
		return fail_parse(ex, st, "interface name", v.peer);
	if (nl_open(&nl) < 0)
		return fail(ex, st, "socket", "AF_NETLINK");
	if (bridge && nl_link_get(&nl, bridge, &v.master, NULL, 0) < 0) {
		snprintf(nl.what, sizeof(nl.what), "RTM_GETLINK bridge %s (for veth %s)", bridge, v.host);
		return fail_netlink(ex, st, &nl);
	}
	if (nl_veth_add(&nl, &v) < 0)
		return fail_netlink(ex, st, &nl);
	/* On a bridge, the port in hairpin mode (as Docker sets it): see nl_brport_hairpin. */
	int index;
	if (bridge && (nl_link_get(&nl, v.host, &index, NULL, 0) < 0 || nl_brport_hairpin(&nl, index, v.host) < 0))
		return fail_netlink(ex, st, &nl);
	nl_close(&nl);
	return 0;
}

/* "netif IFNAME MAC ADDR/PREFIX" ([child]): MAC ("-": keep the kernel's), up, the IPv4 address. */
int step_netif(struct executor *ex, const struct step *st)
{
	const char *name = arg(st, 1), *mac_text = opt(arg(st, 2));
	unsigned char mac[6];
	struct in_addr addr;
	unsigned prefix;
	int index;
	struct nl nl;
	if (mac_text && nl_parse_mac(mac_text, mac) < 0)
		return fail_parse(ex, st, "MAC address", mac_text);
	if (nl_parse_cidr(arg(st, 3), &addr, &prefix) < 0)
		return fail_parse(ex, st, "address (want A.B.C.D/PREFIX)", arg(st, 3));
	if (nl_open(&nl) < 0)
		return fail(ex, st, "socket", "AF_NETLINK");
	if (nl_link_up(&nl, name, mac_text ? mac : NULL, 0) < 0 || nl_link_get(&nl, name, &index, NULL, 0) < 0 ||
	    nl_addr_add(&nl, index, name, addr, prefix) < 0)
		return fail_netlink(ex, st, &nl);
	nl_close(&nl);
	return 0;
}

/* "route-default GATEWAY [IFNAME]" ([child]): the default route via GATEWAY (out of IFNAME). */
int step_route_default(struct executor *ex, const struct step *st)
{
	struct in_addr gw;
	int oif = 0;
	struct nl nl;
	if (inet_pton(AF_INET, arg(st, 1), &gw) != 1)
		return fail_parse(ex, st, "gateway", arg(st, 1));
	if (nl_open(&nl) < 0)
		return fail(ex, st, "socket", "AF_NETLINK");
	if (st->nfields > 2 && nl_link_get(&nl, arg(st, 2), &oif, NULL, 0) < 0)
		return fail_netlink(ex, st, &nl);
	if (nl_route_default(&nl, gw, oif) < 0)
		return fail_netlink(ex, st, &nl);
	nl_close(&nl);
	return 0;
}
