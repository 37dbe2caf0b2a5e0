/*
 * Paths under the container's root filesystem belong to the image, and to
 * whatever runs in the container (or in another container that shares a
 * volume with it): any component of them may be a symlink, put there when
 * the image was built or swapped in while we work. Resolved the ordinary
 * way, "/data" -> "/" sends a bind mount onto the host's root, "a/b" with
 * a -> /etc makes a directory in the host's /etc, and a /dev/null that is
 * a symlink to a host file gets that file bound over a masked path
 * (CVE-2021-30465, CVE-2025-31133 and their kin).
 *
 * So a `root DIR` step declares a directory whose contents are untrusted
 * (the rootfs; a volume minibox makes mount points in), and every path a
 * step touches below it is opened here with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) relative to that directory: "/", ".." and
 * absolute symlinks stop at DIR as if it were chrooted, and /proc's magic
 * links (/proc/self/fd/N, /proc/self/root) are refused. The step then acts
 * on the descriptor it got: mkdirat and friends on the parent directory,
 * mount(2) on "/proc/self/fd/N" (what runc does since CVE-2021-30465), so
 * nothing can be swapped between the lookup and its use. Paths outside
 * every root (minibox's own directories, /proc/PID files, cgroup files, a
 * -v host path chosen by the user) are opened as they are.
 *
 * The root itself is opened by its path at each call, not once: the child
 * runs in a copy of the mount namespace, where a descriptor from before
 * the clone would name a mount it cannot mount on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor.h"

/* The kernel asks for a retry when a rename or mount raced a ".." it resolved. */
#define RACE_RETRIES 32

/* close() that keeps the errno a failing call before it set. */
static void close_quietly(int fd)
{
	int saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
}

/* The longest declared root that `path` lies in (its length in *len, a
 * trailing "/" not counted: "/" is length 0); NULL if none. */
static const char *root_of(const struct executor *ex, const char *path, size_t *len)
{
	const char *best = NULL;
	for (size_t i = 0; i < ex->roots.n; i++) {
		const char *r = ex->roots.v[i];
		size_t n = strlen(r);
		while (n > 0 && r[n - 1] == '/')
			n--;
		if (strncmp(path, r, n) == 0 && (path[n] == '/' || path[n] == '\0') && (!best || n > *len)) {
			best = r;
			*len = n;
		}
	}
	return best;
}

static int openat2_in(int dirfd, const char *rest, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = flags & O_CREAT ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd, tries = RACE_RETRIES;
	do
		fd = (int)syscall(SYS_openat2, dirfd, rest, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && --tries > 0);
	return fd;
}

const char *from_base(const struct executor *ex, const char *path)
{
	size_t n = ex->base ? strlen(ex->base) : 0;
	if (!n || strncmp(path, ex->base, n) != 0)
		return path;
	if (path[n] == '\0')
		return ".";
	return path[n] == '/' ? path + n + 1 : path;
}

/* "base DIR" (the container's directory, last before the clone): chdir into
 * it; from here on paths under DIR are opened from the working directory.
 * The init inherits it across the clone (in its copy of the mount
 * namespace), so in a user namespace it reaches its rootfs and staged
 * mounts without search permission on DIR's parents: a --root of
 * minibox-runc may be under a directory only the host's root can enter. */
int step_base(struct executor *ex, const struct step *st)
{
	if (chdir(arg(st, 1)) < 0)
		return fail(ex, st, "chdir", arg(st, 1));
	ex->base = st->field[1];
	return 0;
}

int open_in_root(const struct executor *ex, const char *path, int flags, mode_t mode)
{
	size_t len = 0;
	const char *root = root_of(ex, path, &len);
	if (!root)
		return open(from_base(ex, path), flags | O_CLOEXEC, mode);
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%.*s", (int)len, root) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int rootfd = open(len ? from_base(ex, dir) : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -1;
	const char *rest = path + len;
	while (*rest == '/')
		rest++;
	int fd = openat2_in(rootfd, *rest ? rest : ".", flags, mode);
	close_quietly(rootfd);
	return fd;
}

int open_parent_in_root(const struct executor *ex, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];
	*name = slash ? slash + 1 : path;
	if (!slash || !**name || !strcmp(*name, ".") || !strcmp(*name, "..")) {
		errno = EINVAL; /* the plan names absolute paths with a last component */
		return -1;
	}
	if (snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path) >= (int)sizeof(parent)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open_in_root(ex, *parent ? parent : "/", O_PATH | O_DIRECTORY, 0);
}

const char *fd_path(int fd, struct fd_path *buf)
{
	snprintf(buf->path, sizeof(buf->path), "/proc/self/fd/%d", fd);
	return buf->path;
}

/* "root DIR": from here on, paths below DIR are resolved inside it. The
 * first one also checks that the kernel has openat2 (Linux 5.6): without
 * it, no path under the rootfs could be resolved safely, and we stop. */
int step_root(struct executor *ex, const struct step *st)
{
	int dirfd = open(arg(st, 1), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return fail(ex, st, "open", arg(st, 1));
	int fd = openat2_in(dirfd, ".", O_PATH, 0);
	close_quietly(dirfd);
	if (fd < 0)
		return fail(ex, st, "openat2",
			    errno == ENOSYS ? "this kernel has no openat2 (Linux 5.6 or later is needed)" : arg(st, 1));
	close(fd);
	struct strv *roots = &ex->roots;
	if (roots->n + 2 > roots->cap) {
		size_t cap = roots->cap ? roots->cap * 2 : 4;
		char **bigger = realloc(roots->v, cap * sizeof(*bigger));
		if (!bigger)
			return fail(ex, st, "malloc", "root");
		roots->v = bigger;
		roots->cap = cap;
	}
	roots->v[roots->n++] = st->field[1];
	roots->v[roots->n] = NULL;
	return 0;
}
