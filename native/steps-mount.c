/*
 * Steps that build the container's filesystem: the private mount namespace,
 * the idmapped layers, the overlay and /dev, then (in the child) masked and
 * read-only paths and pivot_root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

int step_mount(struct executor *ex, const struct step *st)
{
	if (mount(opt(arg(st, 1)), arg(st, 2), opt(arg(st, 3)), num(arg(st, 4)), opt(arg(st, 5))) < 0)
		return fail(ex, st, "mount", arg(st, 2));
	return 0;
}

/* An owner (fields 3 and 4) is given to the directory only if we created it. */
int step_mkdir(struct executor *ex, const struct step *st)
{
	if (mkdir(arg(st, 1), (mode_t)num(arg(st, 2))) < 0)
		return errno == EEXIST ? 0 : fail(ex, st, "mkdir", arg(st, 1));
	if (st->nfields == 5 && lchown(arg(st, 1), (uid_t)num(arg(st, 3)), (gid_t)num(arg(st, 4))) < 0)
		return fail(ex, st, "chown", arg(st, 1));
	return 0;
}

/* O_EXCL: an existing file is left alone (no overlay copy-up); a new one gets
 * the optional owner. */
int step_touch(struct executor *ex, const struct step *st)
{
	int fd = open(arg(st, 1), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, (mode_t)num(arg(st, 2)));
	if (fd < 0)
		return errno == EEXIST ? 0 : fail(ex, st, "open", arg(st, 1));
	int rc = 0;
	if (st->nfields == 5 && fchown(fd, (uid_t)num(arg(st, 3)), (gid_t)num(arg(st, 4))) < 0)
		rc = fail(ex, st, "chown", arg(st, 1));
	close(fd);
	return rc;
}

/* chmod after mknod: the mode must not depend on our umask. */
int step_mknod(struct executor *ex, const struct step *st)
{
	mode_t mode = (mode_t)num(arg(st, 2));
	if (mknod(arg(st, 1), mode, makedev(num(arg(st, 3)), num(arg(st, 4)))) < 0)
		return fail(ex, st, "mknod", arg(st, 1));
	if (chmod(arg(st, 1), mode & 07777) < 0)
		return fail(ex, st, "chmod", arg(st, 1));
	return 0;
}

int step_chown(struct executor *ex, const struct step *st)
{
	if (lchown(arg(st, 1), (uid_t)num(arg(st, 2)), (gid_t)num(arg(st, 3))) < 0)
		return fail(ex, st, "chown", arg(st, 1));
	return 0;
}

int step_symlink(struct executor *ex, const struct step *st)
{
	if (symlink(arg(st, 1), arg(st, 2)) < 0 && errno != EEXIST)
		return fail(ex, st, "symlink", arg(st, 2));
	return 0;
}

/* Make the mount at `path` read-only. In a user namespace a remount must keep
 * the flags the mount already has (nosuid, nodev, noexec are locked), so
 * read them first. */
int step_remount_ro(struct executor *ex, const struct step *st)
{
	const char *path = arg(st, 1);
	struct statvfs sv;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0; /* nothing there to protect (e.g. no /proc/sysrq-trigger) */
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(ex, st, "mount", path);
	if (statvfs(path, &sv) < 0)
		return fail(ex, st, "statvfs", path);
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return fail(ex, st, "mount", path);
	return 0;
}

/* Hide a path: /dev/null (field 2) over a file, an empty read-only tmpfs over
 * a directory. A path that does not exist needs no hiding. */
int step_mask(struct executor *ex, const struct step *st)
{
	const char *path = arg(st, 1);
	struct stat sb;
	if (stat(path, &sb) < 0)
		return errno == ENOENT ? 0 : fail(ex, st, "stat", path);
	if (S_ISDIR(sb.st_mode)) {
		if (mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0k") < 0)
			return fail(ex, st, "mount", path);
	} else if (mount(arg(st, 2), path, NULL, MS_BIND, NULL) < 0) {
		return fail(ex, st, "mount", path);
	}
	return 0;
}

/* pivot_root(".", ".") puts the old root on top of the new one; detaching it
 * then leaves only the container's tree (the trick runc uses too). Mounts
 * inherited from a more privileged mount namespace are "locked", and
 * pivot_root refuses a locked new root: a recursive bind of the root onto
 * itself, made here, is ours and unlocked. */
int step_pivot_root(struct executor *ex, const struct step *st)
{
	const char *root = arg(st, 1);
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(ex, st, "mount", root);
	if (chdir(root) < 0)
		return fail(ex, st, "chdir", root);
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

/* Attach a copy of `src`, shifted through the idmap namespace, at `dst`. */
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
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		rc = fail(ex, st, "mount_setattr", src);
	else if (move_mount(tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		rc = fail(ex, st, "move_mount", dst);
	close(tree);
	return rc;
}
