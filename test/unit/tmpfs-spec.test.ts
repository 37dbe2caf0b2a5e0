import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { tmpfsSize } from "../../src/runtime/tmpfs-size.js";
import { parseShmSize, parseTmpfsFlag, tmpfsMountOptions } from "../../src/runtime/tmpfs-spec.js";

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MiniboxError);
    return (e as MiniboxError).message;
  }
  throw new Error("expected a MiniboxError");
}

describe("tmpfs options (Docker's defaults merged, the last of a pair wins)", () => {
  it("defaults to noexec,nosuid,nodev with no size (the kernel's)", () => {
    expect(tmpfsMountOptions("", "--tmpfs")).toEqual(["noexec", "nosuid", "nodev"]);
  });
  it("exec/suid/dev/rw undo their opposite and are not passed on", () => {
    expect(tmpfsMountOptions("exec,rw,size=64m,mode=1777", "--tmpfs")).toEqual([
      "nosuid",
      "nodev",
      "size=64m",
      "mode=1777",
    ]);
    expect(tmpfsMountOptions("ro,size=1m,size=2m", "--tmpfs")).toEqual([
      "noexec",
      "nosuid",
      "nodev",
      "ro",
      "size=2m",
    ]);
  });
  it("refuses unknown options and bad values", () => {
    expect(errorOf(() => tmpfsMountOptions("size=big", "--tmpfs"))).toMatch(/invalid size 'big'/);
    expect(errorOf(() => tmpfsMountOptions("mode=999", "--tmpfs"))).toMatch(/invalid mode/);
    expect(errorOf(() => tmpfsMountOptions("loud", "--tmpfs"))).toMatch(/unknown option 'loud'/);
  });
});

describe("--tmpfs and --shm-size", () => {
  it("splits the path from the options at the first colon", () => {
    expect(parseTmpfsFlag("/run/x/:size=1m")).toMatchObject({ target: "/run/x", given: "size=1m" });
    expect(parseTmpfsFlag("/t")).toMatchObject({ target: "/t", given: "" });
  });
  it("refuses relative paths and /", () => {
    expect(errorOf(() => parseTmpfsFlag("t"))).toMatch(/mount path must be absolute/);
    expect(errorOf(() => parseTmpfsFlag("/"))).toMatch(/destination can't be '\/'/);
  });
  it("--shm-size takes Docker's units; tmpfs sizes use the largest unit that divides", () => {
    expect(parseShmSize("8m")).toBe(8 * 1024 * 1024);
    expect(errorOf(() => parseShmSize("0"))).toMatch(/must be more than 0/);
    expect(tmpfsSize(8 * 1024 * 1024)).toBe("8m");
    expect(tmpfsSize(1536)).toBe("1536");
    expect(tmpfsSize(3 * 1024)).toBe("3k");
  });
});
