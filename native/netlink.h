/*
 * A minimal rtnetlink client: the few requests a container network needs
 * (links, veth pairs, bridges, IPv4 addresses, the default route), built by
 * hand over an AF_NETLINK/NETLINK_ROUTE socket. Every request asks for an
 * ACK and reads it, so a failure is known at the request that caused it.
 *
 * Every function returns 0, or -1 with errno set and `nl->what` naming the
 * request and the device ("RTM_NEWLINK veth mbx1234 (peer eth0)"); when the
 * kernel explained itself (extended ACK), `nl->why` holds its words.
 */
#ifndef MINIBOX_NETLINK_H
#define MINIBOX_NETLINK_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

struct nl {
	int fd;
	uint32_t seq;
	char what[160]; /* the request in flight, for the error line */
	char why[160];  /* the kernel's extended-ACK message, or "" */
};

struct nl_veth {
	const char *host;   /* the end that stays here */
	const char *peer;   /* the end created in the netns of `pid`, with this name */
	pid_t pid;
	int master;         /* ifindex of the bridge the host end joins; 0: none */
	unsigned mtu;       /* 0: the kernel's default */
};

int nl_open(struct nl *nl);
void nl_close(struct nl *nl);

/* Names the kernel would refuse (empty, ≥ IFNAMSIZ, '/', whitespace): EINVAL before any request. */
int nl_check_name(const char *name);
/* "10.1.2.3/24" → address and prefix; EINVAL if malformed. */
int nl_parse_cidr(const char *text, struct in_addr *addr, unsigned *prefix);

/* ifindex of `name` (RTM_GETLINK); `kind` (may be NULL) gets IFLA_INFO_KIND, "" if none. */
int nl_link_get(struct nl *nl, const char *name, int *index, char *kind, size_t kind_size);
int nl_link_del(struct nl *nl, const char *name);
/* Set a link's MAC (mac may be NULL), MTU (0: keep) and bring it up. */
int nl_link_up(struct nl *nl, const char *name, const unsigned char *mac, unsigned mtu);
int nl_bridge_add(struct nl *nl, const char *name, unsigned mtu);
int nl_veth_add(struct nl *nl, const struct nl_veth *v);
/* Hairpin mode on the bridge port with this ifindex (`name` for the error line). */
int nl_brport_hairpin(struct nl *nl, int index, const char *name);
/* Add an IPv4 address; EEXIST if the link has it already. */
int nl_addr_add(struct nl *nl, int index, const char *name, struct in_addr addr, unsigned prefix);
/* The default IPv4 route via `gw`, out of link `oif` (0: the kernel picks it). */
int nl_route_default(struct nl *nl, struct in_addr gw, int oif);

/* "02:42:0a:00:00:02" → 6 bytes; EINVAL if malformed. */
int nl_parse_mac(const char *text, unsigned char mac[6]);

#endif
