/*
 * Steps that shape the process itself: namespaces joined or unshared, the
 * hostname and loopback of its own namespaces, its working directory, stdin
 * and descriptors, its environment, and finally execve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor.h"

int step_unshare(struct executor *ex, const struct step *st)
{
	if (unshare((int)num(arg(st, 1))) < 0)
		return fail(ex, st, "unshare", arg(st, 1));
	stay_undumpable(); /* a new user namespace is a credential change */
	return 0;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* exec: join a running container's namespaces ("setns PID user mnt ...").
 * Every descriptor is opened first, while /proc is still the host's and we
 * are still the host's root; then setns in the order given (user first, so
 * the rest are joined with the rights of the container's root; mnt last,
 * which also moves our root and working directory into the container). */
int step_setns(struct executor *ex, const struct step *st)
{
	int n = st->nfields - 2, rc = 0;
	int *fds = calloc(n > 0 ? (size_t)n : 1, sizeof(*fds));
	char path[4096];
	if (!fds)
		return fail(ex, st, "malloc", "setns");
	for (int i = 0; i < n; i++)
		fds[i] = -1;
	for (int i = 0; i < n && rc == 0; i++) {
		snprintf(path, sizeof(path), "/proc/%s/ns/%s", arg(st, 1), arg(st, i + 2));
		if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			rc = fail(ex, st, "open", path);
	}
	for (int i = 0; i < n && rc == 0; i++)
		if (setns(fds[i], 0) < 0)
			rc = fail(ex, st, "setns", arg(st, i + 2));
	stay_undumpable(); /* joining a user namespace is a credential change */
	close_all(fds, n);
	free(fds);
	return rc;
}

int step_sethostname(struct executor *ex, const struct step *st)
{
	if (sethostname(arg(st, 1), strlen(arg(st, 1))) < 0)
		return fail(ex, st, "sethostname", arg(st, 1));
	return 0;
}

/* --sysctl kernel.domainname: the syscall, not /proc/sys/kernel/domainname,
 * which stays owned by the host's root even in the container's own UTS
 * namespace (the write is EACCES under a user namespace; the syscall needs
 * only CAP_SYS_ADMIN over the UTS namespace). */
int step_setdomainname(struct executor *ex, const struct step *st)
{
	if (setdomainname(arg(st, 1), strlen(arg(st, 1))) < 0)
		return fail(ex, st, "setdomainname", arg(st, 1));
	return 0;
}

/* A new network namespace starts with its loopback down. */
int step_ifup(struct executor *ex, const struct step *st)
{
	const char *name = arg(st, 1);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(ex, st, "socket", name);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	int rc = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		rc = fail(ex, st, "ioctl", name);
	else if (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		rc = fail(ex, st, "ioctl", name);
	close(s);
	return rc;
}

/*
 * CVE-2024-21626: a -w through /proc/self/fd/N lands wherever descriptor N
 * points, and a directory descriptor of the host's (runc leaked one of
 * /sys/fs/cgroup) would give the program a working directory outside the
 * container, from which ../../.. reaches the host's files. None of ours is
 * a directory by now, but the kernel says for certain: getcwd fails
 * (ENOENT, "(unreachable)") when the directory is not under our root.
 */
int step_chdir(struct executor *ex, const struct step *st)
{
	char cwd[PATH_MAX];
	if (chdir(arg(st, 1)) < 0)
		return fail(ex, st, "chdir", arg(st, 1));
	if (!getcwd(cwd, sizeof(cwd)) && errno != ERANGE && errno != ENAMETOOLONG)
		return fail(ex, st, "getcwd", arg(st, 1));
	return 0;
}

/* The container's /dev/null, opened after pivot_root (a descriptor of the
 * host's /dev would be a way out of the rootfs, CVE-2024-21626), and only if
 * it is the null device: not a symlink or a node put in its place. */
int step_stdin_null(struct executor *ex, const struct step *st)
{
	struct stat sb;
	int fd = open("/dev/null", O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fail(ex, st, "open", "/dev/null");
	if (fstat(fd, &sb) < 0 || !S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(1, 3)) {
		close(fd);
		errno = ENODEV;
		return fail(ex, st, "open", "/dev/null");
	}
	int rc = dup2(fd, 0) < 0 ? fail(ex, st, "open", "/dev/null") : 0;
	if (fd != 0)
		close(fd);
	return rc;
}

/* Everything above stderr closes at execve; the status pipe stays usable
 * until then, so a failing execve can still be reported. */
int step_closefds(struct executor *ex, const struct step *st)
{
	if (syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
		return fail(ex, st, "close_range", NULL);
	return 0;
}

/* As many variables as the plan lists; past ARG_MAX, execve's E2BIG says so. */
int step_env(struct executor *ex, const struct step *st)
{
	struct strv *env = &ex->env;
	if (env->n + 2 > env->cap) {
		size_t cap = env->cap ? env->cap * 2 : 64;
		char **bigger = realloc(env->v, cap * sizeof(*bigger));
		if (!bigger)
			return fail(ex, st, "malloc", "env");
		env->v = bigger;
		env->cap = cap;
	}
	env->v[env->n++] = st->field[1];
	env->v[env->n] = NULL;
	return 0;
}

static const char *env_get(const struct strv *env, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], name, len) && env->v[i][len] == '=')
			return env->v[i] + len + 1;
	return NULL;
}

/* execve with a PATH search in the *container's* PATH (execvpe would use
 * ours). Like the shell: ENOENT only if no candidate exists at all. */
static void exec_program(char **argv, char **envp, const char *path)
{
	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, envp);
		return;
	}
	int seen_eacces = 0;
	char candidate[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int dirlen = (int)(end - p);
		if (snprintf(candidate, sizeof(candidate), "%.*s%s%s", dirlen, p, dirlen ? "/" : "", argv[0]) >=
		    (int)sizeof(candidate))
			errno = ENAMETOOLONG;
		else
			execve(candidate, argv, envp);
		if (errno == EACCES)
			seen_eacces = 1;
		else if (errno != ENOENT && errno != ENOTDIR)
			return;
		if (!*end)
			break;
		p = end;
	}
	errno = seen_eacces ? EACCES : ENOENT;
}

int step_exec(struct executor *ex, const struct step *st)
{
	char *no_env[] = { NULL };
	const char *path = env_get(&ex->env, "PATH");
	if (ex->tracing)
		status("trace %d %.3f 0", st->line, ex->step_start);
	exec_program(&st->field[1], ex->env.v ? ex->env.v : no_env,
		     path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	return fail(ex, st, "execve", arg(st, 1));
}
