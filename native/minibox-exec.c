/*
 * minibox-exec: the small, single-threaded executor of a container plan.
 *
 * Why this exists (DESIGN.md, "Platform facts"): Node always runs several
 * threads, and the steps between clone() and execve() -- entering a new user
 * namespace, mounting, pivot_root, dropping capabilities -- must run in a
 * single-threaded process. So TypeScript decides everything and writes it
 * down as a plan; this program only performs the plan's steps, in order,
 * and reports the first one that fails (its index, the syscall, errno).
 *
 * File descriptors (set up by the TypeScript side):
 *   0,1,2  the container's stdio (inherited as they are, no copying)
 *   3      the plan (read to EOF)
 *   4      status: lines we write back ("pid N", "trace ...", "error ...",
 *          "started", "exit N" / "signal N")
 *   5      control: one byte "g" releases a `wait-go` step
 *
 * The plan is text, one step per line, fields separated by TAB, with \t \n
 * and \\ escaped. Three sections:
 *   [setup]   run here, as real root, in a private mount namespace: layer
 *             idmapping, the overlay, /dev; ends with `clone FLAGS`
 *   [child]   run by the cloned child, inside its new namespaces, ending in
 *             `exec` (or `init` + `exec`)
 *   [parent]  run here after the clone: uid/gid maps, cgroup membership;
 *             then the child is released and waited for
 *
 * Our own exit status mirrors the container's (its code, or 128+signal), and
 * 125 when a step failed before the container's program started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

#define PLAN_FD 3
#define STATUS_FD 4
#define CONTROL_FD 5
#define MAX_FIELDS 256
#define EXIT_SETUP_FAILED 125

/* ---- plan parsing --------------------------------------------------------- */

struct step {
	int index;      /* line number in the plan, for error reports */
	int nfields;
	char *field[MAX_FIELDS];
};

struct plan {
	struct step *setup, *child, *parent;
	int nsetup, nchild, nparent;
};

static int tracing;
static int detached;            /* -d: outlive minibox, log, run the exit hook */
static const char *exit_file;
static int host_mntns = -1;
static char **exit_hook;
static struct timespec t0;

static double elapsed_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0.tv_sec) * 1e3 + (now.tv_nsec - t0.tv_nsec) / 1e6;
}

/* One line to the status pipe. Lines below PIPE_BUF are written atomically,
 * so the parent and the child can both report without interleaving. */
static void status(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STATUS_FD, buf, n) < 0) {
		/* Nobody listens any more; the exit status still tells the story. */
	}
}

static char *read_all(int fd)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			return NULL;
		if (len + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			continue;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	return buf;
}

/* Undo the plan's escapes in place. */
static void unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*out++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The plan's memory, freed once a detached container runs: a monitor keeps
 * only what its exit needs (see release_plan). */
static char *plan_text;
static struct step *plan_steps;

static int parse_plan(char *text, struct plan *plan)
{
	int count = 1;
	for (char *p = text; *p; p++)
		count += *p == '\n';
	struct step *all = plan_steps = calloc(count, sizeof(*all));
	struct step **section = NULL;
	int *nsection = NULL;
	int line = 0;
	if (!all)
		return -1;
	memset(plan, 0, sizeof(*plan));
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		line++;
		if (!strcmp(l, "[setup]") || !strcmp(l, "[child]") || !strcmp(l, "[parent]")) {
			struct step *start = all + line;
			if (l[1] == 's') { plan->setup = start; section = &plan->setup; nsection = &plan->nsetup; }
			if (l[1] == 'c') { plan->child = start; section = &plan->child; nsection = &plan->nchild; }
			if (l[1] == 'p') { plan->parent = start; section = &plan->parent; nsection = &plan->nparent; }
			continue;
		}
		if (!section)
			return -1;
		struct step *st = *section + *nsection;
		st->index = line;
		char *f = l;
		while (f && st->nfields < MAX_FIELDS) {
			char *tab = strchr(f, '\t');
			if (tab)
				*tab = '\0';
			unescape(f);
			st->field[st->nfields++] = f;
			f = tab ? tab + 1 : NULL;
		}
		(*nsection)++;
	}
	return 0;
}

/* ---- helpers for the steps ------------------------------------------------- */

/* A failed step: which one, what call, why. */
struct failure {
	int index;
	const char *op;
	const char *call;
	int err;
	char detail[512];
};

static struct failure failed;

static int fail(const struct step *st, const char *call, const char *detail)
{
	failed.index = st->index;
	failed.op = st->field[0];
	failed.call = call;
	failed.err = errno;
	snprintf(failed.detail, sizeof(failed.detail), "%.500s", detail ? detail : "");
	return -1;
}

static const char *arg(const struct step *st, int i)
{
	if (i >= st->nfields)
		return "";
	return st->field[i];
}

static unsigned long num(const char *s)
{
	return strtoul(s, NULL, 0);
}

/* "-" stands for an absent (NULL) string argument. */
static const char *opt(const char *s)
{
	return strcmp(s, "-") ? s : NULL;
}

static int write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(content);
	ssize_t n = write(fd, content, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? 0 : -1;
}

/* Replace every "{pid}" in `in` with `pid`. */
static void expand_pid(const char *in, pid_t pid, char *out, size_t size)
{
	size_t o = 0;
	while (*in && o + 16 < size) {
		if (!strncmp(in, "{pid}", 5)) {
			o += snprintf(out + o, size - o, "%d", (int)pid);
			in += 5;
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = '\0';
}

/* ---- the idmapping user namespace -------------------------------------------
 * An idmapped mount needs a user namespace that holds the mapping. We make
 * one with a short-lived child that only waits, write its maps, keep a file
 * descriptor to its namespace, and let it go. */
static int idmap_userns_fd = -1;

static int make_idmap_userns(const char *uid_map, const char *gid_map)
{
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char c;
		close(sync[1]);
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(sync[0]);
	char path[64];
	int rc = 0;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	rc |= write_file(path, uid_map);
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	rc |= write_file(path, gid_map);
	int saved = errno;
	if (rc == 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		idmap_userns_fd = open(path, O_RDONLY | O_CLOEXEC);
		saved = errno;
	}
	close(sync[1]);
	waitpid(pid, NULL, 0);
	errno = saved;
	return rc == 0 && idmap_userns_fd >= 0 ? 0 : -1;
}

/* Attach a copy of `src`, shifted through the idmap namespace, at `dst`. */
static int idmap_mount(const struct step *st, const char *src, const char *dst)
{
	int tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return fail(st, "open_tree", src);
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP,
		.userns_fd = (uint64_t)idmap_userns_fd,
	};
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		close(tree);
		return fail(st, "mount_setattr", src);
	}
	if (move_mount(tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		close(tree);
		return fail(st, "move_mount", dst);
	}
	close(tree);
	return 0;
}

/* Make the mount at `path` read-only. In a user namespace a remount must
 * keep the flags the mount already has (nosuid, nodev, noexec are locked),
 * so read them first. */
static int remount_ro(const struct step *st, const char *path)
{
	struct statvfs sv;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0; /* nothing there to protect (e.g. no /proc/sysrq-trigger) */
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(st, "mount", path);
	if (statvfs(path, &sv) < 0)
		return fail(st, "statvfs", path);
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return fail(st, "mount", path);
	return 0;
}

/* Hide a path: /dev/null over a file, an empty read-only tmpfs over a
 * directory. A path that does not exist needs no hiding. */
static int mask_path(const struct step *st, const char *path, const char *devnull)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return errno == ENOENT ? 0 : fail(st, "stat", path);
	if (S_ISDIR(sb.st_mode)) {
		if (mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k") < 0)
			return fail(st, "mount", path);
	} else if (mount(devnull, path, NULL, MS_BIND, NULL) < 0) {
		return fail(st, "mount", path);
	}
	return 0;
}

/* pivot_root(".", ".") puts the old root on top of the new one; detaching
 * it then leaves only the container's tree (the trick runc uses too).
 * Mounts inherited from a more privileged mount namespace are "locked", and
 * pivot_root refuses a locked new root: a recursive bind of the root onto
 * itself, made here, is ours and unlocked. */
static int do_pivot_root(const struct step *st, const char *root)
{
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(st, "mount", root);
	if (chdir(root) < 0)
		return fail(st, "chdir", root);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(st, "pivot_root", root);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(st, "umount2", "old root");
	if (chdir("/") < 0)
		return fail(st, "chdir", "/");
	return 0;
}

static int interface_up(const struct step *st, const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(st, "socket", name);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
		close(s);
		return fail(st, "ioctl", name);
	}
	close(s);
	return 0;
}

/* Drop every capability not in the bounding set: the ceiling for this
 * process and everything it executes. Needs CAP_SETPCAP, so it runs before
 * switching to a non-root user. */
static int drop_bounding(const struct step *st)
{
	uint64_t bounding = strtoull(arg(st, 1), NULL, 16);
	for (int cap = 0; cap <= 63; cap++) {
		if (bounding & (1ULL << cap))
			continue;
		/* EINVAL: this kernel does not know the capability; nothing to drop. */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return fail(st, "prctl(PR_CAPBSET_DROP)", NULL);
	}
	return 0;
}

/* Set the effective, permitted and inheritable sets; clear ambient. */
static int set_capabilities(const struct step *st)
{
	uint64_t effective = strtoull(arg(st, 1), NULL, 16);
	uint64_t permitted = strtoull(arg(st, 2), NULL, 16);
	uint64_t inheritable = strtoull(arg(st, 3), NULL, 16);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = {
		{ (uint32_t)effective, (uint32_t)permitted, (uint32_t)inheritable },
		{ (uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), (uint32_t)(inheritable >> 32) },
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(st, "capset", NULL);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail(st, "prctl(PR_CAP_AMBIENT)", NULL);
	return 0;
}

/* ---- the container's environment and program --------------------------------- */

static char *env[1024];
static int nenv;

static const char *env_get(const char *name)
{
	size_t len = strlen(name);
	for (int i = 0; i < nenv; i++)
		if (!strncmp(env[i], name, len) && env[i][len] == '=')
			return env[i] + len + 1;
	return NULL;
}

/* execve with a PATH search in the *container's* PATH (execvpe would use
 * ours). Like the shell: ENOENT only if no candidate exists at all. */
static void exec_program(char **argv)
{
	env[nenv] = NULL;
	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, env);
		return;
	}
	const char *path = env_get("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	int seen_eacces = 0;
	char candidate[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int dirlen = (int)(end - p);
		snprintf(candidate, sizeof(candidate), "%.*s%s%s", dirlen, p, dirlen ? "/" : "", argv[0]);
		execve(candidate, argv, env);
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

/* --init: stay as PID 1, run the program as PID 2, forward signals to it,
 * reap every zombie (orphans are re-parented to us), and exit with its
 * status. The smallest useful init, like tini. */
static pid_t init_child;
static void init_forward(int sig)
{
	if (init_child > 0)
		kill(init_child, sig);
}

static void run_init(void)
{
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	init_child = fork();
	if (init_child < 0)
		return;
	if (init_child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return; /* the child goes on to exec the program */
	}
	/* PID 1 needs none of our descriptors; holding the error pipe open
	 * would make the parent wait for us instead of for execve. */
	syscall(SYS_close_range, 3, ~0U, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = init_forward;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGCHLD && sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			_exit(0);
		if (pid == init_child)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

/* ---- steps -------------------------------------------------------------------- */

static int tty_master = -1;
static int console_socket[2] = { -1, -1 };
static pid_t child_pid;

/* In the child, after pivot_root: open a pty in the container's devpts,
 * pass the master to the parent, make the slave our controlling terminal
 * and stdio. */
static int make_console(const struct step *st)
{
	char name[128];
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return fail(st, "posix_openpt", "/dev/ptmx");
	if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0)
		return fail(st, "unlockpt", "/dev/ptmx");
	int slave = open(name, O_RDWR | O_NOCTTY);
	if (slave < 0)
		return fail(st, "open", name);
	char data = 'm';
	struct iovec iov = { &data, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	memset(&control, 0, sizeof(control));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
	if (sendmsg(console_socket[1], &msg, 0) < 0)
		return fail(st, "sendmsg", "console socket");
	close(master);
	close(console_socket[1]);
	if (setsid() < 0)
		return fail(st, "setsid", NULL);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return fail(st, "ioctl(TIOCSCTTY)", name);
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		return fail(st, "dup2", name);
	if (slave > 2)
		close(slave);
	return 0;
}

/* In the parent: the master end of the container's terminal, or -1 if the
 * child failed before sending it. */
static int receive_console(void)
{
	char data;
	struct iovec iov = { &data, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	ssize_t n;
	while ((n = recvmsg(console_socket[0], &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	struct cmsghdr *cmsg = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	int fd = -1;
	if (cmsg && cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	close(console_socket[0]);
	return fd;
}

/* exec: join a running container's namespaces ("setns PID user mnt …").
 * Every descriptor is opened first, while /proc is still the host's and we
 * are still the host's root; then setns in the order given (user first, so
 * the rest are joined with the rights of the container's root; mnt last,
 * which also moves our root and working directory into the container). */
static int join_namespaces(const struct step *st)
{
	int fds[16];
	int n = 0;
	char path[64];
	for (int i = 2; i < st->nfields && n < 16; i++, n++) {
		snprintf(path, sizeof(path), "/proc/%s/ns/%s", arg(st, 1), arg(st, i));
		if ((fds[n] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return fail(st, "open", path);
	}
	for (int i = 0; i < n; i++) {
		if (setns(fds[i], 0) < 0)
			return fail(st, "setns", arg(st, i + 2));
		close(fds[i]);
	}
	return 0;
}

static int run_step(const struct step *st)
{
	const char *op = st->field[0];
	double start = tracing ? elapsed_ms() : 0;
	int rc = 0;
	char buf[8192];

	if (!strcmp(op, "mountns")) {
		/* Keep a way back: the monitor's exit hook must run in the host's
		 * mount namespace, where the container's mounts do not exist. */
		host_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
		if (unshare(CLONE_NEWNS) < 0)
			rc = fail(st, "unshare(CLONE_NEWNS)", NULL);
		else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			rc = fail(st, "mount", "make / rprivate");
	} else if (!strcmp(op, "mkdir")) {
		/* Optional owner: given to the directory only if we created it. */
		if (mkdir(arg(st, 1), num(arg(st, 2))) < 0) {
			if (errno != EEXIST)
				rc = fail(st, "mkdir", arg(st, 1));
		} else if (st->nfields > 4 && lchown(arg(st, 1), num(arg(st, 3)), num(arg(st, 4))) < 0) {
			rc = fail(st, "chown", arg(st, 1));
		}
	} else if (!strcmp(op, "mount")) {
		if (mount(opt(arg(st, 1)), arg(st, 2), opt(arg(st, 3)), num(arg(st, 4)), opt(arg(st, 5))) < 0)
			rc = fail(st, "mount", arg(st, 2));
	} else if (!strcmp(op, "mknod")) {
		if (mknod(arg(st, 1), num(arg(st, 2)), makedev(num(arg(st, 3)), num(arg(st, 4)))) < 0)
			rc = fail(st, "mknod", arg(st, 1));
		else if (chmod(arg(st, 1), num(arg(st, 2)) & 07777) < 0)
			rc = fail(st, "chmod", arg(st, 1));
	} else if (!strcmp(op, "symlink")) {
		if (symlink(arg(st, 1), arg(st, 2)) < 0 && errno != EEXIST)
			rc = fail(st, "symlink", arg(st, 2));
	} else if (!strcmp(op, "chown")) {
		if (lchown(arg(st, 1), num(arg(st, 2)), num(arg(st, 3))) < 0)
			rc = fail(st, "chown", arg(st, 1));
	} else if (!strcmp(op, "touch")) {
		/* O_EXCL: an existing file is left alone (no overlay copy-up); a new
		 * one gets the optional owner. */
		int fd = open(arg(st, 1), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, num(arg(st, 2)));
		if (fd < 0) {
			if (errno != EEXIST)
				rc = fail(st, "open", arg(st, 1));
		} else {
			if (st->nfields > 4 && fchown(fd, num(arg(st, 3)), num(arg(st, 4))) < 0)
				rc = fail(st, "chown", arg(st, 1));
			close(fd);
		}
	} else if (!strcmp(op, "write")) {
		char path[4096];
		expand_pid(arg(st, 1), child_pid, path, sizeof(path));
		expand_pid(arg(st, 2), child_pid, buf, sizeof(buf));
		if (write_file(path, buf) < 0)
			rc = fail(st, "write", path);
	} else if (!strcmp(op, "idmap-userns")) {
		if (make_idmap_userns(arg(st, 1), arg(st, 2)) < 0)
			rc = fail(st, "idmap user namespace", NULL);
	} else if (!strcmp(op, "idmap-mount")) {
		rc = idmap_mount(st, arg(st, 1), arg(st, 2));
	} else if (!strcmp(op, "pty")) {
		/* -t: the terminal is made inside the container (its own devpts,
		 * so `tty` names a /dev/pts entry that exists there); the child
		 * sends the master end back to us over this socket pair. */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console_socket) < 0)
			rc = fail(st, "socketpair", NULL);
	} else if (!strcmp(op, "console")) {
		rc = make_console(st);
	} else if (!strcmp(op, "stdin-null")) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0)
			rc = fail(st, "open", "/dev/null");
		else if (fd != 0)
			close(fd);
	} else if (!strcmp(op, "unshare")) {
		if (unshare((int)num(arg(st, 1))) < 0)
			rc = fail(st, "unshare", arg(st, 1));
	} else if (!strcmp(op, "pivot_root")) {
		rc = do_pivot_root(st, arg(st, 1));
	} else if (!strcmp(op, "remount-ro")) {
		rc = remount_ro(st, arg(st, 1));
	} else if (!strcmp(op, "mask")) {
		rc = mask_path(st, arg(st, 1), arg(st, 2));
	} else if (!strcmp(op, "sethostname")) {
		if (sethostname(arg(st, 1), strlen(arg(st, 1))) < 0)
			rc = fail(st, "sethostname", arg(st, 1));
	} else if (!strcmp(op, "ifup")) {
		rc = interface_up(st, arg(st, 1));
	} else if (!strcmp(op, "chdir")) {
		if (chdir(arg(st, 1)) < 0)
			rc = fail(st, "chdir", arg(st, 1));
	} else if (!strcmp(op, "rlimit")) {
		struct rlimit rl = { num(arg(st, 2)), num(arg(st, 3)) };
		if (setrlimit((int)num(arg(st, 1)), &rl) < 0)
			rc = fail(st, "setrlimit", arg(st, 1));
	} else if (!strcmp(op, "groups")) {
		gid_t gids[64];
		int n = 0;
		for (int i = 1; i < st->nfields && n < 64; i++)
			gids[n++] = (gid_t)num(arg(st, i));
		if (setgroups(n, gids) < 0)
			rc = fail(st, "setgroups", NULL);
	} else if (!strcmp(op, "user")) {
		uid_t uid = (uid_t)num(arg(st, 1));
		gid_t gid = (gid_t)num(arg(st, 2));
		if (setresgid(gid, gid, gid) < 0)
			rc = fail(st, "setresgid", arg(st, 2));
		else if (setresuid(uid, uid, uid) < 0)
			rc = fail(st, "setresuid", arg(st, 1));
		else
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* credential changes clear it */
	} else if (!strcmp(op, "bounding")) {
		rc = drop_bounding(st);
	} else if (!strcmp(op, "caps")) {
		rc = set_capabilities(st);
	} else if (!strcmp(op, "no-new-privs")) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			rc = fail(st, "prctl(PR_SET_NO_NEW_PRIVS)", NULL);
	} else if (!strcmp(op, "closefds")) {
		/* Everything above stderr closes at execve; the status pipe stays
		 * usable until then, so a failing execve can still be reported. */
		if (syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
			rc = fail(st, "close_range", NULL);
	} else if (!strcmp(op, "env")) {
		if (nenv < 1023)
			env[nenv++] = (char *)arg(st, 1);
	} else if (!strcmp(op, "init")) {
		run_init();
		if (init_child < 0)
			rc = fail(st, "fork", "init");
	} else if (!strcmp(op, "setns")) {
		rc = join_namespaces(st);
	} else if (!strcmp(op, "log")) {
		if (monitor_open_log(arg(st, 1), strtoll(arg(st, 2), NULL, 10), (int)num(arg(st, 3)),
				     strcmp(arg(st, 4), "tty") != 0) < 0)
			rc = fail(st, "open", arg(st, 1));
	} else if (!strcmp(op, "exit-file")) {
		exit_file = arg(st, 1);
	} else if (!strcmp(op, "on-exit")) {
		exit_hook = (char **)&st->field[1];
	} else if (!strcmp(op, "report-pid")) {
		status("pid %d", (int)child_pid);
	} else if (!strcmp(op, "wait-go")) {
		char c = 0;
		ssize_t n;
		while ((n = read(CONTROL_FD, &c, 1)) < 0 && errno == EINTR)
			;
		if (n != 1 || c != 'g') {
			errno = ECANCELED;
			rc = fail(st, "read", "control pipe: minibox went away");
		}
	} else if (!strcmp(op, "exec")) {
		if (tracing)
			status("trace %d %.3f 0", st->index, start);
		exec_program((char **)&st->field[1]);
		rc = fail(st, "execve", arg(st, 1));
	} else {
		errno = EINVAL;
		rc = fail(st, "plan", op);
	}
	/* Which step, when, how long: the TypeScript side knows what each step
	 * means and prints it in words. */
	if (tracing && rc == 0)
		status("trace %d %.3f %.3f", st->index, start, elapsed_ms() - start);
	return rc;
}

static int run_steps(const struct step *steps, int n)
{
	for (int i = 0; i < n; i++)
		if (run_step(&steps[i]) < 0)
			return -1;
	return 0;
}

static void report_failure(void)
{
	status("error %d %s %s %d %s", failed.index, failed.op, failed.call, failed.err, failed.detail);
}

/* ---- the parent's wait: signals forwarded, the pty relayed ----------------------- */

static int signal_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;
	if (write(signal_pipe[1], &c, 1) < 0) {
		/* pipe full: the signal is dropped, like a merged pending signal */
	}
	errno = saved;
}

/* Turn the given signals into bytes on signal_pipe, for a poll loop. */
static int catch_signals(const int *sigs, size_t n)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		sigaction(sigs[i], &sa, NULL);
	return 0;
}

static struct termios saved_termios;
static int termios_saved;

static void restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(0, TCSAFLUSH, &saved_termios);
}

/* Copy what is readable from one fd to another; 0 at EOF or error. What
 * the container's terminal shows is logged too. */
static int relay(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return 0;
	if (from == tty_master)
		monitor_record_tty(buf, (size_t)n);
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		off += w;
	}
	return 1;
}

static int wait_for_child(void)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD };
	if (catch_signals(forwarded, sizeof(forwarded) / sizeof(*forwarded)) < 0)
		return EXIT_SETUP_FAILED;

	if (tty_master >= 0 && isatty(0) && tcgetattr(0, &saved_termios) == 0) {
		struct termios raw = saved_termios;
		cfmakeraw(&raw);
		termios_saved = tcsetattr(0, TCSANOW, &raw) == 0;
		atexit(restore_terminal);
	}
	int stdin_open = tty_master >= 0, master_open = tty_master >= 0;
	for (;;) {
		int st;
		pid_t w = waitpid(child_pid, &st, WNOHANG);
		if (w == child_pid) {
			/* Drain what the container wrote last before reporting. */
			if (master_open)
				fcntl(tty_master, F_SETFL, O_NONBLOCK);
			while (master_open && relay(tty_master, 1))
				;
			monitor_record_tty_end();
			restore_terminal();
			if (WIFEXITED(st)) {
				status("exit %d", WEXITSTATUS(st));
				return WEXITSTATUS(st);
			}
			status("signal %d", WTERMSIG(st));
			return 128 + WTERMSIG(st);
		}
		struct pollfd fds[3] = {
			{ signal_pipe[0], POLLIN, 0 },
			{ stdin_open ? 0 : -1, POLLIN, 0 },
			{ master_open ? tty_master : -1, POLLIN, 0 },
		};
		if (poll(fds, 3, -1) < 0 && errno != EINTR)
			return EXIT_SETUP_FAILED;
		if (fds[0].revents & POLLIN) {
			unsigned char sig;
			while (read(signal_pipe[0], &sig, 1) == 1) {
				if (sig == SIGCHLD)
					continue;
				if (sig == SIGWINCH) {
					struct winsize ws;
					if (tty_master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0)
						ioctl(tty_master, TIOCSWINSZ, &ws);
					continue;
				}
				kill(child_pid, sig);
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP) && !relay(0, tty_master))
			stdin_open = 0;
		if (fds[2].revents & (POLLIN | POLLHUP) && !relay(tty_master, 1))
			master_open = 0;
	}
}

/* -d: minibox has what it needs ("started"); from here on nobody reads our
 * status lines. Become the container's monitor until it exits. */
/* Copy what the exit needs out of the plan, then free it (~200 KiB that an
 * idle monitor would otherwise carry for the container's whole life). */
static void release_plan(void)
{
	if (exit_file)
		exit_file = strdup(exit_file);
	if (exit_hook) {
		int n = 0;
		while (exit_hook[n])
			n++;
		char **copy = calloc((size_t)n + 1, sizeof(*copy));
		for (int i = 0; copy && i < n; i++)
			copy[i] = strdup(exit_hook[i]);
		exit_hook = copy;
	}
	free(plan_steps);
	free(plan_text);
	plan_steps = NULL;
	plan_text = NULL;
}

static int monitor_run(void)
{
	release_plan();
	static const int woken_by[] = { SIGCHLD };
	if (catch_signals(woken_by, 1) < 0)
		return EXIT_SETUP_FAILED;
	close(STATUS_FD);
	close(CONTROL_FD);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	int st = monitor_wait(child_pid, signal_pipe[0], 0);
	/* Leave the private mount namespace: with it go the overlay and the
	 * idmapped layers, and the hook can remove the container's directory. */
	if (host_mntns >= 0 && setns(host_mntns, CLONE_NEWNS) < 0)
		host_mntns = -1;
	monitor_finish(exit_file, st, exit_hook);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A foreground run that is logged: the same monitor loop, echoing the
 * output to minibox's own stdout/stderr and forwarding its signals. */
static int foreground_monitor(void)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD };
	if (catch_signals(forwarded, sizeof(forwarded) / sizeof(*forwarded)) < 0)
		return EXIT_SETUP_FAILED;
	int st = monitor_wait(child_pid, signal_pipe[0], 1);
	if (WIFEXITED(st)) {
		status("exit %d", WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	status("signal %d", WTERMSIG(st));
	return 128 + WTERMSIG(st);
}

/* ---- main ----------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct plan plan;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 1; i < argc; i++) {
		tracing |= !strcmp(argv[i], "--trace");
		detached |= !strcmp(argv[i], "--detach");
	}
	if (detached) {
		/* Outlive minibox: a session of our own (no terminal signals), and
		 * no SIGPIPE when minibox stops reading our status lines. */
		setsid();
		signal(SIGPIPE, SIG_IGN);
	} else {
		/* Die with the minibox that started us (no orphaned containers). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			return EXIT_SETUP_FAILED;
	}

	char *text = plan_text = read_all(PLAN_FD);
	if (!text || parse_plan(text, &plan) < 0 || plan.nsetup == 0) {
		status("error 0 plan read 22 the plan is malformed");
		return EXIT_SETUP_FAILED;
	}
	/* The last setup step is `clone FLAGS`. */
	const struct step *clone_step = &plan.setup[plan.nsetup - 1];
	if (strcmp(clone_step->field[0], "clone") != 0) {
		status("error %d plan read 22 the setup section must end with clone", clone_step->index);
		return EXIT_SETUP_FAILED;
	}
	if (run_steps(plan.setup, plan.nsetup - 1) < 0) {
		report_failure();
		return EXIT_SETUP_FAILED;
	}

	/* release: parent → child "go"; errors: child → parent, closed by execve. */
	int release[2], errors[2];
	if (pipe2(release, O_CLOEXEC) < 0 || pipe2(errors, O_CLOEXEC) < 0) {
		status("error %d clone pipe %d", clone_step->index, errno);
		return EXIT_SETUP_FAILED;
	}
	double clone_start = elapsed_ms();
	child_pid = (pid_t)syscall(SYS_clone, num(arg(clone_step, 1)) | SIGCHLD, 0, 0, 0, 0);
	if (child_pid < 0) {
		fail(clone_step, "clone", arg(clone_step, 1));
		report_failure();
		return EXIT_SETUP_FAILED;
	}
	if (child_pid == 0) {
		char c;
		close(release[1]);
		close(errors[0]);
		/* The init dies with its parent: minibox (foreground) or the monitor (-d). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Dispositions set to "ignore" survive execve: give the container
		 * default signal handling (the monitor ignores SIGPIPE, for one; a
		 * container that inherited that would never see a broken pipe). */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		if (monitor_logging() && monitor_child_stdio() < 0)
			_exit(EXIT_SETUP_FAILED);
		/* Wait until the parent has written our maps and cgroup. */
		if (read(release[0], &c, 1) != 1)
			_exit(EXIT_SETUP_FAILED);
		close(release[0]);
		if (run_steps(plan.child, plan.nchild) < 0) {
			report_failure();
			/* Also tell the parent, so it reports even if the status pipe is gone. */
			if (write(errors[1], &failed.err, sizeof(failed.err)) < 0) {
				/* nothing more we can do */
			}
			_exit(failed.call && !strcmp(failed.call, "execve")
				      ? (failed.err == ENOENT ? 127 : 126)
				      : EXIT_SETUP_FAILED);
		}
		_exit(EXIT_SETUP_FAILED); /* a plan without exec */
	}
	close(release[0]);
	close(errors[1]);
	if (monitor_logging())
		monitor_after_clone();
	if (console_socket[1] >= 0)
		close(console_socket[1]);
	if (tracing)
		status("trace %d %.3f %.3f pid=%d", clone_step->index, clone_start, elapsed_ms() - clone_start,
		       (int)child_pid);
	if (run_steps(plan.parent, plan.nparent) < 0) {
		report_failure();
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
		return EXIT_SETUP_FAILED;
	}
	if (write(release[1], "g", 1) != 1) {
		status("error 0 release write %d", errno);
		return EXIT_SETUP_FAILED;
	}
	close(release[1]);
	if (console_socket[0] >= 0) {
		tty_master = receive_console();
		struct winsize ws;
		if (tty_master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0)
			ioctl(tty_master, TIOCSWINSZ, &ws);
	}
	/* The errors pipe closes without data when execve succeeds. */
	int child_errno = 0;
	ssize_t n;
	while ((n = read(errors[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	close(errors[0]);
	if (n == 0)
		status("started");
	if (detached)
		return monitor_run();
	if (monitor_logging() && tty_master < 0)
		return foreground_monitor();
	return wait_for_child();
}
