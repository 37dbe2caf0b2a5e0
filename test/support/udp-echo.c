// A UDP echo server for the ports test (busybox nc has no -u): each datagram
// is written to stdout (the container's log) and sent back to its sender.
// Built static by the test and copied into its image.
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (argc < 2 || fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return perror("udp-echo"), 1;
	for (;;) {
		char buf[2048];
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &len);
		if (n < 0)
			return perror("recvfrom"), 1;
		printf("%.*s", (int)n, buf);
		fflush(stdout);
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
	}
}
