/*
 * sysprobe ATTEMPT [ARG]: one syscall attempt per subcommand, made the way
 * the exploits that need it start, run inside a container by
 * test/security/syscalls.test.ts (built there with `gcc -static`, bind-
 * mounted in). Each step prints one line "STEP RET ERRNO" (ERRNO 0 when the
 * call succeeded), so the test tells the filter's answer (EPERM, ENOSYS)
 * from the kernel's. Exit status 0 unless the usage is wrong.
 *
 *   keyring           keyctl(JOIN_SESSION_KEYRING), add_key to it
 *   userns-mount DIR  unshare(CLONE_NEWUSER), unshare(CLONE_NEWNS), mount a tmpfs on DIR
 *   bpf               bpf(BPF_PROG_LOAD) of a 2-instruction socket filter, then
 *                     with an unreadable attr (EFAULT: the kernel saw the call)
 *   perf              perf_event_open of a user-only software counter
 *   userfaultfd       userfaultfd(UFFD_USER_MODE_ONLY)
 *   io-uring          io_uring_setup(1 entry)
 *   ptrace PID        ptrace(PTRACE_ATTACH, PID)
 *   ptrace-child      fork a child, PTRACE_ATTACH it, wait, detach
 *   kexec             kexec_load with no segments
 *   personality       personality(READ_IMPLIES_EXEC)
 *   af-alg            socket(AF_ALG, SOCK_SEQPACKET)
 *   vsock             socket(AF_VSOCK, SOCK_STREAM)
 *   clone3            clone3 with an empty clone_args
 *   x32               getppid through the x32 ABI (__X32_SYSCALL_BIT)
 *   status            the Seccomp: line of /proc/self/status
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define X32_SYSCALL_BIT 0x40000000L

/* One line per step: what the call returned and errno (0 on success). */
static long report(const char *step, long ret)
{
	printf("%s %ld %d\n", step, ret < 0 ? -1L : ret, ret < 0 ? errno : 0);
	fflush(stdout);
	return ret;
}

static void keyring(void)
{
	/* The first step of the keyring exploits: a session keyring of one's own, then a key in it. */
	long id = report("keyctl", syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "minibox-probe"));
	(void)id;
	report("add_key", syscall(SYS_add_key, "user", "minibox-probe", "x", 1,
				  KEY_SPEC_SESSION_KEYRING));
}

static void userns_mount(const char *dir)
{
	/* "unshare -U" gives every capability over new namespaces: the way in for most kernel exploits. */
	if (report("unshare-user", unshare(CLONE_NEWUSER)) < 0) return;
	if (report("unshare-mount", unshare(CLONE_NEWNS)) < 0) return;
	report("mount", mount("none", dir, "tmpfs", 0, "size=1m"));
}

static void bpf_load(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insn_cnt = 2;
	attr.insns = (unsigned long)insns;
	attr.license = (unsigned long)"GPL";
	report("bpf", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
	/*
	 * The kernel refuses an unprivileged load with EPERM too
	 * (kernel.unprivileged_bpf_disabled); an unreadable attr tells who
	 * answered: the kernel reads it first (EFAULT), the filter never does.
	 */
	report("bpf-unreadable-attr", syscall(SYS_bpf, BPF_PROG_LOAD, NULL, sizeof attr));
}

static void perf(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr;
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.exclude_kernel = 1;
	attr.exclude_hv = 1;
	report("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

static void io_uring(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	report("io_uring_setup", syscall(SYS_io_uring_setup, 1, &p));
}

static void ptrace_child(void)
{
	pid_t child = fork();
	if (child < 0) {
		report("fork", -1);
		return;
	}
	if (child == 0) {
		pause();
		_exit(0);
	}
	if (report("ptrace-attach", ptrace(PTRACE_ATTACH, child, 0, 0)) == 0) {
		int status;
		waitpid(child, &status, 0); /* the child stops on attach */
		report("ptrace-detach", ptrace(PTRACE_DETACH, child, 0, 0));
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

static void status(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "Seccomp:", 8) == 0) fputs(line, stdout);
	if (f) fclose(f);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	const char *arg = argc > 2 ? argv[2] : NULL;
	if (strcmp(what, "keyring") == 0) keyring();
	else if (strcmp(what, "userns-mount") == 0 && arg) userns_mount(arg);
	else if (strcmp(what, "bpf") == 0) bpf_load();
	else if (strcmp(what, "perf") == 0) perf();
	else if (strcmp(what, "userfaultfd") == 0)
		report("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
	else if (strcmp(what, "io-uring") == 0) io_uring();
	else if (strcmp(what, "ptrace") == 0 && arg)
		report("ptrace-attach", ptrace(PTRACE_ATTACH, (pid_t)atoi(arg), 0, 0));
	else if (strcmp(what, "ptrace-child") == 0) ptrace_child();
	else if (strcmp(what, "kexec") == 0) report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	else if (strcmp(what, "personality") == 0)
		report("personality", syscall(SYS_personality, READ_IMPLIES_EXEC));
	else if (strcmp(what, "af-alg") == 0) report("socket", socket(AF_ALG, SOCK_SEQPACKET, 0));
	else if (strcmp(what, "vsock") == 0) report("socket", socket(AF_VSOCK, SOCK_STREAM, 0));
	else if (strcmp(what, "clone3") == 0) report("clone3", syscall(SYS_clone3, NULL, 0));
	else if (strcmp(what, "x32") == 0) report("x32-getppid", syscall(X32_SYSCALL_BIT | SYS_getppid));
	else if (strcmp(what, "status") == 0) status();
	else {
		fprintf(stderr, "sysprobe: unknown attempt \"%s\" (see the comment at the top of sysprobe.c)\n", what);
		return 2;
	}
	return 0;
}
