// Layer unpacking as root: files, owners, times, device nodes, fifos and
// whiteouts land on the real filesystem (chown, mknod and trusted.* xattrs
// need root). Tar archives are built in memory (test/support/layer-tar.ts);
// the unprivileged cases are in test/unit/layer.test.ts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { unpackLayer } from "../../src/image/layer.js";
import { lgetxattr } from "../../src/sys/libc.js";
import { makeTar, T1, T2, type TestEntry } from "../support/layer-tar.js";

let tmp: string;
let dest: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minibox-layer-test-"));
  dest = path.join(tmp, "layer");
  fs.mkdirSync(dest);
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function unpackEntries(entries: TestEntry[], compress = true) {
  const raw = await makeTar(entries);
  return unpackLayer(Readable.from([compress ? gzipSync(raw) : raw]), dest);
}

const inLayer = (name: string) => path.join(dest, name);

describe("unpackLayer: contents", () => {
  it("writes files, directories, modes, owners and times", async () => {
    await unpackEntries([
      { name: "etc/", type: "directory", mode: 0o750, uid: 1000, gid: 1001, mtime: T2 },
      { name: "etc/hosts", content: "127.0.0.1 localhost\n", mode: 0o640, uid: 1000, gid: 1001 },
      { name: "bin/", type: "directory", mode: 0o755 },
      { name: "bin/su", content: "su", mode: 0o4755 },
      { name: "bin/wall", content: "wall", mode: 0o2755, gid: 5 },
      { name: "tmp/", type: "directory", mode: 0o1777, mtime: T2 },
    ]);
    const hosts = fs.lstatSync(inLayer("etc/hosts"));
    expect(fs.readFileSync(inLayer("etc/hosts"), "utf8")).toBe("127.0.0.1 localhost\n");
    expect(hosts.mode & 0o7777).toBe(0o640);
    expect([hosts.uid, hosts.gid]).toEqual([1000, 1001]);
    expect(hosts.mtimeMs).toBe(T1.getTime());

    const etc = fs.lstatSync(inLayer("etc"));
    expect(etc.isDirectory()).toBe(true);
    expect(etc.mode & 0o7777).toBe(0o750);
    expect([etc.uid, etc.gid]).toEqual([1000, 1001]);
    // Set at the end, although etc/hosts was written after the directory.
    expect(etc.mtimeMs).toBe(T2.getTime());

    expect(fs.lstatSync(inLayer("bin/su")).mode & 0o7777).toBe(0o4755);
    expect(fs.lstatSync(inLayer("bin/wall")).mode & 0o7777).toBe(0o2755);
    expect(fs.lstatSync(inLayer("bin/wall")).gid).toBe(5);
    expect(fs.lstatSync(inLayer("tmp")).mode & 0o7777).toBe(0o1777);
  });

  it("creates missing parent directories and applies a late directory entry", async () => {
    await unpackEntries([
      { name: "late/sub/f", content: "x" },
      { name: "late/", type: "directory", mode: 0o700, uid: 7, mtime: T2 },
    ]);
    const late = fs.lstatSync(inLayer("late"));
    expect(late.mode & 0o7777).toBe(0o700);
    expect(late.uid).toBe(7);
    expect(late.mtimeMs).toBe(T2.getTime());
    expect(fs.lstatSync(inLayer("late/sub")).mode & 0o7777).toBe(0o755);
    expect(fs.readFileSync(inLayer("late/sub/f"), "utf8")).toBe("x");
  });

  it("skips the root entry, so a 0700 ./ cannot lock users out of /", async () => {
    fs.chmodSync(dest, 0o755);
    await unpackEntries([
      { name: "./", type: "directory", mode: 0o700 },
      { name: "./a", content: "a" },
    ]);
    expect(fs.statSync(dest).mode & 0o7777).toBe(0o755);
    expect(fs.readFileSync(inLayer("a"), "utf8")).toBe("a");
  });

  it("keeps symlinks as they are, with owner and time", async () => {
    await unpackEntries([
      { name: "bin/busybox", content: "bb", mode: 0o755 },
      { name: "bin/sh", type: "symlink", linkname: "busybox", uid: 3, gid: 4, mtime: T2 },
      { name: "etc/mtab", type: "symlink", linkname: "/proc/self/mounts" },
      { name: "dangling", type: "symlink", linkname: "../../../nowhere" },
    ]);
    const sh = fs.lstatSync(inLayer("bin/sh"));
    expect(sh.isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(inLayer("bin/sh"))).toBe("busybox");
    expect([sh.uid, sh.gid]).toEqual([3, 4]);
    expect(sh.mtimeMs).toBe(T2.getTime());
    expect(fs.readlinkSync(inLayer("etc/mtab"))).toBe("/proc/self/mounts");
    expect(fs.readlinkSync(inLayer("dangling"))).toBe("../../../nowhere");
  });

  it("makes hard links to earlier entries, with relative or absolute link names", async () => {
    await unpackEntries([
      { name: "bin/busybox", content: "bb", mode: 0o755 },
      { name: "bin/ls", type: "link", linkname: "bin/busybox" },
      { name: "bin/cat", type: "link", linkname: "/bin/busybox" },
      { name: "bin/sh", type: "symlink", linkname: "busybox" },
      { name: "bin/sh2", type: "link", linkname: "bin/sh" },
    ]);
    const target = fs.lstatSync(inLayer("bin/busybox"));
    expect(fs.lstatSync(inLayer("bin/ls")).ino).toBe(target.ino);
    expect(fs.lstatSync(inLayer("bin/cat")).ino).toBe(target.ino);
    expect(target.nlink).toBe(3);
    // A hard link to a symlink is another symlink (link(2) does not follow it).
    expect(fs.readlinkSync(inLayer("bin/sh2"))).toBe("busybox");
  });

  it("sets xattrs from PAX records, but never trusted.overlay.* ones", async () => {
    await unpackEntries([
      {
        name: "f",
        content: "x",
        pax: { "SCHILY.xattr.user.foo": "bar", "SCHILY.xattr.trusted.overlay.redirect": "/x" },
      },
      { name: "d/", type: "directory", pax: { "SCHILY.xattr.user.dir": "yes" } },
    ]);
    expect(lgetxattr(inLayer("f"), "user.foo")?.toString()).toBe("bar");
    expect(lgetxattr(inLayer("f"), "trusted.overlay.redirect")).toBeUndefined();
    expect(lgetxattr(inLayer("d"), "user.dir")?.toString()).toBe("yes");
  });

  it("takes ids and sub-second times from PAX records", async () => {
    await unpackEntries([
      { name: "f", content: "x", pax: { uid: "3000000", gid: "3000001", mtime: "1600000000.5" } },
    ]);
    const f = fs.lstatSync(inLayer("f"));
    expect([f.uid, f.gid]).toEqual([3000000, 3000001]);
    expect(f.mtimeMs).toBe(1600000000500);
  });

  it("creates device nodes and fifos (as root)", async () => {
    await unpackEntries([
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop9", type: "block-device", devmajor: 7, devminor: 9, mode: 0o660 },
      { name: "run/fifo", type: "fifo", mode: 0o600 },
    ]);
    const nul = fs.lstatSync(inLayer("dev/null"));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe((1 << 8) | 3);
    expect(nul.mode & 0o7777).toBe(0o666);
    expect(fs.lstatSync(inLayer("dev/loop9")).isBlockDevice()).toBe(true);
    expect(fs.lstatSync(inLayer("dev/loop9")).rdev).toBe((7 << 8) | 9);
    expect(fs.lstatSync(inLayer("run/fifo")).isFIFO()).toBe(true);
  });

  it("lets a later entry replace an earlier one", async () => {
    await unpackEntries([
      { name: "dup", content: "first" },
      { name: "dup", content: "second" },
      { name: "x", content: "file" },
      { name: "x/", type: "directory" },
      { name: "x/y", content: "y" },
      { name: "d/", type: "directory" },
      { name: "d/child", content: "c" },
      { name: "d", content: "now a file" },
      { name: "s", type: "symlink", linkname: "dup" },
      { name: "s/", type: "directory" },
    ]);
    expect(fs.readFileSync(inLayer("dup"), "utf8")).toBe("second");
    expect(fs.readFileSync(inLayer("x/y"), "utf8")).toBe("y");
    expect(fs.readFileSync(inLayer("d"), "utf8")).toBe("now a file");
    expect(fs.lstatSync(inLayer("s")).isDirectory()).toBe(true);
  });

  it("handles long names (PAX path) and large files", async () => {
    const long = `${"deep/".repeat(30)}file`;
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    big.write("start");
    const result = await unpackEntries([
      { name: long, content: "long" },
      { name: "big", content: big },
    ]);
    expect(fs.readFileSync(inLayer(long), "utf8")).toBe("long");
    expect(fs.readFileSync(inLayer("big")).equals(big)).toBe(true);
    expect(result.size).toBe(4 + big.length);
  });

  it("reports each entry to onEntry", async () => {
    const seen: string[] = [];
    const raw = await makeTar([
      { name: "a/", type: "directory" },
      { name: "a/f", content: "f" },
      { name: "a/.wh.g" },
      { name: "a/.wh..wh..opq" },
    ]);
    await unpackLayer(Readable.from([raw]), dest, {
      onEntry: (name, type) => seen.push(`${type} ${name}`),
    });
    expect(seen).toEqual(["directory a/", "file a/f", "whiteout a/.wh.g", "opaque a/.wh..wh..opq"]);
  });
});

describe("unpackLayer: whiteouts", () => {
  it("turns .wh.NAME into a 0/0 character device and never writes the marker", async () => {
    await unpackEntries([
      { name: "a/", type: "directory" },
      { name: "a/.wh.b" },
      { name: ".wh.top" },
    ]);
    for (const name of ["a/b", "top"]) {
      const st = fs.lstatSync(inLayer(name));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(0);
    }
    expect(fs.existsSync(inLayer("a/.wh.b"))).toBe(false);
    expect(fs.existsSync(inLayer(".wh.top"))).toBe(false);
  });

  it("replaces what this layer already put at the whited-out path", async () => {
    await unpackEntries([
      { name: "a/c", content: "c" },
      { name: "a/.wh.c" },
      { name: "gone/sub/f", content: "f" },
      { name: ".wh.gone" },
    ]);
    expect(fs.lstatSync(inLayer("a/c")).isCharacterDevice()).toBe(true);
    expect(fs.lstatSync(inLayer("gone")).isCharacterDevice()).toBe(true);
  });

  it("marks opaque directories with trusted.overlay.opaque=y", async () => {
    await unpackEntries([
      { name: "a/", type: "directory" },
      { name: "a/kept", content: "k" },
      { name: "a/.wh..wh..opq" },
      { name: "new/.wh..wh..opq" },
    ]);
    expect(lgetxattr(inLayer("a"), "trusted.overlay.opaque")?.toString()).toBe("y");
    expect(lgetxattr(inLayer("new"), "trusted.overlay.opaque")?.toString()).toBe("y");
    expect(fs.readFileSync(inLayer("a/kept"), "utf8")).toBe("k");
    expect(fs.existsSync(inLayer("a/.wh..wh..opq"))).toBe(false);
  });

  it("skips aufs metadata (.wh..wh.*)", async () => {
    await unpackEntries([
      { name: ".wh..wh.plnk/", type: "directory" },
      { name: ".wh..wh.plnk/123.456", content: "x" },
      { name: ".wh..wh.aufs", content: "x" },
    ]);
    expect(fs.readdirSync(dest)).toEqual([]);
  });
});
