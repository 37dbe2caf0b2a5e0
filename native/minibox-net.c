/*
 * minibox-net: what a bridge network needs on the host outside any one
 * container's plan, over the same rtnetlink code as the executor.
 *
 *   minibox-net bridge NAME ADDR/PREFIX MTU   the bridge, created if missing,
 *                                             given ADDR if it lacks it, up
 *   minibox-net del LINK                      delete LINK (missing: done)
 *   minibox-net link-exists NAME              exit 0 if it exists, 2 if not
 *
 * Idempotent, so minibox can run it on every start without asking first.
 * Nothing is printed on success; a failure is one line on stderr, exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static int die_netlink(struct nl *nl)
{
	const char *text = strerror(errno);
	int rc = nl->why[0] ? die("netlink %s: %s (%s)", nl->what, text, nl->why) : die("netlink %s: %s", nl->what, text);
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

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "bridge") && argc == 5)
		return cmd_bridge(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "del") && argc == 3)
		return cmd_del(argv[2]);
	if (!strcmp(cmd, "link-exists") && argc == 3)
		return cmd_link_exists(argv[2]);
	return die("usage: minibox-net bridge NAME ADDR/PREFIX MTU | del LINK | link-exists NAME");
}
