// The dev_t codec against glibc's layout: numbers past the old 8-bit minor
// and 12-bit major fields must survive, as numbers and as bigints.
import { describe, expect, test } from "vitest";
import { major, makedev, minor, splitDev } from "../../src/sys/devnum.js";

describe("dev_t codec", () => {
  test("small numbers sit where the 16-bit dev_t had them", () => {
    expect(makedev(1, 3)).toBe(0x0103n);
    expect(makedev(8, 1)).toBe(0x0801n);
    expect(major(0x0103)).toBe(1);
    expect(minor(0x0103)).toBe(3);
  });

  test("glibc's bit layout for large numbers", () => {
    // The expected values are what glibc's makedev() prints for the same numbers.
    expect(makedev(0xabcde, 0x123456).toString(16)).toBe("ab001234cde56");
    expect(makedev(300, 70000).toString(16)).toBe("11112c70");
  });

  test.each([
    [300, 70000],
    [4096, 1048575],
    [4095, 255],
    [256, 256],
    [0, 0],
    [259, 65536],
    [0xfffff, 0xffffff],
  ])("major %i minor %i round-trips as bigint and as number", (ma, mi) => {
    const dev = makedev(ma, mi);
    expect([major(dev), minor(dev)]).toEqual([ma, mi]);
    expect([major(Number(dev)), minor(Number(dev))]).toEqual([ma, mi]);
    expect(splitDev(dev)).toEqual({ devmajor: ma, devminor: mi });
  });

  test("a major above 4095 does not leak into the minor, nor a minor above 255 into the major", () => {
    expect(minor(makedev(4096, 0))).toBe(0);
    expect(major(makedev(0, 1048575))).toBe(0);
    expect(major(makedev(300, 70000))).toBe(300);
    expect(minor(makedev(300, 70000))).toBe(70000);
  });
});
