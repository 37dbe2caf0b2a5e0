/*
 * seccomp-probe FILTER NR A0 A1 A2 [NR A0 A1 A2]...
 * Loads the classic-BPF program in FILTER (struct sock_filter[], as
 * compileFilter writes it) the way minibox's executor does (no_new_privs,
 * seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)), then makes each syscall and
 * prints "RET ERRNO" per line. With only FILTER it prints the
 * /proc/self/status Seccomp line. For the tests: the kernel, not the
 * tests' interpreter, says whether the program loads and what it does.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int load(const char *path)
{
	static struct sock_filter insns[4096];
	FILE *f = fopen(path, "rb");
	if (!f) return -1;
	size_t n = fread(insns, sizeof insns[0], 4096, f);
	fclose(f);
	struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
}

static void print_status(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "Seccomp:", 8) == 0) fputs(line, stdout);
	if (f) fclose(f);
}

int main(int argc, char **argv)
{
	if (argc < 2 || (argc - 2) % 4 != 0) {
		fprintf(stderr, "usage: seccomp-probe FILTER [NR A0 A1 A2]...\n");
		return 2;
	}
	if (load(argv[1]) != 0) {
		printf("load failed: %s\n", strerror(errno));
		return 1;
	}
	if (argc == 2) print_status();
	for (int i = 2; i + 3 < argc; i += 4) {
		long nr = strtol(argv[i], NULL, 0);
		unsigned long a0 = strtoul(argv[i + 1], NULL, 0);
		unsigned long a1 = strtoul(argv[i + 2], NULL, 0);
		unsigned long a2 = strtoul(argv[i + 3], NULL, 0);
		errno = 0;
		long ret = syscall(nr, a0, a1, a2);
		printf("%ld %d\n", ret, ret == -1 ? errno : 0);
		fflush(stdout);
	}
	return 0;
}
