/*
 * Steps that build the container's filesystem: the private mount namespace,
 * the idmapped layers, the overlay and /dev, then (in the child) masked and
 * read-only paths and pivot_root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"

int step_mountns(struct executor *ex, const struct step *st)
{
	/* Keep a way back: the monitor's exit hook must run in the host's mount
	 * namespace, where the container's mounts do not exist. */
	ex->host_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (unshare(CLONE_NEWNS) < 0)
		return fail(ex, st, "unshare(CLONE_NEWNS)", NULL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(ex, st, "mount", "make / rprivate");
	return 0;
}

/*
 * Back to the host's mount namespace, once the child has exec'd (or
 * failed): nothing we do after that needs our private mounts (the log,
 * exit file, hook and health plan are paths in the container's directory,
 * which is the same in both namespaces; the container's own mounts live in
 * its copy of the namespace, made by the clone). We hold the last reference
 * to the private namespace, so setns tears it down here, and that teardown
 * waits for an RCU grace period (namespace_unlock, an expedited one on this
 * kernel: ~0.5 ms): paid now, while the container runs, instead of in our
 * exit after it has ended. Measured on the 2-vCPU VM (40 alternating runs):
 * our exit, median 2–3 ms after the `exit N` line, is now ~3 ms before it,
 * and nothing is mounted on the container's directory any more once that
 * line is written (--rm's removal starts on it, src/runtime/launch.ts).
 * The working directory (the container's directory after setup's chdir) is
 * kept by path: setns resets it to the new namespace's root.
 */
void leave_private_mntns(struct executor *ex)
{
	if (ex->host_mntns < 0)
		return;
	char cwd[PATH_MAX];
	bool have_cwd = getcwd(cwd, sizeof(cwd)) != NULL;
	if (setns(ex->host_mntns, CLONE_NEWNS) == 0 && have_cwd && chdir(cwd) < 0) {
		/* gone meanwhile: the paths we still use are absolute */
	}
	close(ex->host_mntns);
	ex->host_mntns = -1;
}

/* A bind's (or a move's) source may be under a root too (it is then opened there); the
 * target always is, when it is in the container's tree: the mount goes on
 * the descriptor (in-root.c). */
int step_mount(struct executor *ex, const struct step *st)
{
	const char *source = opt(arg(st, 1)), *target = arg(st, 2);
	unsigned long flags = num(arg(st, 4));
	struct fd_path src_buf, dst_buf;
	int src = -1, dst = -1, rc = 0;
	if (source && (flags & (MS_BIND | MS_MOVE)) && !(flags & MS_REMOUNT)) {
		if ((src = open_in_root(ex, source, O_PATH, 0)) < 0)
			return fail(ex, st, "openat2", source);
		source = fd_path(src, &src_buf);
	}
	if ((dst = open_in_root(ex, target, O_PATH, 0)) < 0)
		rc = fail(ex, st, "openat2", target);
	else if (mount(source, fd_path(dst, &dst_buf), opt(arg(st, 3)), flags, opt(arg(st, 5))) < 0)
		rc = fail(ex, st, "mount", target);
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	return rc;
}

/* An owner (fields 3 and 4) is given to the directory only if we created it. */
int step_mkdir(struct executor *ex, const struct step *st)
{
	const char *name;
	int dir = open_parent_in_root(ex, arg(st, 1), &name), rc = 0;
	if (dir < 0)
		return fail(ex, st, "openat2", arg(st, 1));
	if (mkdirat(dir, name, (mode_t)num(arg(st, 2))) < 0)
		rc = errno == EEXIST ? 0 : fail(ex, st, "mkdir", arg(st, 1));
	else if (st->nfields == 5 &&
		 fchownat(dir, name, (uid_t)num(arg(st, 3)), (gid_t)num(arg(st, 4)), AT_SYMLINK_NOFOLLOW) < 0)
		rc = fail(ex, st, "chown", arg(st, 1));
	close(dir);
	return rc;
}

/* O_EXCL: an existing file (or a symlink: not followed) is left alone, with
 * no overlay copy-up; a new one gets the optional owner. A dangling symlink
 * (an image's /etc/resolv.conf -> ../run/...) gets its target made where
 * it points inside the root, as runc does; if that cannot be, the mount on
 * it says so. */
int step_touch(struct executor *ex, const struct step *st)
{
	const char *name;
	int dir = open_parent_in_root(ex, arg(st, 1), &name);
	if (dir < 0)
		return fail(ex, st, "openat2", arg(st, 1));
	int fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, (mode_t)num(arg(st, 2)));
	int rc = 0;
	if (fd < 0 && errno == EEXIST) {
		int target = open_in_root(ex, arg(st, 1), O_CREAT | O_RDONLY | O_NONBLOCK | O_NOCTTY,
					  (mode_t)num(arg(st, 2))); /* a FIFO must not block us */
		if (target >= 0)
			close(target);
	} else if (fd < 0) {
		rc = fail(ex, st, "open", arg(st, 1));
	} else if (st->nfields == 5 && fchown(fd, (uid_t)num(arg(st, 3)), (gid_t)num(arg(st, 4))) < 0)
		rc = fail(ex, st, "chown", arg(st, 1));
	if (fd >= 0)
		close(fd);
	close(dir);
	return rc;
}

/* chmod after mknod: the mode must not depend on our umask. */
int step_mknod(struct executor *ex, const struct step *st)
{
	mode_t mode = (mode_t)num(arg(st, 2));
	const char *name;
	int dir = open_parent_in_root(ex, arg(st, 1), &name), rc = 0;
	if (dir < 0)
		return fail(ex, st, "openat2", arg(st, 1));
	if (mknodat(dir, name, mode, makedev(num(arg(st, 3)), num(arg(st, 4)))) < 0)
		rc = fail(ex, st, "mknod", arg(st, 1));
	else if (fchmodat(dir, name, mode & 07777, AT_SYMLINK_NOFOLLOW) < 0)
		rc = fail(ex, st, "chmod", arg(st, 1));
	close(dir);
	return rc;
}

/* The path itself, a symlink included (lchown's meaning), found in its root. */
int step_chown(struct executor *ex, const struct step *st)
{
	int fd = open_in_root(ex, arg(st, 1), O_PATH | O_NOFOLLOW, 0), rc = 0;
	if (fd < 0)
		return fail(ex, st, "openat2", arg(st, 1));
	if (fchownat(fd, "", (uid_t)num(arg(st, 2)), (gid_t)num(arg(st, 3)), AT_EMPTY_PATH) < 0)
		rc = fail(ex, st, "chown", arg(st, 1));
	close(fd);
	return rc;
}

int step_symlink(struct executor *ex, const struct step *st)
{
	const char *name;
	int dir = open_parent_in_root(ex, arg(st, 2), &name), rc = 0;
	if (dir < 0)
		return fail(ex, st, "openat2", arg(st, 2));
	if (symlinkat(arg(st, 1), dir, name) < 0 && errno != EEXIST)
		rc = fail(ex, st, "symlink", arg(st, 2));
	close(dir);
	return rc;
}

/* Make the mount at `path` read-only. In a user namespace a remount must keep
 * the flags the mount already has (nosuid, nodev, noexec are locked), so
 * read them first. The path is looked up again after the bind, so that the
 * remount reaches the new mount, not the one under it. */
int step_remount_ro(struct executor *ex, const struct step *st)
{
	const char *path = arg(st, 1);
	struct fd_path at;
	struct statvfs sv;
	int fd = open_in_root(ex, path, O_PATH, 0), rc = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(ex, st, "openat2", path); /* e.g. no /proc/sysrq-trigger */
	if (mount(fd_path(fd, &at), fd_path(fd, &at), NULL, MS_BIND | MS_REC, NULL) < 0)
		rc = fail(ex, st, "mount", path);
	close(fd);
	if (rc < 0)
		return rc;
	if ((fd = open_in_root(ex, path, O_PATH, 0)) < 0)
		return fail(ex, st, "openat2", path);
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	if (fstatvfs(fd, &sv) < 0) {
		rc = fail(ex, st, "statvfs", path);
	} else {
		flags |= (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
			 (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
		if (mount(NULL, fd_path(fd, &at), NULL, flags, NULL) < 0)
			rc = fail(ex, st, "mount", path);
	}
	close(fd);
	return rc;
}

/* What a masked file gets bound over it: field 2 (the executor's own
 * /dev/null), opened and checked to be the null device (c 1:3) on the
 * descriptor itself, so that no symlink or regular file put in its place
 * decides what the container's masked path shows. */
static int open_null(const struct executor *ex, const char *path)
{
	struct stat sb;
	int fd = open_in_root(ex, path, O_PATH, 0);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || !S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(1, 3)) {
		close(fd);
		errno = ENODEV;
		return -1;
	}
	return fd;
}

/* Hide a path: /dev/null (field 2) over a file, an empty read-only tmpfs over
 * a directory. A path that does not exist needs no hiding. */
int step_mask(struct executor *ex, const struct step *st)
{
	const char *path = arg(st, 1);
	struct fd_path at, null_at;
	struct stat sb;
	int fd = open_in_root(ex, path, O_PATH, 0), null = -1, rc = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(ex, st, "openat2", path);
	if (fstat(fd, &sb) < 0) {
		rc = fail(ex, st, "stat", path);
	} else if (S_ISDIR(sb.st_mode)) {
		if (mount("tmpfs", fd_path(fd, &at), "tmpfs", MS_RDONLY, "size=0k") < 0)
			rc = fail(ex, st, "mount", path);
	} else if ((null = open_null(ex, arg(st, 2))) < 0) {
		rc = fail(ex, st, "open", errno == ENODEV ? "the mask is not the null device (c 1:3)" : arg(st, 2));
	} else if (mount(fd_path(null, &null_at), fd_path(fd, &at), NULL, MS_BIND, NULL) < 0) {
		rc = fail(ex, st, "mount", path);
	}
	if (null >= 0)
		close(null);
	close(fd);
	return rc;
}

/* pivot_root(".", ".") puts the old root on top of the new one; detaching it
 * then leaves only the container's tree (the trick runc uses too). Mounts
 * inherited from a more privileged mount namespace are "locked", and
 * pivot_root refuses a locked new root: a recursive bind of the root onto
 * itself, made here, is ours and unlocked. */
int step_pivot_root(struct executor *ex, const struct step *st)
{
	const char *root = from_base(ex, arg(st, 1));
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(ex, st, "mount", arg(st, 1));
	if (chdir(root) < 0)
		return fail(ex, st, "chdir", arg(st, 1));
	ex->base = NULL; /* the working directory is now the new root */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(ex, st, "pivot_root", root);
	if (umount2(".", MNT_DETACH) < 0)
		return fail(ex, st, "umount2", "old root");
	if (chdir("/") < 0)
		return fail(ex, st, "chdir", "/");
	return 0;
}

/* Write the maps of the waiting child `pid` and open its user namespace. */
static int hold_userns(pid_t pid, const char *uid_map, const char *gid_map)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if (write_string(path, uid_map) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	if (write_string(path, gid_map) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* An idmapped mount needs a user namespace that holds the mapping. We make
 * one with a short-lived child that only waits, write its maps, keep a file
 * descriptor to its namespace, and let it go. The child is always reaped
 * and both pipe ends closed, whether this worked or not. */
int step_idmap_userns(struct executor *ex, const struct step *st)
{
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0)
		return fail(ex, st, "idmap user namespace", NULL);
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		char c;
		close(sync[1]);
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	int saved = errno;
	close(sync[0]);
	int fd = pid < 0 ? -1 : hold_userns(pid, arg(st, 1), arg(st, 2));
	if (pid > 0)
		saved = errno;
	close(sync[1]); /* lets the child go */
	if (pid > 0)
		waitpid(pid, NULL, 0);
	errno = saved;
	if (fd < 0)
		return fail(ex, st, "idmap user namespace", NULL);
	if (ex->idmap_userns >= 0)
		close(ex->idmap_userns);
	ex->idmap_userns = fd;
	return 0;
}

/* Attach a copy of `src`, shifted through the idmap namespace, at `dst`
 * (found inside its root when it is in the container's tree). */
int step_idmap_mount(struct executor *ex, const struct step *st)
{
	const char *src = arg(st, 1), *dst = arg(st, 2);
	int tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return fail(ex, st, "open_tree", src);
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP,
		.userns_fd = (uint64_t)ex->idmap_userns,
	};
	int rc = 0;
	int target = -1;
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		rc = fail(ex, st, "mount_setattr", src);
	else if ((target = open_in_root(ex, dst, O_PATH, 0)) < 0)
		rc = fail(ex, st, "openat2", dst);
	else if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		rc = fail(ex, st, "move_mount", dst);
	if (target >= 0)
		close(target);
	close(tree);
	return rc;
}
