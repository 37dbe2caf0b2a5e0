// A hostile image author against the host-side code that reads an image:
// minibox resolves `-u` by reading the image's /etc/passwd and /etc/group
// on the host, as root, before the container exists (and `exec -u` reads a
// running container's). An image whose /etc/passwd (or its /etc) is a
// symlink to a host path would have the host's file parsed as the
// container's users; a huge one would fill minibox's memory. Absurd config
// values and odd file names must give a clear refusal or a correct result.
// Each case checks the host files it aims at are unchanged.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  busyboxLayer,
  exportToFile,
  layoutArchive,
  makeTar,
  pushHostile,
  readTar,
  type TestEntry,
  writeHostileLayout,
} from "../support/hostile.js";
import { oneLineError, type Sandbox, sandbox } from "../support/minibox.js";

let box: Sandbox;
let work: string;
/** A host directory with passwd and group files naming users the image does not have. */
let hostEtc: string;
let base: Buffer;
const HOST_PASSWD = "evil:x:4242:4242:host user:/:/bin/sh\n";
const HOST_GROUP = "evilgrp:x:4343:evil\n";

beforeAll(async () => {
  box = sandbox();
  work = mkdtempSync(path.join(tmpdir(), "minibox-hostile-"));
  hostEtc = path.join(work, "host-etc");
  rmSync(hostEtc, { recursive: true, force: true });
  const { mkdirSync } = await import("node:fs");
  mkdirSync(hostEtc);
  writeFileSync(path.join(hostEtc, "passwd"), HOST_PASSWD);
  writeFileSync(path.join(hostEtc, "group"), HOST_GROUP);
  base = await busyboxLayer();
});
afterAll(async () => {
  await box.run(["rm", "-f", "swapper"]);
  box.cleanup();
  rmSync(work, { recursive: true, force: true });
});

let counter = 0;
/** Pushes an image of the busybox layer plus `entries` (and `config`) and pulls it; its reference. */
async function hostileImage(entries: TestEntry[], config?: Record<string, unknown>) {
  const name = `hostile/image-${process.pid}-${counter++}`;
  const layers = entries.length ? [base, await makeTar(entries)] : [base];
  const layout = await writeHostileLayout(path.join(work, name), { layers, config });
  const ref = await pushHostile(layout, name);
  const r = await box.run(["pull", "-q", ref]);
  expect(r.code, r.stderr).toBe(0);
  return ref;
}

function hostSnapshot() {
  return [
    path.join(hostEtc, "passwd"),
    path.join(hostEtc, "group"),
    "/etc/passwd",
    "/etc/shadow",
  ].map((f) => ({ f, mtimeMs: statSync(f).mtimeMs, content: readFileSync(f) }));
}
function assertHostUnchanged(before: ReturnType<typeof hostSnapshot>) {
  for (const h of before) {
    expect(statSync(h.f).mtimeMs, h.f).toBe(h.mtimeMs);
    expect(readFileSync(h.f).equals(h.content), h.f).toBe(true);
  }
}

const run = (ref: string, ...args: string[]) =>
  box.run([
    "run",
    "--rm",
    "--network",
    "none",
    ...args.slice(0, -1),
    ref,
    "sh",
    "-c",
    args.at(-1) ?? "",
  ]);

describe("an image's /etc/passwd and /etc/group are resolved inside the image, never on the host", () => {
  test("/etc/passwd a symlink to a host file: -u of a user only the host file names is refused", async () => {
    const before = hostSnapshot();
    const ref = await hostileImage([
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", type: "symlink", linkname: path.join(hostEtc, "passwd") },
    ]);
    const r = await run(ref, "-u", "evil", "id -u");
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toContain("unable to find user evil");
    assertHostUnchanged(before);
  });

  test("/etc itself a symlink to a host directory (absolute and ../): refused the same way", async () => {
    const before = hostSnapshot();
    for (const linkname of [hostEtc, `../../../../../../..${hostEtc}`]) {
      const ref = await hostileImage([{ name: "etc", type: "symlink", linkname }]);
      const r = await run(ref, "-u", "evil", "id -u");
      expect(r.code, linkname).toBe(125);
      expect(oneLineError(r)).toContain("unable to find user evil");
      const g = await run(ref, "-u", "0:evilgrp", "id -g");
      expect(g.code, linkname).toBe(125);
      expect(oneLineError(g)).toContain("unable to find group evilgrp");
    }
    assertHostUnchanged(before);
  });

  test("/etc/group a symlink to a host file: a group only the host file names is refused", async () => {
    const before = hostSnapshot();
    const ref = await hostileImage([
      { name: "etc/", type: "directory" },
      { name: "etc/group", type: "symlink", linkname: path.join(hostEtc, "group") },
    ]);
    const r = await run(ref, "-u", "0:evilgrp", "id -g");
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toContain("unable to find group evilgrp");
    assertHostUnchanged(before);
  });

  test("a link inside the image is followed inside it, as the container sees it", async () => {
    const ref = await hostileImage([
      { name: "etc/", type: "directory" },
      { name: "etc/real/", type: "directory" },
      { name: "etc/real/passwd", content: "inimage:x:777:778::/:/bin/sh\n" },
      // ../ past the root stays at the image's root, as the kernel does in the container.
      { name: "etc/passwd", type: "symlink", linkname: "../../../../etc/real/passwd" },
    ]);
    const r = await run(ref, "-u", "inimage", "id -u; id -g");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(["777", "778"]);
  });

  test("exec -u in a container that swapped a directory on its passwd's path for a symlink to the host", async () => {
    // /etc holds the per-container bind mounts (hosts, resolv.conf…) and
    // cannot be moved, so the image's /etc/passwd links into /data, which
    // the running container swaps for a link to the host directory.
    const before = hostSnapshot();
    const ref = await hostileImage([
      { name: "data/", type: "directory" },
      { name: "data/passwd", content: "inimage:x:777:778::/:/bin/sh\n" },
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", type: "symlink", linkname: "/data/passwd" },
    ]);
    const d = await box.run([
      "run",
      "-d",
      "--name",
      "swapper",
      "--network",
      "none",
      ref,
      "sh",
      "-c",
      `mv /data /data.old && ln -s ${hostEtc} /data && touch /swapped && exec sleep 1000`,
    ]);
    expect(d.code, d.stderr).toBe(0);
    const ready = await box.run([
      "exec",
      "swapper",
      "sh",
      "-c",
      "until [ -e /swapped ]; do usleep 10000; done",
    ]);
    expect(ready.code, ready.stderr).toBe(0);
    const e = await box.run(["exec", "-u", "evil", "swapper", "id", "-u"]);
    expect(e.stdout).not.toContain("4242");
    expect(oneLineError(e)).toContain("unable to find user evil");
    expect((await box.run(["rm", "-f", "swapper"])).code).toBe(0);
    assertHostUnchanged(before);
  });

  test("a 20 MB /etc/passwd is refused with one line, not read into memory", async () => {
    const huge = `${"x".repeat(99)}\n`.repeat(200_000);
    const ref = await hostileImage([
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", content: huge },
    ]);
    const r = await run(ref, "true");
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toContain("/etc/passwd is too large");
  });
});

describe("absurd image configs: a clear refusal or a correct result", () => {
  test('User "0:0:0" is refused with one line', async () => {
    const ref = await hostileImage([], { User: "0:0:0" });
    const r = await run(ref, "true");
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toContain('invalid user "0:0:0"');
  });

  test('a relative WorkingDir ("../../") is taken from the container\'s /', async () => {
    const ref = await hostileImage([], { WorkingDir: "../../" });
    const r = await run(ref, "pwd; ls /bin/busybox");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(["/", "/bin/busybox"]);
  });

  test("an Env entry without = is ignored or kept as Docker does, and the rest of Env works", async () => {
    const ref = await hostileImage([], {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NOEQUALS", "A=1"],
    });
    const r = await run(ref, 'echo "$A"');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("1");
  });

  test("a 10 MB label (in a 10 MB config): load refuses it with one line, the store unchanged", async () => {
    // Registries and skopeo refuse configs over 4 MiB; `load` is how such an image arrives.
    const big = "L".repeat(10 * 1024 * 1024);
    const layout = await writeHostileLayout(path.join(work, "big-label"), {
      layers: [base],
      config: { Labels: { big } },
    });
    const archive = path.join(work, "big-label.tar");
    writeFileSync(archive, await layoutArchive(layout));
    const before = await box.run(["images", "-q"]);
    const r = await box.run(["load", "-i", archive]);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r)).toContain("too large");
    expect((await box.run(["images", "-q"])).stdout).toBe(before.stdout);
  });
});

describe("odd file names in a layer", () => {
  test("names with newlines, tabs and non-ASCII bytes are unpacked, listed and exported as they are", async () => {
    const names = ["odd/new\nline", "odd/tab\there", "odd/\u00e9\u00ff\u0001x", "odd/-rf"];
    const ref = await hostileImage([
      { name: "odd/", type: "directory" },
      ...names.map((name) => ({ name, content: `content of ${JSON.stringify(name)}\n` })),
    ]);
    const r = await run(ref, 'for f in /odd/*; do cat "$f"; done');
    expect(r.code, r.stderr).toBe(0);
    for (const name of names) expect(r.stdout).toContain(`content of ${JSON.stringify(name)}`);
    const c = await box.run(["run", "--name", "odd", "--network", "none", ref, "true"]);
    expect(c.code, c.stderr).toBe(0);
    const file = path.join(work, "odd.tar");
    const x = await exportToFile(box, "odd", file);
    expect(x.code, x.stderr).toBe(0);
    const exported = (await readTar(readFileSync(file))).map((e) => e.name);
    for (const name of names) expect(exported).toContain(name);
    expect((await box.run(["rm", "odd"])).code).toBe(0);
  });
});
