/*
 * minibox-dns: the name server of one user-defined network.
 *
 *   minibox-dns ADDR[:PORT] RECORDS RESOLV_CONF CLIENTS   (absolute paths)
 *
 * CLIENTS is the network's subnet (10.89.0.0/24): queries from anywhere
 * else but the host itself are dropped. The gateway address is the host's,
 * so a LAN machine routing the subnet to this host could reach it too;
 * this keeps the resolver from being an open relay to the host's
 * nameservers for it.
 *
 * Listens on UDP and TCP ADDR:PORT (the network's gateway, port 53). An A query for
 * a name in RECORDS is answered from it; any other query is relayed to the
 * nameservers of RESOLV_CONF (the host's /etc/resolv.conf: loopback ones
 * included, since this process runs in the host's network namespace) and
 * their answer relayed back as is. With no nameserver there, an unknown
 * single-label name gets NXDOMAIN (it can only be a container that is not
 * there), anything else SERVFAIL.
 *
 * RECORDS is written by minibox (src/runtime/network/dns.ts), one address a
 * line followed by the names it answers for ("10.89.0.2 web db 0123456789ab");
 * `#` starts a comment. A line "upstream 10.89.0.2 198.18.0.53" gives that
 * container's own nameservers (`run --dns`): its other queries go there
 * instead of to RESOLV_CONF's, as Docker's resolver does per container. It is replaced by rename(2), never rewritten in
 * place. Both files are checked with one stat(2) per query and re-read when
 * their inode or mtime changed: a query is rare enough that a stat is free,
 * a rename is a new inode (so no mtime granularity race), and unlike
 * inotify there is no watch to re-arm on the directory when the file is
 * replaced, and no second descriptor in the poll loop.
 *
 * Why a C process and not node: there is one per network for as long as it
 * has containers. Its RSS is about 2 MB (measured: 2.0 MB, glibc, Debian
 * 12); a node process with a dgram socket is about 45 MB.
 *
 * Forwarded queries are in flight at once: each has its own connected UDP
 * socket (a random source port the kernel picks, and only the upstream's
 * replies reach it), a deadline, and moves on to the next nameserver when
 * the deadline passes, as the libc resolver does.
 *
 * TCP too, for the client's retry after a truncated UDP answer: one query
 * per connection, relayed to the upstreams over TCP (see handle_tcp).
 *
 * Prints "ready" on stdout once the socket is bound, then stdout and stderr
 * go to /dev/null: minibox reads the line and lets the process go (setsid by
 * its parent). Exits on SIGTERM (the default action: nothing to clean up).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 64      /* forwarded queries in flight at once */
#define MAX_UPSTREAMS 3     /* glibc's MAXNS: resolv.conf's first three */
#define UPSTREAM_TIMEOUT_MS 2000
#define MAX_MSG 4096        /* a query or an EDNS answer */
#define MAX_ANSWERS 28      /* (512 - header - a long question) / 16 */
#define TTL 600             /* Docker's embedded DNS uses 600 s */

#define TYPE_A 1
#define TYPE_ANY 255
#define CLASS_IN 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

/* A file re-read when its inode or mtime changes. */
struct watched {
	const char *path;
	char *text; /* NUL-terminated contents, NULL when unreadable */
	ino_t ino;
	struct timespec mtime;
};

/* Nameservers to relay to, in order. */
struct upstreams {
	struct sockaddr_storage addr[MAX_UPSTREAMS];
	socklen_t len[MAX_UPSTREAMS];
	int n;
};

/* One query relayed to the upstreams, waiting for their answer. */
struct pending {
	int fd; /* -1: slot free */
	struct sockaddr_in client;
	unsigned char query[MAX_MSG];
	size_t len;
	struct upstreams ups; /* the host's, or the client's own (--dns) */
	int upstream;	      /* the one asked now: index into ups */
	long long deadline_ms;
};

struct server {
	int udp, tcp;
	struct sockaddr_in self;
	uint32_t clients, clients_mask; /* the subnet served, network byte order */
	struct watched records, resolv;
	struct upstreams host; /* RESOLV_CONF's */
	struct pending pending[MAX_PENDING];
};

/* A parsed question: the name in lower case, dotted, without the final dot. */
struct question {
	char name[256];
	int labels;
	uint16_t type, class;
	size_t end; /* offset just past the question in the message */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Re-read w->path if it changed since the last call; 1 when it did. */
static int refresh(struct watched *w)
{
	struct stat st;
	if (stat(w->path, &st) != 0) {
		int had = w->text != NULL;
		free(w->text);
		w->text = NULL;
		w->ino = 0;
		return had;
	}
	if (w->text && st.st_ino == w->ino && st.st_mtim.tv_sec == w->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == w->mtime.tv_nsec)
		return 0;
	FILE *f = fopen(w->path, "r");
	if (!f)
		return 0;
	char *text = calloc(1, (size_t)st.st_size + 1);
	size_t got = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!text)
		return 0;
	text[got] = '\0';
	free(w->text);
	w->text = text;
	w->ino = st.st_ino;
	w->mtime = st.st_mtim;
	return 1;
}

/* One "nameserver ADDR" value as a socket address on port 53; -1 if not an address. */
static int parse_upstream(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(53);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(53);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

/* Add `addr` to u if it is an address, there is room, and it is not this server's own (a loop). */
static void add_upstream(struct upstreams *u, const char *addr, const struct sockaddr_in *self)
{
	if (u->n >= MAX_UPSTREAMS || parse_upstream(addr, &u->addr[u->n], &u->len[u->n]) != 0)
		return;
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&u->addr[u->n];
	if (in4->sin_family == AF_INET && in4->sin_addr.s_addr == self->sin_addr.s_addr)
		return;
	u->n++;
}

/* The first three nameservers of resolv.conf. */
static void load_upstreams(struct server *s)
{
	s->host.n = 0;
	if (!s->resolv.text)
		return;
	char *copy = strdup(s->resolv.text), *save = NULL;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char addr[64];
		if (sscanf(line, " nameserver %63s", addr) == 1)
			add_upstream(&s->host, addr, &s->self);
	}
	free(copy);
}

/*
 * A container's own nameservers (its --dns), from the records line
 * "upstream CLIENT-IP SERVER…"; 0 when it has none (the host's are used).
 */
static int client_upstreams(struct server *s, const struct sockaddr_in *client, struct upstreams *u)
{
	u->n = 0;
	if (!s->records.text)
		return 0;
	char *copy = strdup(s->records.text), *save = NULL, ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &client->sin_addr, ip, sizeof(ip));
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *word = NULL, *w = strtok_r(line, " \t", &word);
		if (!w || strcmp(w, "upstream") != 0 || !(w = strtok_r(NULL, " \t", &word)) || strcmp(w, ip) != 0)
			continue;
		while ((w = strtok_r(NULL, " \t", &word)))
			add_upstream(u, w, &s->self);
		break;
	}
	free(copy);
	return u->n;
}

/* The question of a standard query (one question, no compression); -1 if malformed. */
static int parse_question(const unsigned char *msg, size_t len, struct question *q)
{
	if (len < 12 || get16(msg + 4) != 1)
		return -1;
	size_t off = 12, out = 0;
	q->labels = 0;
	while (off < len && msg[off] != 0) {
		size_t n = msg[off];
		if (n > 63 || off + 1 + n >= len || out + n + 1 >= sizeof(q->name))
			return -1;
		if (out)
			q->name[out++] = '.';
		for (size_t i = 0; i < n; i++)
			q->name[out++] = (char)tolower(msg[off + 1 + i]);
		off += 1 + n;
		q->labels++;
	}
	if (off + 5 > len)
		return -1;
	q->name[out] = '\0';
	q->type = get16(msg + off + 1);
	q->class = get16(msg + off + 3);
	q->end = off + 5;
	return 0;
}

/* Whether `line` (an address, then names) names `name`; its address in *addr if so. */
static int line_matches(char *line, const char *name, struct in_addr *addr)
{
	char *hash = strchr(line, '#'), *save = NULL;
	if (hash)
		*hash = '\0';
	char *ip = strtok_r(line, " \t", &save);
	if (!ip || inet_pton(AF_INET, ip, addr) != 1)
		return 0;
	for (char *n = strtok_r(NULL, " \t", &save); n; n = strtok_r(NULL, " \t", &save))
		if (strcasecmp(n, name) == 0)
			return 1;
	return 0;
}

/* The addresses RECORDS has for `name` (several containers may share an alias); how many. */
static int lookup(struct server *s, const char *name, struct in_addr *found, int max)
{
	refresh(&s->records);
	if (!s->records.text || !name[0])
		return 0;
	char *copy = strdup(s->records.text), *save = NULL;
	int n = 0;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line && n < max;
	     line = strtok_r(NULL, "\n", &save))
		if (line_matches(line, name, &found[n]))
			n++;
	free(copy);
	return n;
}

/*
 * An answer built on the query: its header and question (any EDNS record
 * after it dropped), QR and RA set, RD kept, `rcode`, then `n` A records
 * that point back at the question's name (compression pointer 0xC00C).
 */
static size_t build_reply(unsigned char *out, const unsigned char *query, const struct question *q,
			  int rcode, const struct in_addr *addrs, int n)
{
	memcpy(out, query, q->end);
	out[2] = (unsigned char)(0x80 | (query[2] & 0x79) | 0x04); /* QR, opcode, AA, RD */
	out[3] = (unsigned char)(0x80 | rcode);			  /* RA, rcode */
	put16(out + 6, (uint16_t)n);
	put16(out + 8, 0);
	put16(out + 10, 0);
	size_t off = q->end;
	for (int i = 0; i < n; i++) {
		put16(out + off, 0xC00C);
		put16(out + off + 2, TYPE_A);
		put16(out + off + 4, CLASS_IN);
		put16(out + off + 6, 0);
		put16(out + off + 8, TTL);
		put16(out + off + 10, 4);
		memcpy(out + off + 12, &addrs[i], 4);
		off += 16;
	}
	return off;
}

static void reply(struct server *s, const struct sockaddr_in *to, const unsigned char *msg, size_t len)
{
	/* A lost reply is the client's to retry: UDP gives no better guarantee. */
	(void)sendto(s->udp, msg, len, 0, (const struct sockaddr *)to, sizeof(*to));
}

static void reply_rcode(struct server *s, const struct sockaddr_in *to, const unsigned char *query,
			const struct question *q, int rcode)
{
	unsigned char out[512];
	reply(s, to, out, build_reply(out, query, q, rcode, NULL, 0));
}

/* Send p's query to its upstream p->upstream; -1 if no socket could be made. */
static int send_upstream(struct pending *p)
{
	const struct sockaddr_storage *up = &p->ups.addr[p->upstream];
	if (p->fd >= 0)
		close(p->fd);
	p->fd = socket(up->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return -1;
	if (connect(p->fd, (const struct sockaddr *)up, p->ups.len[p->upstream]) != 0 ||
	    send(p->fd, p->query, p->len, 0) < 0) {
		close(p->fd);
		p->fd = -1;
		return -1;
	}
	p->deadline_ms = now_ms() + UPSTREAM_TIMEOUT_MS;
	return 0;
}

/* Move p to the next upstream; when there is none, SERVFAIL to the client and free the slot. */
static void next_upstream(struct server *s, struct pending *p)
{
	while (++p->upstream < p->ups.n)
		if (send_upstream(p) == 0)
			return;
	struct question q;
	if (parse_question(p->query, p->len, &q) == 0)
		reply_rcode(s, &p->client, p->query, &q, RCODE_SERVFAIL);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* Relay a query to `ups`, or say SERVFAIL at once when that is impossible. */
static void forward(struct server *s, const struct sockaddr_in *from, const unsigned char *msg, size_t len,
		    const struct question *q, const struct upstreams *ups)
{
	for (int i = 0; i < MAX_PENDING; i++) {
		struct pending *p = &s->pending[i];
		if (p->fd >= 0)
			continue;
		p->client = *from;
		memcpy(p->query, msg, len);
		p->len = len;
		p->ups = *ups;
		p->upstream = -1;
		next_upstream(s, p);
		return;
	}
	reply_rcode(s, from, msg, q, RCODE_SERVFAIL); /* every slot busy: try again later */
}

/*
 * What to do with a query (UDP or TCP): answered here into out[512] (a
 * name of ours, or no upstream to ask) → its length; to be relayed → 0 and
 * the upstreams in *ups; not a query we can read → -1 (no reply, as for
 * garbage).
 */
static ssize_t decide(struct server *s, const struct sockaddr_in *from, const unsigned char *msg, size_t len,
		      unsigned char *out, struct upstreams *ups)
{
	struct question q;
	uint32_t src = from->sin_addr.s_addr;
	if ((src & s->clients_mask) != s->clients && src != s->self.sin_addr.s_addr)
		return -1; /* not the network's, nor the host's */
	if (len < 12 || (msg[2] & 0x80) || parse_question(msg, len, &q) != 0)
		return -1;
	struct in_addr addrs[MAX_ANSWERS];
	int n = (msg[2] & 0x78) == 0 && q.class == CLASS_IN ? lookup(s, q.name, addrs, MAX_ANSWERS) : 0;
	if (n > 0) {
		/* A name of ours: A records; any other type has no data (IPv4-only networks). */
		int with = q.type == TYPE_A || q.type == TYPE_ANY ? n : 0;
		while (q.end + 16 * (size_t)with > 512) /* as many as fit a plain UDP answer */
			with--;
		return (ssize_t)build_reply(out, msg, &q, 0, addrs, with);
	}
	if (refresh(&s->resolv))
		load_upstreams(s);
	if (client_upstreams(s, from, ups) == 0)
		*ups = s->host;
	if (ups->n > 0)
		return 0;
	return (ssize_t)build_reply(out, msg, &q, q.labels == 1 ? RCODE_NXDOMAIN : RCODE_SERVFAIL, NULL, 0);
}

/* One datagram from a client. */
static void handle_query(struct server *s, const struct sockaddr_in *from, const unsigned char *msg, size_t len)
{
	unsigned char out[512];
	struct upstreams ups;
	struct question q;
	ssize_t n = decide(s, from, msg, len, out, &ups);
	if (n > 0)
		reply(s, from, out, (size_t)n);
	else if (n == 0 && parse_question(msg, len, &q) == 0)
		forward(s, from, msg, len, &q, &ups);
}

/* All of n bytes, or -1 (a timeout, the peer gone). */
static int read_full(int fd, unsigned char *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* One DNS message over TCP (a 2-byte length, then the message) into buf; its length, or -1. */
static ssize_t read_tcp_message(int fd, unsigned char *buf, size_t size)
{
	unsigned char head[2];
	if (read_full(fd, head, 2) != 0)
		return -1;
	size_t len = get16(head);
	if (len < 12 || len > size || read_full(fd, buf, len) != 0)
		return -1;
	return (ssize_t)len;
}

static int write_tcp_message(int fd, const unsigned char *msg, size_t len)
{
	unsigned char head[2];
	put16(head, (uint16_t)len);
	return write(fd, head, 2) == 2 && write(fd, msg, len) == (ssize_t)len ? 0 : -1;
}

/* A socket whose connect, reads and writes give up after UPSTREAM_TIMEOUT_MS. */
static int timed_socket(int family)
{
	struct timeval tv = { .tv_sec = UPSTREAM_TIMEOUT_MS / 1000, .tv_usec = UPSTREAM_TIMEOUT_MS % 1000 * 1000 };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* The query relayed over TCP to each upstream in turn; the first answer into answer[], its length, or -1. */
static ssize_t ask_over_tcp(const struct upstreams *ups, const unsigned char *msg, size_t len,
			    unsigned char *answer, size_t size)
{
	for (int i = 0; i < ups->n; i++) {
		int fd = timed_socket(ups->addr[i].ss_family);
		if (fd < 0)
			continue;
		ssize_t got = -1;
		if (connect(fd, (const struct sockaddr *)&ups->addr[i], ups->len[i]) == 0 &&
		    write_tcp_message(fd, msg, len) == 0)
			got = read_tcp_message(fd, answer, size);
		close(fd);
		if (got >= 12 && memcmp(answer, msg, 2) == 0)
			return got;
	}
	return -1;
}

/*
 * One TCP client (a retry after a truncated UDP answer): one query, read,
 * answered and closed. Handled in line, with timeouts: TCP queries are
 * rare, and this keeps the server one loop with no connection state. UDP
 * queries wait meanwhile (at most a few seconds when the upstreams do not
 * answer).
 */
static void handle_tcp(struct server *s)
{
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	int c = accept4(s->tcp, (struct sockaddr *)&from, &flen, SOCK_CLOEXEC);
	if (c < 0)
		return;
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	unsigned char msg[MAX_MSG], out[512], answer[65535];
	struct upstreams ups;
	struct question q;
	ssize_t len = read_tcp_message(c, msg, sizeof(msg));
	ssize_t n = len > 0 && flen == sizeof(from) ? decide(s, &from, msg, (size_t)len, out, &ups) : -1;
	if (n > 0)
		write_tcp_message(c, out, (size_t)n);
	if (n == 0) {
		ssize_t got = ask_over_tcp(&ups, msg, (size_t)len, answer, sizeof(answer));
		if (got > 0)
			write_tcp_message(c, answer, (size_t)got);
		else if (parse_question(msg, (size_t)len, &q) == 0)
			write_tcp_message(c, out, build_reply(out, msg, &q, RCODE_SERVFAIL, NULL, 0));
	}
	close(c);
}

/* An upstream's answer for p: relayed to the client if it answers p's query. */
static void handle_answer(struct server *s, struct pending *p)
{
	unsigned char msg[MAX_MSG];
	ssize_t got = recv(p->fd, msg, sizeof(msg), 0);
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got < 0) { /* ICMP unreachable (ECONNREFUSED): this one is down */
		next_upstream(s, p);
		return;
	}
	if (got < 12 || memcmp(msg, p->query, 2) != 0 || !(msg[2] & 0x80))
		return; /* not the answer to this query: keep waiting */
	reply(s, &p->client, msg, (size_t)got);
	close(p->fd);
	p->fd = -1;
}

/* "10.89.0.1" or "10.89.0.1:5353" → the address to bind; -1 if malformed. */
static int parse_listen(const char *arg, struct sockaddr_in *sa)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	long port = colon ? strtol(colon + 1, NULL, 10) : 53;
	if (n >= sizeof(host) || port < 1 || port > 65535)
		return -1;
	memcpy(host, arg, n);
	host[n] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/*
 * The listening socket. IP_FREEBIND: the gateway address may not be on the
 * bridge yet (it is added by the same attach that starts this server, and
 * goes and comes back with the bridge); the socket receives once it is.
 * No SO_REUSEADDR on UDP: a second resolver for the same address must fail
 * to bind, not share the port with the first.
 */
static int open_socket(struct server *s, int type)
{
	int one = 1;
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (type == SOCK_STREAM) /* past a previous resolver's TIME_WAIT; a live listener still conflicts */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&s->self, sizeof(s->self)) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 16) != 0)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* UDP and TCP on ADDR:PORT; -1 (errno set) when either cannot be had. */
static int open_listeners(struct server *s)
{
	s->udp = open_socket(s, SOCK_DGRAM);
	s->tcp = s->udp < 0 ? -1 : open_socket(s, SOCK_STREAM);
	return s->tcp < 0 ? -1 : 0;
}

/* Until the earliest deadline of the queries in flight (-1: none). */
static int poll_timeout(const struct server *s)
{
	long long first = -1, now = now_ms();
	for (int i = 0; i < MAX_PENDING; i++)
		if (s->pending[i].fd >= 0 && (first < 0 || s->pending[i].deadline_ms < first))
			first = s->pending[i].deadline_ms;
	return first < 0 ? -1 : first <= now ? 0 : (int)(first - now);
}

/* One round: wait for a query, an answer or a deadline, and handle what came. */
static void serve_once(struct server *s)
{
	struct pollfd fds[2 + MAX_PENDING];
	int slot[2 + MAX_PENDING], n = 2;
	fds[0] = (struct pollfd){ .fd = s->udp, .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = s->tcp, .events = POLLIN };
	for (int i = 0; i < MAX_PENDING; i++)
		if (s->pending[i].fd >= 0) {
			fds[n] = (struct pollfd){ .fd = s->pending[i].fd, .events = POLLIN };
			slot[n++] = i;
		}
	if (poll(fds, (nfds_t)n, poll_timeout(s)) < 0)
		return; /* EINTR */
	for (int i = 2; i < n; i++)
		if (fds[i].revents)
			handle_answer(s, &s->pending[slot[i]]);
	long long now = now_ms();
	for (int i = 0; i < MAX_PENDING; i++)
		if (s->pending[i].fd >= 0 && s->pending[i].deadline_ms <= now)
			next_upstream(s, &s->pending[i]);
	if (fds[0].revents & POLLIN) {
		unsigned char msg[MAX_MSG];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t got = recvfrom(s->udp, msg, sizeof(msg), 0, (struct sockaddr *)&from, &flen);
		if (got > 0 && flen == sizeof(from))
			handle_query(s, &from, msg, (size_t)got);
	}
	if (fds[1].revents & POLLIN)
		handle_tcp(s);
}

/* "10.89.0.0/24" → the subnet and its mask; -1 if malformed. */
static int parse_subnet(const char *arg, uint32_t *net, uint32_t *mask)
{
	char host[INET_ADDRSTRLEN];
	const char *slash = strchr(arg, '/');
	long prefix = slash ? strtol(slash + 1, NULL, 10) : -1;
	size_t n = slash ? (size_t)(slash - arg) : 0;
	struct in_addr a;
	if (!slash || n >= sizeof(host) || prefix < 0 || prefix > 32)
		return -1;
	memcpy(host, arg, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1)
		return -1;
	*mask = prefix == 0 ? 0 : htonl(~0U << (32 - prefix));
	*net = a.s_addr & *mask;
	return 0;
}

/* stdout and stderr to /dev/null once "ready" is said: the reader goes away. */
static void detach_output(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	close(null);
}

/*
 * Descriptors the caller's caller left open without O_CLOEXEC (a pipe of a
 * shell or a test runner): this process outlives them all, and would keep
 * such a pipe open, so whoever waits for its end would wait forever.
 */
static void close_inherited(void)
{
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++) /* before Linux 5.9 */
		close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: minibox-dns ADDR[:PORT] RECORDS RESOLV_CONF CLIENTS\n");
		return 2;
	}
	close_inherited();
	struct server *s = calloc(1, sizeof(*s)); /* ~270 KB of query slots: on the heap */
	if (!s)
		return 1;
	if (parse_listen(argv[1], &s->self) != 0 || parse_subnet(argv[4], &s->clients, &s->clients_mask) != 0) {
		fprintf(stderr, "minibox-dns: invalid address \"%s\" or subnet \"%s\"\n", argv[1], argv[4]);
		return 2;
	}
	s->records.path = argv[2];
	s->resolv.path = argv[3];
	for (int i = 0; i < MAX_PENDING; i++)
		s->pending[i].fd = -1;
	if (open_listeners(s) != 0) {
		fprintf(stderr, "minibox-dns: listening on %s %s: %s\n", s->udp < 0 ? "udp" : "tcp", argv[1],
			strerror(errno));
		return 1;
	}
	refresh(&s->resolv);
	load_upstreams(s);
	if (chdir("/") != 0) /* hold no directory busy for as long as the network lives */
		return 1;
	printf("ready\n");
	fflush(stdout);
	detach_output();
	for (;;)
		serve_once(s);
}
