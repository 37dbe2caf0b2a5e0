/**
 * The few libc calls Node does not offer, bound with koffi (FFI).
 *
 * Why not a native addon: koffi ships prebuilt binaries on npm, so nothing is
 * compiled at install time, and each call below is one readable line. Calls
 * that must run single-threaded between clone and execve live in native/
 * instead: Node always runs several threads, so unshare(CLONE_NEWUSER)
 * fails with EINVAL here and setns into a mount namespace moves one thread
 * only (see native/README.md).
 */
import type Koffi from "koffi";
import { makedev } from "./devnum.js";
import { koffi as loadKoffi } from "./koffi.js";

type Fn = (...args: unknown[]) => number | bigint | string;

interface Libc {
  koffi: typeof Koffi;
  flock: Fn;
  mknod: Fn;
  lsetxattr: Fn;
  lgetxattr: Fn;
  llistxattr: Fn;
  strerror: Fn;
  setfsuid: Fn;
  setfsgid: Fn;
}

let bound: Libc | undefined;

/**
 * Load koffi and bind the calls on first use, not at start-up: most
 * commands never need them, and every millisecond of `minibox run`'s
 * start-up counts.
 */
function libc(): Libc {
  if (bound) return bound;
  const koffi = loadKoffi();
  const lib = koffi.load("libc.so.6");
  bound = {
    koffi,
    flock: lib.func("int flock(int fd, int operation)"),
    mknod: lib.func("int mknod(const char *path, uint32_t mode, uint64_t dev)"),
    lsetxattr: lib.func(
      "int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)",
    ),
    lgetxattr: lib.func(
      "intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)",
    ),
    llistxattr: lib.func("intptr_t llistxattr(const char *path, _Out_ void *list, size_t size)"),
    strerror: lib.func("const char *strerror(int errnum)"),
    setfsuid: lib.func("int setfsuid(uint32_t fsuid)"),
    setfsgid: lib.func("int setfsgid(uint32_t fsgid)"),
  };
  return bound;
}

/**
 * Load koffi now rather than at the first call: for a caller that is about
 * to wait on the network anyway (pull, before its first lock), so that its
 * ~20 ms of loading (CPU profile of a pull: finding and dlopen'ing
 * koffi.node) fills time the main thread would spend idle.
 */
export function preloadLibc(): void {
  libc();
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export const EWOULDBLOCK = 11;
export const ENODATA = 61;

/** A failed libc call: carries errno and the name of the call, like Node's own errors. */
export class SysError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly path?: string,
  ) {
    super(`${syscall}${path ? ` ${path}` : ""}: ${libc().strerror(errno)}`);
    this.name = "SysError";
  }
}

function check(ret: number | bigint, syscall: string, path?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(syscall, libc().koffi.errno(), path);
  return n;
}

/** flock(2). With LOCK_NB returns false instead of blocking when the lock is held. */
export function flock(fd: number, operation: number): boolean {
  const ret = libc().flock(fd, operation) as number;
  if (ret < 0) {
    const errno = libc().koffi.errno();
    if (errno === EWOULDBLOCK && operation & LOCK_NB) return false;
    throw new SysError("flock", errno);
  }
  return true;
}

/** mknod(2): `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, major: number, minor: number): void {
  check(libc().mknod(path, mode, makedev(major, minor)) as number, "mknod", path);
}

/** lsetxattr(2): set an extended attribute on a path without following a symlink. */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  check(libc().lsetxattr(path, name, value, value.length, 0) as number, "lsetxattr", path);
}

/** lgetxattr(2): undefined when the attribute is not set. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const buf = Buffer.alloc(65536);
  const n = Number(libc().lgetxattr(path, name, buf, buf.length));
  if (n < 0) {
    const errno = libc().koffi.errno();
    if (errno === ENODATA) return undefined;
    throw new SysError("lgetxattr", errno, path);
  }
  return buf.subarray(0, n);
}

/** llistxattr(2): the names of a path's extended attributes. */
export function llistxattr(path: string): string[] {
  const buf = Buffer.alloc(65536);
  const n = check(libc().llistxattr(path, buf, buf.length) as number, "llistxattr", path);
  return buf
    .subarray(0, n)
    .toString("utf8")
    .split("\0")
    .filter((s) => s.length > 0);
}

/**
 * Run `fn` (synchronous file calls only) with the calling thread's
 * filesystem ids set to uid/gid, then back to the previous ones.
 * setfsuid(2) is per thread and Node's synchronous fs calls run on the
 * main thread, so nothing else minibox does meanwhile is affected. Used to
 * create files through an idmapped mount, which refuses a creator whose
 * ids its map does not hold (EOVERFLOW): host root, for one.
 */
export function withFsIds<T>(uid: number, gid: number, fn: () => T): T {
  const c = libc();
  const oldGid = c.setfsgid(gid) as number;
  const oldUid = c.setfsuid(uid) as number;
  try {
    return fn();
  } finally {
    c.setfsuid(oldUid);
    c.setfsgid(oldGid);
  }
}
