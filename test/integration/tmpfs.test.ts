// tmpfs mounts (--tmpfs, --mount type=tmpfs, --shm-size) and --volumes-from,
// on the real kernel, in a user namespace (the default), against the busybox
// fixture: what a user sees inside (mountinfo, df, ENOSPC, noexec, :ro) and
// what inspect says (Docker's HostConfig.Tmpfs, ShmSize, VolumesFrom, Mounts).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  oneLineError,
  pullInto,
  removeContainers,
  type Sandbox,
  sandbox,
} from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const IMAGE = `${env.registries.anon}/fixtures/base`;

let box: Sandbox;
let dir: string;
beforeAll(async () => {
  box = sandbox();
  dir = mkdtempSync(path.join(tmpdir(), "minibox-tmpfs-"));
  await pullInto(box, IMAGE);
});
afterAll(async () => {
  await removeContainers(box);
  const volumes = (await box.run(["volume", "ls", "-q"])).stdout.trim().split("\n").filter(Boolean);
  if (volumes.length) await box.run(["volume", "rm", ...volumes]);
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function ok(args: string[]): Promise<string> {
  const r = await box.run(args);
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function inspect(name: string) {
  return JSON.parse(await ok(["inspect", name]))[0];
}

/** The mountinfo line of the mount at `target`, as the container sees it. */
const mountinfoLine = (out: string, target: string) =>
  out.split("\n").find((l) => l.split(" ")[4] === target) ?? "";

const hostMountinfo = () => readFileSync("/proc/self/mountinfo", "utf8");

describe("--tmpfs", () => {
  test("a sized tmpfs: mountinfo shows it, writing past its size fails with ENOSPC", async () => {
    const before = hostMountinfo();
    const r = await box.run([
      "run",
      "--name",
      "sized",
      "--tmpfs",
      "/scratch:size=1m",
      IMAGE,
      "sh",
      "-c",
      "cat /proc/self/mountinfo; stat -c 'owner=%u:%g' /scratch; " +
        "dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>&1; echo dd=$?",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const line = mountinfoLine(r.stdout, "/scratch");
    expect(line).toMatch(/ - tmpfs tmpfs /);
    expect(line).toMatch(/size=1024k/);
    // The init mounted it in the container's user namespace: its root owns it.
    expect(r.stdout).toContain("owner=0:0");
    expect(r.stdout).toMatch(/No space left on device/);
    expect(r.stdout).toMatch(/dd=1/);
    const c = await inspect("sized");
    expect(c.HostConfig.Tmpfs).toEqual({ "/scratch": "size=1m" });
    // Docker lists a --tmpfs only in HostConfig.Tmpfs, not in Mounts.
    expect(c.Mounts).toEqual([]);
    // The tmpfs lived in the container's mount namespace only.
    expect(hostMountinfo()).toBe(before);
    await ok(["rm", "sized"]);
  });

  test("noexec by default (as Docker); exec in the options allows it", async () => {
    const script =
      "cp /bin/busybox /t/true && /t/true; echo rc=$?; grep ' /t ' /proc/self/mountinfo";
    const r = await box.run(["run", "--rm", "--tmpfs", "/t", IMAGE, "sh", "-c", script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rc=126/);
    expect(r.stdout).toMatch(/noexec/);
    const allowed = await ok(["run", "--rm", "--tmpfs", "/t:exec", IMAGE, "sh", "-c", script]);
    expect(allowed).toMatch(/rc=0/);
  });

  test("--mount type=tmpfs with tmpfs-size and tmpfs-mode; listed in inspect's Mounts", async () => {
    const out = await ok([
      "run",
      "--name",
      "mounted",
      "--mount",
      "type=tmpfs,destination=/p,tmpfs-size=2m,tmpfs-mode=0700",
      IMAGE,
      "sh",
      "-c",
      "cat /proc/self/mountinfo; stat -c 'mode=%a' /p; echo hi > /p/f && cat /p/f",
    ]);
    const line = mountinfoLine(out, "/p");
    expect(line).toMatch(/ - tmpfs tmpfs /);
    expect(line).toMatch(/size=2048k/);
    expect(out).toContain("mode=700");
    expect(out).toContain("hi\n");
    const c = await inspect("mounted");
    expect(c.Mounts).toEqual([
      { Type: "tmpfs", Source: "", Destination: "/p", Mode: "", RW: true, Propagation: "" },
    ]);
    expect(c.HostConfig.Tmpfs).toBeNull();
    expect(c.HostConfig.Mounts).toEqual([{ Type: "tmpfs", Target: "/p" }]);
    await ok(["rm", "mounted"]);
  });

  test("--read-only with --tmpfs: the tmpfs is the one writable place", async () => {
    const out = await ok([
      "run",
      "--rm",
      "--read-only",
      "--tmpfs",
      "/run",
      IMAGE,
      "sh",
      "-c",
      "echo ok > /run/pid && cat /run/pid; touch /etc/x 2>/dev/null; echo etc=$?",
    ]);
    expect(out).toBe("ok\netc=1\n");
  });

  test("a tmpfs does not hide a volume mounted inside it", async () => {
    const out = await ok([
      "run",
      "--rm",
      "-v",
      "inner:/run/secrets",
      "--tmpfs",
      "/run",
      IMAGE,
      "sh",
      "-c",
      "echo kept > /run/secrets/s; touch /run/other; ls /run",
    ]);
    expect(out).toBe("other\nsecrets\n");
    const check = await ok(["run", "--rm", "-v", "inner:/v", IMAGE, "cat", "/v/s"]);
    expect(check).toBe("kept\n");
    await ok(["volume", "rm", "inner"]);
  });

  test("--shm-size sets /dev/shm's size (default 64m)", async () => {
    const df = "df -k /dev/shm | tail -1";
    const sized = await ok(["run", "--name", "shm", "--shm-size", "8m", IMAGE, "sh", "-c", df]);
    expect(sized.trim().split(/\s+/)[1]).toBe("8192");
    expect((await inspect("shm")).HostConfig.ShmSize).toBe(8 * 1024 * 1024);
    await ok(["rm", "shm"]);
    const plain = await ok(["run", "--name", "noshm", IMAGE, "sh", "-c", df]);
    expect(plain.trim().split(/\s+/)[1]).toBe("65536");
    expect((await inspect("noshm")).HostConfig.ShmSize).toBe(64 * 1024 * 1024);
    await ok(["rm", "noshm"]);
  });
});

describe("--volumes-from", () => {
  test("another container's volume and bind: the data visible, :ro enforced", async () => {
    const host = path.join(dir, "shared");
    await ok([
      "run",
      "--name",
      "keeper",
      "-v",
      "keep:/data",
      "-v",
      `${host}:/hostdir`,
      IMAGE,
      "sh",
      "-c",
      "echo from-volume > /data/f; echo from-bind > /hostdir/g",
    ]);
    expect(readFileSync(path.join(host, "g"), "utf8")).toBe("from-bind\n");

    const rw = await ok([
      "run",
      "--name",
      "reader",
      "--volumes-from",
      "keeper",
      IMAGE,
      "sh",
      "-c",
      "cat /data/f /hostdir/g; echo more > /data/f2",
    ]);
    expect(rw).toBe("from-volume\nfrom-bind\n");
    const mounts = (await inspect("reader")).Mounts;
    expect(mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Type: "volume", Name: "keep", Destination: "/data", RW: true }),
        expect.objectContaining({ Type: "bind", Source: host, Destination: "/hostdir", RW: true }),
      ]),
    );

    const ro = await box.run([
      "run",
      "--name",
      "ro-reader",
      "--volumes-from",
      "keeper:ro",
      IMAGE,
      "sh",
      "-c",
      "cat /data/f2; touch /data/x || touch /hostdir/x; echo rc=$?",
    ]);
    expect(ro.stdout).toBe("more\nrc=1\n");
    expect(ro.stderr).toMatch(/Read-only file system/);
    expect(() => readFileSync(path.join(host, "x"))).toThrow();
    const c = await inspect("ro-reader");
    expect(c.HostConfig.VolumesFrom).toEqual(["keeper:ro"]);
    expect(c.Mounts.every((m: { RW: boolean }) => !m.RW)).toBe(true);
    await ok(["rm", "keeper", "reader", "ro-reader"]);
    await ok(["volume", "rm", "keep"]);
  });
});

describe("bad input: one clear line, exit 125, nothing created", () => {
  test.each([
    [["--tmpfs", "scratch"], /invalid mount path: 'scratch' mount path must be absolute/],
    [["--tmpfs", "/x:size=abc"], /invalid --tmpfs option "size=abc": invalid size 'abc'/],
    [["--tmpfs", "/x:bogus"], /unknown option 'bogus'/],
    [["--mount", "type=tmpfs,target=/x,tmpfs-size=lots"], /invalid value for tmpfs-size: lots/],
    [["--mount", "type=tmpfs,source=a,target=/x"], /source must not be set/],
    [["--shm-size", "huge"], /invalid --shm-size value "huge"/],
    [["--tmpfs", "/x", "-v", "vol:/x"], /Duplicate mount point: \/x/],
    [["--volumes-from", "nosuch"], /No such container: nosuch/],
    [["--volumes-from", "nosuch:rx"], /invalid mode for volumes-from: rx/],
  ])("%j", async (flags, message) => {
    const volumes = await ok(["volume", "ls", "-q"]);
    const containers = await ok(["ps", "-aq"]);
    const r = await box.run(["run", "--rm", "-v", "anon-never:/y", ...flags, IMAGE, "true"]);
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toMatch(message);
    expect(await ok(["volume", "ls", "-q"])).toBe(volumes);
    expect(await ok(["ps", "-aq"])).toBe(containers);
  });
});
