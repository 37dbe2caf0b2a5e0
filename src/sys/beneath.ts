/**
 * Reaching a path inside a directory tree that someone else may be changing
 * (a running container's upper directory, `/proc/PID/root`) without ever
 * leaving it (CVE-2018-15664, CVE-2019-14271): a path string handed to the
 * kernel is resolved afresh on every call, so a directory swapped for a
 * symlink between two calls would take the host's own files instead.
 *
 * Every directory on the way is opened relative to its parent's descriptor
 * with O_NOFOLLOW | O_DIRECTORY, so a symlink anywhere on the path fails
 * (ELOOP/ENOTDIR) rather than being followed. Node has no openat(), so the
 * parent descriptor is named through `/proc/self/fd/N/NAME`: the kernel
 * jumps to the directory the descriptor holds (whatever its path is now)
 * and resolves only NAME from there.
 */
import fs from "node:fs";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** NAME inside the directory open as `dirFd`, for a call that does not follow NAME itself. */
export function atFd(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`;
}

/** Open the directory NAME inside `dirFd`; a symlink there fails instead of being followed. */
export function openDirAt(dirFd: number, name: string): number {
  return fs.openSync(atFd(dirFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

/**
 * Open the directory `rel` ("a/b", "" for `root` itself) under `root`, one
 * component at a time, never following a symlink. `root` itself is trusted
 * (the caller's own directory, or a magic link such as /proc/PID/root).
 * The caller closes the descriptor. Throws ELOOP/ENOTDIR/ENOENT as open(2).
 */
export function openDirBeneath(root: string, rel: string): number {
  let fd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
  for (const part of rel.split("/").filter(Boolean)) {
    if (part === "..") {
      fs.closeSync(fd);
      throw Object.assign(new Error(`${rel}: ".." on the way`), { code: "EXDEV" });
    }
    try {
      const next = openDirAt(fd, part);
      fs.closeSync(fd);
      fd = next;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }
  return fd;
}

/**
 * Open the regular file NAME inside `dirFd` for reading: never through a
 * symlink, never blocking on a FIFO swapped in, and only if it is still the
 * inode `expected` describes (what was listed is what is read).
 * undefined when something else is there now.
 */
export function openFileAt(
  dirFd: number,
  name: string,
  expected?: { dev: number; ino: number },
): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(atFd(dirFd, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return undefined;
  }
  const st = fs.fstatSync(fd);
  const same = !expected || (st.dev === expected.dev && st.ino === expected.ino);
  if (st.isFile() && same) return fd;
  fs.closeSync(fd);
  return undefined;
}

/** Whether an error is the kernel's answer to a path that changed under us (gone, or a link now). */
export function isPathChanged(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === "ENOENT" || code === "ELOOP" || code === "ENOTDIR" || code === "EXDEV";
}
