/*
 * rtnetlink by hand: every message minibox sends to the kernel's routing
 * netlink, laid out here and only here (no libmnl/libnl, no `ip`).
 *
 * A message is one nlmsghdr, the request's fixed header (ifinfomsg,
 * ifaddrmsg or rtmsg), then attributes: rtattr {len, type} + payload, each
 * padded to 4 bytes; a nested attribute is an rtattr whose payload is more
 * attributes. Every request carries NLM_F_ACK, and we read until the
 * kernel's NLMSG_ERROR for our sequence number: error 0 is the ACK.
 */
#define _GNU_SOURCE
#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Our requests are a few hundred bytes at most (names ≤ 15 characters). */
struct req {
	union {
		struct nlmsghdr h;
		char buf[1024];
	};
	bool overflow;
};

/* A fresh request of `type` whose fixed header (hdr_len bytes, zeroed) is returned. */
static void *req_init(struct req *r, uint16_t type, uint16_t flags, size_t hdr_len)
{
	memset(r, 0, sizeof(*r));
	r->h.nlmsg_type = type;
	r->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	r->h.nlmsg_len = NLMSG_LENGTH(hdr_len);
	return NLMSG_DATA(&r->h);
}

/* `len` more bytes at the (aligned) end of the message, or NULL when it would not fit. */
static char *reserve(struct req *r, size_t len)
{
	size_t at = NLMSG_ALIGN(r->h.nlmsg_len);
	if (at + NLMSG_ALIGN(len) > sizeof(r->buf)) {
		r->overflow = true;
		return NULL;
	}
	r->h.nlmsg_len = (uint32_t)(at + NLMSG_ALIGN(len));
	return r->buf + at;
}

static struct rtattr *attr_put(struct req *r, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)reserve(r, RTA_SPACE(len));
	if (!a)
		return NULL;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	return a;
}

static void attr_str(struct req *r, uint16_t type, const char *s)
{
	attr_put(r, type, s, strlen(s) + 1);
}

static void attr_u32(struct req *r, uint16_t type, uint32_t v)
{
	attr_put(r, type, &v, sizeof(v));
}

static void attr_u8(struct req *r, uint16_t type, uint8_t v)
{
	attr_put(r, type, &v, sizeof(v));
}

/* A nested attribute: opened empty, closed once its content is appended. */
static struct rtattr *nest_begin(struct req *r, uint16_t type)
{
	return attr_put(r, type, NULL, 0);
}

static void nest_end(struct req *r, struct rtattr *nest)
{
	if (nest)
		nest->rta_len = (unsigned short)((char *)&r->h + r->h.nlmsg_len - (char *)nest);
}

int nl_open(struct nl *nl)
{
	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl->fd < 0)
		return -1;
	/* Ask the kernel to explain a refusal (extended ACK), without echoing our request back. */
	int one = 1;
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	if (bind(nl->fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		int saved = errno;
		close(nl->fd);
		errno = saved;
		return -1;
	}
	return 0;
}

void nl_close(struct nl *nl)
{
	if (nl->fd >= 0)
		close(nl->fd);
	nl->fd = -1;
}

/* NLMSGERR_ATTR_MSG from an extended ACK, after the (capped or full) echo of our request. */
static void ext_ack_message(struct nl *nl, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	size_t off = NLMSG_ALIGN(sizeof(*e));
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
	const char *end = (const char *)h + h->nlmsg_len;
	for (const char *p = (const char *)e + off; p + sizeof(struct nlattr) <= end;) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < sizeof(*a) || p + a->nla_len > end)
			return;
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
			snprintf(nl->why, sizeof(nl->why), "%.*s", (int)(a->nla_len - sizeof(*a)),
				 p + NLA_HDRLEN);
		p += NLA_ALIGN(a->nla_len);
	}
}

typedef void on_reply_fn(const struct nlmsghdr *h, void *ctx);

/* One NLMSG_ERROR for our sequence: 0 (the ACK) or -1 with errno. */
static int handle_error(struct nl *nl, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	if (e->error == 0)
		return 0;
	ext_ack_message(nl, h);
	errno = -e->error;
	return -1;
}

/* Process one datagram: 1 when our ACK or error was in it, 0 to read on, -1 failed. */
static int handle_datagram(struct nl *nl, char *buf, int n, on_reply_fn *on_reply, void *ctx)
{
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_seq != nl->seq)
			continue; /* not ours (a late reply to an earlier request) */
		if (h->nlmsg_type == NLMSG_ERROR)
			return handle_error(nl, h) < 0 ? -1 : 1;
		if (on_reply)
			on_reply(h, ctx);
	}
	return 0;
}

/* Send the request, read until its ACK; replies before the ACK go to on_reply. */
static int talk(struct nl *nl, struct req *r, on_reply_fn *on_reply, void *ctx)
{
	nl->why[0] = 0;
	if (r->overflow) {
		errno = EMSGSIZE;
		return -1;
	}
	r->h.nlmsg_seq = ++nl->seq;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(nl->fd, r->buf, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -1;
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		ssize_t n = recv(nl->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		int done = handle_datagram(nl, buf, (int)n, on_reply, ctx);
		if (done)
			return done < 0 ? -1 : 0;
	}
}

int nl_check_name(const char *name)
{
	size_t len = strlen(name);
	bool bad = len == 0 || len >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, "..");
	for (const char *p = name; *p && !bad; p++)
		bad = *p == '/' || *p == ':' || *p <= ' ';
	if (bad)
		errno = EINVAL;
	return bad ? -1 : 0;
}

int nl_parse_cidr(const char *text, struct in_addr *addr, unsigned *prefix)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	char *end;
	errno = EINVAL;
	if (!slash || slash == text || (size_t)(slash - text) >= sizeof(ip) || !slash[1])
		return -1;
	snprintf(ip, sizeof(ip), "%.*s", (int)(slash - text), text);
	unsigned long p = strtoul(slash + 1, &end, 10);
	if (*end || p > 32 || inet_pton(AF_INET, ip, addr) != 1)
		return -1;
	*prefix = (unsigned)p;
	return 0;
}

int nl_parse_mac(const char *text, unsigned char mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6 ||
	    strlen(text) != 17) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)b[i];
	return 0;
}

struct link_reply {
	int index;
	char *kind;
	size_t kind_size;
};

/* IFLA_INFO_KIND inside IFLA_LINKINFO: "bridge", "veth"…; absent for a plain device. */
static void read_kind(const struct rtattr *linkinfo, struct link_reply *out)
{
	int len = (int)RTA_PAYLOAD(linkinfo);
	for (const struct rtattr *a = RTA_DATA(linkinfo); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_INFO_KIND)
			snprintf(out->kind, out->kind_size, "%.*s", (int)RTA_PAYLOAD(a), (const char *)RTA_DATA(a));
}

static void on_link(const struct nlmsghdr *h, void *ctx)
{
	struct link_reply *out = ctx;
	if (h->nlmsg_type != RTM_NEWLINK)
		return;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	out->index = ifi->ifi_index;
	int len = (int)IFLA_PAYLOAD(h);
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_LINKINFO && out->kind)
			read_kind(a, out);
}

int nl_link_get(struct nl *nl, const char *name, int *index, char *kind, size_t kind_size)
{
	struct req r;
	struct link_reply out = { 0, kind, kind_size };
	snprintf(nl->what, sizeof(nl->what), "RTM_GETLINK %s", name);
	if (kind && kind_size)
		kind[0] = 0;
	req_init(&r, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
	attr_str(&r, IFLA_IFNAME, name);                          /* the link, by name */
	attr_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);    /* a short reply: no counters */
	if (talk(nl, &r, on_link, &out) < 0)
		return -1;
	*index = out.index;
	return 0;
}

int nl_link_del(struct nl *nl, const char *name)
{
	struct req r;
	snprintf(nl->what, sizeof(nl->what), "RTM_DELLINK %s", name);
	req_init(&r, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
	attr_str(&r, IFLA_IFNAME, name); /* the link, by name (a veth takes its peer with it) */
	return talk(nl, &r, NULL, NULL);
}

int nl_link_up(struct nl *nl, const char *name, const unsigned char *mac, unsigned mtu)
{
	struct req r;
	snprintf(nl->what, sizeof(nl->what), "RTM_NEWLINK up %s", name);
	struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, 0, sizeof(*ifi));
	ifi->ifi_flags = IFF_UP; /* ifi_change says which flags ifi_flags sets */
	ifi->ifi_change = IFF_UP;
	attr_str(&r, IFLA_IFNAME, name); /* no NLM_F_CREATE: an existing link, by name */
	if (mac)
		attr_put(&r, IFLA_ADDRESS, mac, 6); /* the link-layer (MAC) address */
	if (mtu)
		attr_u32(&r, IFLA_MTU, mtu);
	return talk(nl, &r, NULL, NULL);
}

int nl_bridge_add(struct nl *nl, const char *name, unsigned mtu)
{
	struct req r;
	snprintf(nl->what, sizeof(nl->what), "RTM_NEWLINK bridge %s", name);
	struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi));
	ifi->ifi_flags = ifi->ifi_change = IFF_UP; /* created up */
	attr_str(&r, IFLA_IFNAME, name);
	if (mtu)
		attr_u32(&r, IFLA_MTU, mtu);
	struct rtattr *info = nest_begin(&r, IFLA_LINKINFO); /* what kind of link to create */
	attr_str(&r, IFLA_INFO_KIND, "bridge");
	nest_end(&r, info);
	return talk(nl, &r, NULL, NULL);
}

/* VETH_INFO_PEER: the peer's own ifinfomsg and attributes, nested in IFLA_INFO_DATA. */
static void put_veth_peer(struct req *r, const struct nl_veth *v)
{
	struct rtattr *data = nest_begin(r, IFLA_INFO_DATA); /* the kind's own attributes */
	struct rtattr *peer = nest_begin(r, VETH_INFO_PEER);
	/* The peer's payload starts with its own (blank) ifinfomsg, not with an attribute. */
	reserve(r, sizeof(struct ifinfomsg));
	attr_str(r, IFLA_IFNAME, v->peer);        /* the peer's final name (eth0) */
	attr_u32(r, IFLA_NET_NS_PID, (uint32_t)v->pid); /* created in this process's netns (IFLA_NET_NS_FD: by fd) */
	if (v->mtu)
		attr_u32(r, IFLA_MTU, v->mtu);
	nest_end(r, peer);
	nest_end(r, data);
}

int nl_veth_add(struct nl *nl, const struct nl_veth *v)
{
	struct req r;
	snprintf(nl->what, sizeof(nl->what), "RTM_NEWLINK veth %s (peer %s)", v->host, v->peer);
	struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi));
	ifi->ifi_flags = ifi->ifi_change = IFF_UP; /* the host end comes up at once */
	attr_str(&r, IFLA_IFNAME, v->host);
	if (v->mtu)
		attr_u32(&r, IFLA_MTU, v->mtu);
	if (v->master)
		attr_u32(&r, IFLA_MASTER, (uint32_t)v->master); /* enslaved to the bridge with this ifindex */
	struct rtattr *info = nest_begin(&r, IFLA_LINKINFO);
	attr_str(&r, IFLA_INFO_KIND, "veth");
	put_veth_peer(&r, v);
	nest_end(&r, info);
	return talk(nl, &r, NULL, NULL);
}

/*
 * Hairpin mode on a bridge port: the bridge may send a frame back out of the
 * port it came in on. A container reaching its own published port through
 * the host's address needs it when br_netfilter DNATs on the bridge path.
 * The port's settings are AF_BRIDGE attributes, as `bridge link set` sends them.
 */
int nl_brport_hairpin(struct nl *nl, int index, const char *name)
{
	struct req r;
	snprintf(nl->what, sizeof(nl->what), "RTM_SETLINK bridge port %s hairpin on", name);
	struct ifinfomsg *ifi = req_init(&r, RTM_SETLINK, 0, sizeof(*ifi));
	ifi->ifi_family = AF_BRIDGE; /* the bridge's view of the port, not the link's own */
	ifi->ifi_index = index;
	struct rtattr *info = nest_begin(&r, IFLA_PROTINFO | NLA_F_NESTED); /* the port's settings */
	attr_u8(&r, IFLA_BRPORT_MODE, 1);                                   /* BRIDGE_MODE_HAIRPIN */
	nest_end(&r, info);
	return talk(nl, &r, NULL, NULL);
}

int nl_addr_add(struct nl *nl, int index, const char *name, struct in_addr addr, unsigned prefix)
{
	struct req r;
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(nl->what, sizeof(nl->what), "RTM_NEWADDR %s/%u dev %s", ip, prefix, name);
	struct ifaddrmsg *ifa = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)index;
	attr_put(&r, IFA_LOCAL, &addr, sizeof(addr));   /* the interface's own address */
	attr_put(&r, IFA_ADDRESS, &addr, sizeof(addr)); /* the same on a non-point-to-point link */
	if (prefix < 31) {
		uint32_t mask = prefix ? htonl(~0U << (32 - prefix)) : 0;
		struct in_addr brd = { addr.s_addr | ~mask };
		attr_put(&r, IFA_BROADCAST, &brd, sizeof(brd)); /* the subnet's broadcast, as `ip addr add … brd +` */
	}
	return talk(nl, &r, NULL, NULL);
}

int nl_route_default(struct nl *nl, struct in_addr gw, int oif)
{
	struct req r;
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &gw, ip, sizeof(ip));
	snprintf(nl->what, sizeof(nl->what), "RTM_NEWROUTE default via %s", ip);
	struct rtmsg *rt = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(*rt));
	rt->rtm_family = AF_INET;
	rt->rtm_dst_len = 0; /* 0.0.0.0/0: the default route */
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	attr_put(&r, RTA_GATEWAY, &gw, sizeof(gw)); /* the next hop */
	if (oif)
		attr_u32(&r, RTA_OIF, (uint32_t)oif); /* out of this link */
	return talk(nl, &r, NULL, NULL);
}
