/**
 * Linux device numbers (dev_t), encoded and decoded the way glibc's
 * makedev()/major()/minor() do: a 64-bit value whose low 20 bits of the
 * minor and 12 bits of the major sit where the old 16-bit dev_t had them,
 * with the rest of each number above bit 32.
 *
 * One codec for every place that turns a stat's `rdev` into tar header
 * fields or back into mknod(2) arguments: decoding with fewer bits silently
 * turns /dev/nvme0n1p300 or /dev/loop256 into another device.
 */

/** A dev_t as Node's lstat gives it: a number, or a bigint with `{ bigint: true }`. */
export type DevT = number | bigint;

/** glibc's makedev(): the 64-bit dev_t of major/minor. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (
    ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n)
  );
}

/**
 * glibc's major(). BigInt arithmetic: JavaScript's `>>` on a number keeps
 * only 32 bits. The masks are glibc's 32-bit `~0xfff` and `~0xff`: a BigInt
 * `~` has no width, and would let the major's high bits into the minor.
 */
export function major(dev: DevT): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
}

/** glibc's minor(). */
export function minor(dev: DevT): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
}

/** Both halves at once, named as tar headers name them. */
export function splitDev(dev: DevT): { devmajor: number; devminor: number } {
  return { devmajor: major(dev), devminor: minor(dev) };
}
