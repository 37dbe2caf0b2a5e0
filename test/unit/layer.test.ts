// Unit tests for layer unpacking: tar archives are built in memory with
// tar-stream's pack() and unpacked into a fresh temporary directory. They run
// as root (device nodes, chown, trusted.* xattrs need it).
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { UnsafeLayerError, unpackLayer } from "../../src/image/layer.js";
import { lgetxattr } from "../../src/sys/libc.js";

type Header = Parameters<ReturnType<typeof tar.pack>["entry"]>[0];

interface TestEntry extends Header {
  content?: string | Buffer;
}

const T1 = new Date("2001-02-03T04:05:06Z");
const T2 = new Date("2010-01-01T00:00:00Z");

/** Builds an uncompressed tar in memory. */
async function makeTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { content, ...header } of entries) {
    pack.entry({ mtime: T1, ...header }, content ?? Buffer.alloc(0));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

let tmp: string;
let dest: string;
/** A directory next to the layer directory: what an escaping entry would reach. */
let outside: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minibox-layer-test-"));
  dest = path.join(tmp, "layer");
  outside = path.join(tmp, "outside");
  fs.mkdirSync(dest);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, "secret"), "secret\n");
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

describe("unpackLayer: stream handling", () => {
  const entries: TestEntry[] = [
    { name: "a", content: "hello" },
    { name: "b/", type: "directory" },
    { name: "b/c", content: "world!" },
    { name: "b/l", type: "symlink", linkname: "c" },
  ];

  it("returns the sha256 of the uncompressed tar as diffID, and the size", async () => {
    const raw = await makeTar(entries);
    const result = await unpackLayer(Readable.from([gzipSync(raw)]), dest);
    expect(result).toEqual({ diffID: sha256(raw), size: 11 });
  });

  it("accepts an uncompressed tar, with the same diffID", async () => {
    const raw = await makeTar(entries);
    const result = await unpackLayer(Readable.from([raw]), dest);
    expect(result.diffID).toBe(sha256(raw));
    expect(fs.readFileSync(inLayer("b/c"), "utf8")).toBe("world!");
  });

  it("detects gzip from magic bytes split across tiny chunks", async () => {
    const raw = await makeTar(entries);
    const gz = gzipSync(raw);
    const chunks = [gz.subarray(0, 1), gz.subarray(1, 2), gz.subarray(2, 3), gz.subarray(3)];
    const result = await unpackLayer(Readable.from(chunks), dest);
    expect(result.diffID).toBe(sha256(raw));
  });

  it("covers trailing padding in the diffID", async () => {
    const raw = Buffer.concat([await makeTar(entries), Buffer.alloc(8192)]);
    const result = await unpackLayer(Readable.from([gzipSync(raw)]), dest);
    expect(result.diffID).toBe(sha256(raw));
  });

  it("applies the last entry before resolving when end-of-archive blocks are missing", async () => {
    const full = await makeTar([
      { name: "f", content: "f" },
      { name: "last/", type: "directory", mode: 0o711, mtime: T2 },
    ]);
    const raw = full.subarray(0, full.length - 1024); // tar-stream ends with 1024 zero bytes
    const result = await unpackLayer(Readable.from([raw]), dest);
    expect(result.diffID).toBe(sha256(raw));
    const last = fs.lstatSync(inLayer("last"));
    expect(last.mode & 0o7777).toBe(0o711);
    expect(last.mtimeMs).toBe(T2.getTime());
  });

  it("accepts an empty layer", async () => {
    const raw = await makeTar([]);
    const result = await unpackLayer(Readable.from([gzipSync(raw)]), dest);
    expect(result).toEqual({ diffID: sha256(raw), size: 0 });
  });

  it("rejects a truncated gzip stream as corrupt", async () => {
    const gz = gzipSync(await makeTar(entries));
    const run = unpackLayer(Readable.from([gz.subarray(0, gz.length - 20)]), dest);
    await expect(run).rejects.toThrow(MiniboxError);
    await expect(run).rejects.toThrow("layer is corrupt: unexpected end of file");
  });

  it("rejects damaged gzip data as corrupt", async () => {
    const gz = gzipSync(await makeTar(entries));
    gz[3] = 0xff; // reserved flag bits set: zlib refuses the header
    await expect(unpackLayer(Readable.from([gz]), dest)).rejects.toThrow(/^layer is corrupt: /);
    const gz2 = gzipSync(await makeTar(entries));
    gz2.writeUInt32LE(gz2.readUInt32LE(gz2.length - 8) ^ 1, gz2.length - 8); // wrong CRC
    await expect(unpackLayer(Readable.from([gz2]), dest)).rejects.toThrow(/^layer is corrupt: /);
  });

  it("rejects a truncated tar as corrupt", async () => {
    const raw = await makeTar([{ name: "big", content: Buffer.alloc(5000, 1) }]);
    const run = unpackLayer(Readable.from([gzipSync(raw.subarray(0, 2000))]), dest);
    await expect(run).rejects.toThrow("layer is corrupt: unexpected end of data");
  });

  it("rejects data that is not a tar as corrupt", async () => {
    const junk = Buffer.alloc(2048, "not a tar archive ");
    await expect(unpackLayer(Readable.from([junk]), dest)).rejects.toThrow(
      /^layer is corrupt: invalid tar header/,
    );
  });

  it("refuses zstd layers with a clear error", async () => {
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await expect(unpackLayer(Readable.from([zstd]), dest)).rejects.toThrow(
      "zstd-compressed layers are not supported yet",
    );
  });

  it("reports an input stream failing inside gzip data as a read error", async () => {
    const gz = gzipSync(await makeTar(entries));
    async function* failing() {
      yield gz.subarray(0, 30);
      throw Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
    }
    await expect(unpackLayer(Readable.from(failing()), dest)).rejects.toThrow(
      "could not read the layer: connection reset",
    );
  });

  it("reports a failing input stream as a read error", async () => {
    const input = new Readable({
      read() {
        this.destroy(Object.assign(new Error("connection reset"), { code: "ECONNRESET" }));
      },
    });
    await expect(unpackLayer(input, dest)).rejects.toThrow(
      "could not read the layer: connection reset",
    );
  });
});

describe("unpackLayer: path safety", () => {
  /** Unpacks and expects an UnsafeLayerError whose message matches. */
  async function expectUnsafe(entries: TestEntry[], message: string | RegExp) {
    const run = unpackEntries(entries);
    await expect(run).rejects.toThrow(UnsafeLayerError);
    await expect(run).rejects.toThrow(message);
  }

  it("refuses names that climb out with ..", async () => {
    await expectUnsafe(
      [{ name: "../escape", content: "x" }],
      'layer entry "../escape" escapes the layer directory',
    );
    await expectUnsafe([{ name: "a/../../escape", content: "x" }], '"a/../../escape" escapes');
    await expectUnsafe([{ name: "/../escape", content: "x" }], "escapes");
    await expectUnsafe([{ name: "../", type: "directory" }], "escapes");
    expect(fs.existsSync(path.join(tmp, "escape"))).toBe(false);
  });

  it("stops at an unsafe entry in the middle of a large layer", async () => {
    const run = unpackEntries([
      { name: "before", content: Buffer.alloc(2 * 1024 * 1024, 1) },
      { name: "../escape", content: "x" },
      { name: "after", content: Buffer.alloc(4 * 1024 * 1024, 2) },
    ]);
    await expect(run).rejects.toThrow(UnsafeLayerError);
    expect(fs.existsSync(path.join(tmp, "escape"))).toBe(false);
    expect(fs.existsSync(inLayer("after"))).toBe(false);
  });

  it("accepts .. that stays inside, and treats absolute names as relative to the layer", async () => {
    await unpackEntries([
      { name: "a/../b", content: "b" },
      { name: "/abs/x", content: "x" },
    ]);
    expect(fs.readFileSync(inLayer("b"), "utf8")).toBe("b");
    expect(fs.readFileSync(inLayer("abs/x"), "utf8")).toBe("x");
    expect(fs.existsSync(inLayer("a"))).toBe(false);
  });

  for (const [label, linkname] of [
    ["absolute", () => outside],
    ["relative", () => "../outside"],
  ] as const) {
    it(`refuses to write through a symlink (${label} target)`, async () => {
      const evil = { name: "evil", type: "symlink", linkname: linkname() } as const;
      await expectUnsafe(
        [evil, { name: "evil/passwd", content: "pwned" }],
        'layer entry "evil/passwd" goes through the symlink "evil"',
      );
      await expectUnsafe([evil, { name: "evil/sub/", type: "directory" }], "symlink");
      await expectUnsafe([evil, { name: "evil/sub/deep", content: "x" }], "symlink");
      await expectUnsafe([evil, { name: "evil/fifo", type: "fifo" }], "symlink");
      await expectUnsafe([evil, { name: "evil/l", type: "symlink", linkname: "x" }], "symlink");
      await expectUnsafe([evil, { name: "evil/.wh.secret" }], "symlink");
      await expectUnsafe([evil, { name: "evil/.wh..wh..opq" }], "symlink");
      expect(fs.readdirSync(outside)).toEqual(["secret"]);
      expect(fs.readFileSync(path.join(outside, "secret"), "utf8")).toBe("secret\n");
      expect(lgetxattr(outside, "trusted.overlay.opaque")).toBeUndefined();
    });
  }

  it("refuses to write through a symlink that replaced a directory", async () => {
    await expectUnsafe(
      [
        { name: "d/", type: "directory" },
        { name: "d/x", content: "x" },
        { name: "d", type: "symlink", linkname: outside },
        { name: "d/passwd", content: "pwned" },
      ],
      'layer entry "d/passwd" goes through the symlink "d"',
    );
    expect(fs.readdirSync(outside)).toEqual(["secret"]);
  });

  it("replaces a symlink at the entry's own path instead of following it", async () => {
    await unpackEntries([
      { name: "s", type: "symlink", linkname: path.join(outside, "secret") },
      { name: "s", content: "mine" },
      { name: "t", type: "symlink", linkname: outside },
      { name: "t/", type: "directory", mode: 0o700 },
    ]);
    expect(fs.readFileSync(inLayer("s"), "utf8")).toBe("mine");
    expect(fs.readFileSync(path.join(outside, "secret"), "utf8")).toBe("secret\n");
    expect(fs.lstatSync(inLayer("t")).isDirectory()).toBe(true);
    expect(fs.statSync(outside).mode & 0o7777).toBe(0o755);
  });

  it("never sets a directory's deferred times through a symlink that replaced it", async () => {
    const before = fs.statSync(outside).mtimeMs;
    await unpackEntries([
      { name: "t/", type: "directory", mtime: T2 },
      { name: "t", type: "symlink", linkname: outside },
    ]);
    expect(fs.statSync(outside).mtimeMs).toBe(before);
  });

  it("refuses hard links that climb out of the layer", async () => {
    await expectUnsafe(
      [{ name: "stolen", type: "link", linkname: "../outside/secret" }],
      'layer entry "stolen" is a hard link to "../outside/secret", outside the layer directory',
    );
    await expectUnsafe(
      [{ name: "stolen", type: "link", linkname: "../../outside/secret" }],
      "outside",
    );
    expect(fs.lstatSync(path.join(outside, "secret")).nlink).toBe(1);
  });

  it("refuses hard links through a symlink", async () => {
    await expectUnsafe(
      [
        { name: "evil", type: "symlink", linkname: outside },
        { name: "stolen", type: "link", linkname: "evil/secret" },
      ],
      'layer entry "stolen" goes through the symlink "evil"',
    );
    expect(fs.lstatSync(path.join(outside, "secret")).nlink).toBe(1);
    expect(fs.existsSync(inLayer("stolen"))).toBe(false);
  });

  it("reads an absolute hard link target inside the layer, where it does not exist", async () => {
    const run = unpackEntries([
      { name: "stolen", type: "link", linkname: path.join(outside, "secret") },
    ]);
    await expect(run).rejects.toThrow(MiniboxError);
    await expect(run).rejects.toThrow("which is not in the layer");
    expect(fs.lstatSync(path.join(outside, "secret")).nlink).toBe(1);
  });

  it("refuses whiteouts that climb out or name the parent", async () => {
    fs.writeFileSync(path.join(tmp, "x"), "x");
    await expectUnsafe([{ name: "../.wh.x" }], "escapes");
    await expectUnsafe(
      [{ name: "a/.wh..." }],
      'layer entry "a/.wh..." is a whiteout for an invalid name',
    );
    await expectUnsafe([{ name: ".wh..." }], "invalid name");
    await expectUnsafe([{ name: ".wh.." }], "invalid name");
    expect(fs.readFileSync(path.join(tmp, "x"), "utf8")).toBe("x");
    expect(fs.lstatSync(dest).isDirectory()).toBe(true);
  });

  it("refuses an entry that would replace the layer root", async () => {
    await expectUnsafe(
      [{ name: "./", type: "symlink", linkname: outside }],
      "replaces the layer root",
    );
    await expectUnsafe([{ name: ".", content: "x" }], "replaces the layer root");
  });
});
