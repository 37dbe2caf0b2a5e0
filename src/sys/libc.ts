/**
 * The few libc calls Node does not offer, bound with koffi (FFI).
 *
 * Why not a native addon: koffi ships prebuilt binaries on npm, so nothing is
 * compiled at install time, and each call below is one readable line. Calls
 * that must run single-threaded between clone and execve live in native/
 * instead (see DESIGN.md "Platform facts").
 */
import koffi from "koffi";

const libc = koffi.load("libc.so.6");

const flockFn = libc.func("int flock(int fd, int operation)");
const mknodFn = libc.func("int mknod(const char *path, uint32_t mode, uint64_t dev)");
const lsetxattrFn = libc.func(
  "int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)",
);
const lgetxattrFn = libc.func(
  "intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)",
);
const llistxattrFn = libc.func(
  "intptr_t llistxattr(const char *path, _Out_ void *list, size_t size)",
);
const strerrorFn = libc.func("const char *strerror(int errnum)");

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
    super(`${syscall}${path ? ` ${path}` : ""}: ${strerrorFn(errno)}`);
    this.name = "SysError";
  }
}

function check(ret: number | bigint, syscall: string, path?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(syscall, koffi.errno(), path);
  return n;
}

/** flock(2). With LOCK_NB returns false instead of blocking when the lock is held. */
export function flock(fd: number, operation: number): boolean {
  const ret = flockFn(fd, operation);
  if (ret < 0) {
    const errno = koffi.errno();
    if (errno === EWOULDBLOCK && operation & LOCK_NB) return false;
    throw new SysError("flock", errno);
  }
  return true;
}

/** mknod(2): `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, major: number, minor: number): void {
  check(mknodFn(path, mode, makedev(major, minor)), "mknod", path);
}

/** glibc's makedev(): the 64-bit dev_t encoding of major/minor. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** lsetxattr(2): set an extended attribute on a path without following a symlink. */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  check(lsetxattrFn(path, name, value, value.length, 0), "lsetxattr", path);
}

/** lgetxattr(2): undefined when the attribute is not set. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const buf = Buffer.alloc(65536);
  const n = Number(lgetxattrFn(path, name, buf, buf.length));
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === ENODATA) return undefined;
    throw new SysError("lgetxattr", errno, path);
  }
  return buf.subarray(0, n);
}

/** llistxattr(2): the names of a path's extended attributes. */
export function llistxattr(path: string): string[] {
  const buf = Buffer.alloc(65536);
  const n = check(llistxattrFn(path, buf, buf.length), "llistxattr", path);
  return buf
    .subarray(0, n)
    .toString("utf8")
    .split("\0")
    .filter((s) => s.length > 0);
}
