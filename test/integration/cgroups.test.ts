// The cgroup drivers against the real kernel (root). On this project's
// machines that is a v1 hybrid: the v1 driver is tested end to end, with real
// enforcement (OOM kill, pids limit, CPU quota); the v2 driver runs for real on
// the controller-less cgroup2 mount (mkdir, join, cgroup.kill, rmdir) and its
// limit logic is tested as pure functions. Every cgroup and process a test
// makes is destroyed in afterEach, pass or fail.

import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import {
  findV1Mounts,
  findV2Root,
  parseMountinfo,
  parseProcCgroup,
} from "../../src/runtime/cgroups/detect.js";
import {
  type Cgroup,
  type CgroupLimits,
  type CgroupOptions,
  createCgroup,
  detectCgroupVersion,
  openCgroup,
  parseBytes,
  parseCpus,
  sharesToWeight,
  v1Files,
  v1Paths,
  v2Files,
  v2Paths,
} from "../../src/runtime/cgroups/index.js";
import { searchLeaf } from "../../src/runtime/cgroups/v1.js";
import { deviceRules } from "../../src/runtime/devices.js";

const MiB = 1024 * 1024;
const V1_ROOT = "/sys/fs/cgroup";
const UNIFIED = "/sys/fs/cgroup/unified";

const own = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8"));
const isV1Host = (() => {
  try {
    return detectCgroupVersion() === 1;
  } catch {
    return false;
  }
})();
const hasUnified = findV2Root(UNIFIED) === UNIFIED;

// ---- bookkeeping: everything made here is undone in afterEach ----

const cgroups: Cgroup[] = [];
const children: ChildProcess[] = [];
let seq = 0;
const newId = () => `t${process.pid}-${Date.now().toString(36)}-${seq++}`;

async function make(
  limits: CgroupLimits,
  options: CgroupOptions = {},
  id = newId(),
): Promise<Cgroup> {
  const cg = await createCgroup(id, limits, options);
  cgroups.push(cg);
  return cg;
}

afterEach(async () => {
  const errors: unknown[] = [];
  for (const cg of cgroups.splice(0)) await cg.destroy().catch((e: unknown) => errors.push(e));
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
  }
  if (errors.length > 0) throw errors[0];
});

interface Started {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
  /** Resolves with stdout once it contains a line matching re. */
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpMatchArray>;
}

/**
 * Start argv in the cgroup: a shell waits on stdin, its PID is written into
 * every procs file, then a line releases it and it execs argv (same PID).
 */
async function startIn(cg: Cgroup, argv: string[]): Promise<Started> {
  const child = spawn("/bin/sh", ["-c", 'read x; exec "$@"', "sh", ...argv], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const pid = child.pid as number;
  for (const f of cg.procsFiles) writeFileSync(f, String(pid));
  child.stdin?.end("go\n");
  const waitFor = async (re: RegExp, ms = 10_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = out.match(re);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${re} in output: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, pid, exited, output: () => out, waitFor };
}

const read = (file: string) => readFileSync(file, "utf8").trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dirOf = (cg: Cgroup, hierarchy: string) =>
  cg.dirs.find((d) => d.startsWith(`${V1_ROOT}/${hierarchy}/`)) as string;

/** Every directory named `minibox` or holding this test's ids anywhere under /sys/fs/cgroup. */
function miniboxDirs(): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const name of entries) {
      const full = path.join(dir, name);
      if (name === "minibox" || name.startsWith(`t${process.pid}-`)) out.push(full);
      walk(full, depth + 1);
    }
  };
  walk(V1_ROOT, 0);
  return out;
}

// ---- pure functions ----

describe("parseBytes", () => {
  const ok: Array<[string, number]> = [
    ["100", 100],
    ["100b", 100],
    ["512k", 512 * 1024],
    ["512K", 512 * 1024],
    ["80m", 80 * MiB],
    ["80mb", 80 * MiB],
    ["80MiB", 80 * MiB],
    ["80 m", 80 * MiB],
    ["1g", 1024 * MiB],
    ["1.5g", 1536 * MiB],
    ["0.5k", 512],
    ["0", 0],
  ];
  it.each(ok)("%s → %d", (text, bytes) => {
    expect(parseBytes(text, "--memory")).toBe(bytes);
  });

  const bad = ["", "abc", "1x", "1.5.5", "-5", "1e6", ".5g", "10 gb x", "1t", "k", "-1"];
  it.each(bad)("rejects %j with a clear message", (text) => {
    expect(() => parseBytes(text, "--memory")).toThrow(MiniboxError);
    expect(() => parseBytes(text, "--memory")).toThrow(
      `invalid --memory value "${text}": use a number with an optional unit b, k, m or g`,
    );
  });

  it("accepts -1 for --memory-swap only, names the flag, rejects overflow", () => {
    expect(parseBytes("-1", "--memory-swap")).toBe(-1);
    expect(() => parseBytes("x", "memory-swap")).toThrow('invalid --memory-swap value "x"');
    expect(() => parseBytes("99999999999g", "--memory")).toThrow(/too large/);
  });
});

describe("parseCpus", () => {
  const n = availableParallelism();
  const ok: Array<[string, number]> = [
    ["0.5", 50_000],
    ["1", 100_000],
    ["0.01", 1_000],
    ["0.015", 1_500],
    [".25", 25_000],
    [String(n), n * 100_000],
  ];
  it.each(ok)("%s → quota %d per 100000", (text, quota) => {
    expect(parseCpus(text)).toEqual({ cpuQuota: quota, cpuPeriod: 100_000 });
  });

  it.each(["0", "0.001", "-1", String(n + 1), "1000"])("rejects %s as out of range", (text) => {
    expect(() => parseCpus(text)).toThrow(MiniboxError);
    expect(() => parseCpus(text)).toThrow(
      new RegExp(`range of CPUs is from 0.01 to ${n}\\.00, as there (are|is) only ${n} CPU`),
    );
  });

  it.each(["", "abc", "1.5.5", "1e2", "half"])("rejects %j as not a number", (text) => {
    expect(() => parseCpus(text)).toThrow(`invalid --cpus value "${text}"`);
  });
});

describe("limits → cgroupfs files", () => {
  const v1: Array<[string, CgroupLimits, boolean, Array<[string, string]>]> = [
    ["nothing", {}, true, []],
    [
      "--memory 80m: swap total defaults to 2×",
      { memory: 80 * MiB },
      true,
      [
        ["memory.limit_in_bytes", "83886080"],
        ["memory.memsw.limit_in_bytes", "167772160"],
      ],
    ],
    [
      "--memory 80m --memory-swap 100m",
      { memory: 80 * MiB, memorySwap: 100 * MiB },
      true,
      [
        ["memory.limit_in_bytes", "83886080"],
        ["memory.memsw.limit_in_bytes", "104857600"],
      ],
    ],
    [
      "--memory-swap -1",
      { memory: 80 * MiB, memorySwap: -1 },
      true,
      [
        ["memory.limit_in_bytes", "83886080"],
        ["memory.memsw.limit_in_bytes", "-1"],
      ],
    ],
    [
      "no swap accounting",
      { memory: 80 * MiB, memorySwap: 100 * MiB },
      false,
      [["memory.limit_in_bytes", "83886080"]],
    ],
    [
      "--cpus 0.5 --cpu-shares 512 --pids-limit 10",
      { cpuQuota: 50_000, cpuShares: 512, pidsLimit: 10 },
      true,
      [
        ["cpu.cfs_period_us", "100000"],
        ["cpu.cfs_quota_us", "50000"],
        ["cpu.shares", "512"],
        ["pids.max", "10"],
      ],
    ],
    [
      "period only, unlimited pids",
      { cpuPeriod: 50_000, pidsLimit: 0 },
      true,
      [
        ["cpu.cfs_period_us", "50000"],
        ["pids.max", "max"],
      ],
    ],
    ["negative pids = unlimited", { pidsLimit: -1 }, true, [["pids.max", "max"]]],
  ];
  it.each(v1)("v1: %s", (_name, limits, memsw, files) => {
    expect(v1Files(limits, { memsw })).toEqual(files);
  });

  const v2: Array<[string, CgroupLimits, boolean, Array<[string, string]>]> = [
    ["nothing", {}, true, []],
    [
      "--memory 80m: swap defaults to as much as memory",
      { memory: 80 * MiB },
      true,
      [
        ["memory.max", "83886080"],
        ["memory.swap.max", "83886080"],
      ],
    ],
    [
      "--memory 80m --memory-swap 100m: swap.max is the difference",
      { memory: 80 * MiB, memorySwap: 100 * MiB },
      true,
      [
        ["memory.max", "83886080"],
        ["memory.swap.max", "20971520"],
      ],
    ],
    [
      "--memory-swap equal to --memory: no swap",
      { memory: 80 * MiB, memorySwap: 80 * MiB },
      true,
      [
        ["memory.max", "83886080"],
        ["memory.swap.max", "0"],
      ],
    ],
    [
      "--memory-swap -1",
      { memory: 80 * MiB, memorySwap: -1 },
      true,
      [
        ["memory.max", "83886080"],
        ["memory.swap.max", "max"],
      ],
    ],
    ["no swap accounting", { memory: 80 * MiB }, false, [["memory.max", "83886080"]]],
    [
      "--cpus 0.5 --cpu-shares 1024 --pids-limit 10",
      { cpuQuota: 50_000, cpuPeriod: 100_000, cpuShares: 1024, pidsLimit: 10 },
      true,
      [
        ["cpu.max", "50000 100000"],
        ["cpu.weight", "39"],
        ["pids.max", "10"],
      ],
    ],
    [
      "period only, unlimited pids",
      { cpuPeriod: 20_000, pidsLimit: 0 },
      true,
      [
        ["cpu.max", "max 20000"],
        ["pids.max", "max"],
      ],
    ],
  ];
  it.each(v2)("v2: %s", (_name, limits, swap, files) => {
    expect(v2Files(limits, { swap })).toEqual(files);
  });

  it.each([
    [2, 1],
    [1024, 39],
    [262_144, 10_000],
    [1, 1],
    [1_000_000, 10_000],
  ])("cpu.shares %d → cpu.weight %d (runc's formula, clamped)", (shares, weight) => {
    expect(sharesToWeight(shares)).toBe(weight);
  });
});

describe("cgroup paths and discovery", () => {
  const mountinfo = [
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    "34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices",
    "36 30 0:33 / /mnt/pids\\040x rw - cgroup cgroup rw,pids",
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate",
  ].join("\n");

  it("parses mountinfo (escapes, optional fields) and finds each v1 controller's mount", () => {
    const entries = parseMountinfo(mountinfo);
    expect(entries[4]?.mountPoint).toBe("/mnt/pids x");
    expect(entries[6]).toMatchObject({ fsType: "cgroup2", mountPoint: "/sys/fs/cgroup/unified" });
    const mounts = findV1Mounts("/sys/fs/cgroup", mountinfo);
    expect([...mounts.keys()].sort()).toEqual(["cpu", "cpuacct", "devices", "memory", "pids"]);
    expect(mounts.get("cpu")).toEqual(mounts.get("cpuacct"));
    expect(mounts.get("cpu")?.controllers).toEqual(["cpu", "cpuacct"]);
    expect(mounts.get("memory")?.root).toBe("/docker/abc");
    expect(mounts.get("pids")?.mountPoint).toBe("/mnt/pids x");
  });

  it("parses /proc/self/cgroup", () => {
    const m = parseProcCgroup(
      "4:memory:/process_api/x\n2:cpu,cpuacct:/\n1:name=systemd:/\n0::/a\n",
    );
    expect(m.get("memory")).toBe("/process_api/x");
    expect(m.get("cpuacct")).toBe("/");
    expect(m.get("name=systemd")).toBe("/");
    expect(m.get("")).toBe("/a");
  });

  it("v1: nests under the own cgroup, strips a bind-mount root, honours --cgroup-parent", () => {
    const cpu = { mountPoint: "/sys/fs/cgroup/cpu", root: "/", controllers: ["cpu"] };
    expect(v1Paths(cpu, "/", "c1")).toEqual({
      floor: "/sys/fs/cgroup/cpu",
      base: "/sys/fs/cgroup/cpu/minibox",
      leaf: "/sys/fs/cgroup/cpu/minibox/c1",
    });
    const mem = {
      mountPoint: "/sys/fs/cgroup/memory",
      root: "/docker/abc",
      controllers: ["memory"],
    };
    expect(v1Paths(mem, "/docker/abc/sub", "c1").leaf).toBe("/sys/fs/cgroup/memory/sub/minibox/c1");
    expect(v1Paths(cpu, "/user/1", "c1", "/my/group")).toEqual({
      floor: "/sys/fs/cgroup/cpu",
      base: "/sys/fs/cgroup/cpu/my/group",
      leaf: "/sys/fs/cgroup/cpu/my/group/c1",
    });
    expect(() => v1Paths(cpu, "/", "c1", "/../x")).toThrow(/invalid --cgroup-parent/);
  });

  it("v1: finds minibox/<id> made from another cgroup (breadth-first, not inside minibox dirs)", () => {
    const root = mkdtempSync(path.join(tmpdir(), "cgsearch-"));
    try {
      mkdirSync(path.join(root, "user.slice/session-2.scope/minibox/c1"), { recursive: true });
      mkdirSync(path.join(root, "minibox/c0/minibox/c2"), { recursive: true });
      mkdirSync(path.join(root, "a/b/c/d/minibox/c3"), { recursive: true });
      expect(searchLeaf(root, "c1")).toBe(path.join(root, "user.slice/session-2.scope/minibox/c1"));
      expect(searchLeaf(root, "c0")).toBe(path.join(root, "minibox/c0"));
      expect(searchLeaf(root, "c2")).toBeUndefined();
      expect(searchLeaf(root, "c3", 3)).toBeUndefined();
      expect(searchLeaf(root, "c3")).toBe(path.join(root, "a/b/c/d/minibox/c3"));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("v2: /minibox/<id> at the root, or under --cgroup-parent", () => {
    expect(v2Paths("/sys/fs/cgroup", "c1")).toEqual({
      levels: ["/sys/fs/cgroup", "/sys/fs/cgroup/minibox"],
      base: "/sys/fs/cgroup/minibox",
      leaf: "/sys/fs/cgroup/minibox/c1",
    });
    expect(v2Paths("/sys/fs/cgroup", "c1", "/a/b").levels).toEqual([
      "/sys/fs/cgroup",
      "/sys/fs/cgroup/a",
      "/sys/fs/cgroup/a/b",
    ]);
  });
});

// ---- the v1 driver on this machine ----

describe.runIf(isV1Host)("cgroup v1 driver (real kernel)", () => {
  it("detects v1 here: /sys/fs/cgroup is not cgroup2 and the unified mount lacks controllers", () => {
    expect(detectCgroupVersion()).toBe(1);
  });

  it("devices: the rules replace the inherited allow-all (devices.list shows exactly them)", async () => {
    const cg = await make({ devices: deviceRules([]) });
    const dir = dirOf(cg, "devices");
    const list = read(`${dir}/devices.list`).split("\n");
    expect(list).toContain("c 1:3 rwm");
    expect(list).toContain("c *:* m");
    expect(list).toContain("c 136:* rwm");
    expect(list).not.toContain("a *:* rwm");
    expect(list).not.toContain("c 10:183 rwm");
    await cg.destroy();
    expect(existsSync(dir)).toBe(false);
  });

  it("creates one dir per hierarchy under the own cgroup and writes the limits", async () => {
    const lines: string[] = [];
    const id = newId();
    const cg = await make(
      { memory: 80 * MiB, memorySwap: 100 * MiB, cpuQuota: 50_000, cpuShares: 512, pidsLimit: 64 },
      { trace: (l) => lines.push(l) },
      id,
    );
    expect(cg.version).toBe(1);
    const mounts = findV1Mounts();
    const expected = new Set<string>();
    for (const c of ["cpuset", "cpu", "cpuacct", "memory", "pids", "devices"]) {
      const mount = mounts.get(c);
      if (!mount) continue;
      expected.add(path.join(mount.mountPoint, own.get(c) ?? "/", "minibox", id));
    }
    expect(new Set(cg.dirs)).toEqual(expected);
    expect(cg.dirs).toHaveLength(expected.size); // co-mounted hierarchies only once
    expect(cg.procsFiles).toEqual(cg.dirs.map((d) => `${d}/cgroup.procs`));
    for (const d of cg.dirs) expect(existsSync(d)).toBe(true);

    const mem = dirOf(cg, "memory");
    expect(mem).toContain(`${own.get("memory")}/minibox/${id}`);
    expect(read(`${mem}/memory.limit_in_bytes`)).toBe(String(80 * MiB));
    if (existsSync(`${mem}/memory.memsw.limit_in_bytes`)) {
      expect(read(`${mem}/memory.memsw.limit_in_bytes`)).toBe(String(100 * MiB));
    }
    const cpu = dirOf(cg, "cpu");
    expect(read(`${cpu}/cpu.cfs_period_us`)).toBe("100000");
    expect(read(`${cpu}/cpu.cfs_quota_us`)).toBe("50000");
    expect(read(`${cpu}/cpu.shares`)).toBe("512");
    expect(read(`${dirOf(cg, "pids")}/pids.max`)).toBe("64");

    // cpuset: copied from the parent into the intermediate dir and the leaf.
    const cpuset = dirOf(cg, "cpuset");
    const top = path.join(mounts.get("cpuset")?.mountPoint as string, own.get("cpuset") ?? "/");
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      expect(read(`${top}/${f}`)).not.toBe("");
      expect(read(`${path.dirname(cpuset)}/${f}`)).toBe(read(`${top}/${f}`));
      expect(read(`${cpuset}/${f}`)).toBe(read(`${top}/${f}`));
    }

    expect(lines).toContain(`mkdir ${mem}`);
    expect(lines).toContain("write memory.limit_in_bytes = 83886080");
    expect(lines).toContain("write cpu.cfs_quota_us = 50000");
    expect(lines.indexOf("write cpu.cfs_period_us = 100000")).toBeLessThan(
      lines.indexOf("write cpu.cfs_quota_us = 50000"),
    );
  });

  it("defaults memory+swap to twice --memory", async () => {
    const cg = await make({ memory: 32 * MiB });
    const mem = dirOf(cg, "memory");
    if (!existsSync(`${mem}/memory.memsw.limit_in_bytes`)) return;
    expect(read(`${mem}/memory.memsw.limit_in_bytes`)).toBe(String(64 * MiB));
  });

  it("a process is placed in every hierarchy before it runs", async () => {
    const cg = await make({});
    const p = await startIn(cg, ["sleep", "30"]);
    const lines = parseProcCgroup(readFileSync(`/proc/${p.pid}/cgroup`, "utf8"));
    for (const c of ["memory", "cpu", "cpuacct", "pids", "cpuset"]) {
      expect(lines.get(c)).toMatch(new RegExp(`/minibox/${cg.dirs[0]?.split("/").pop()}$`));
    }
    expect(lines.get("memory")?.startsWith(own.get("memory") as string)).toBe(true);
    for (const f of cg.procsFiles) expect(read(f).split("\n")).toContain(String(p.pid));
  });

  it("OOM: a process allocating past --memory 20m is SIGKILLed and oomKilled() says so", async () => {
    const cg = await make({ memory: 20 * MiB });
    expect(cg.oomKilled()).toBe(false);
    const p = await startIn(cg, ["perl", "-e", '$x = "a" x (200 << 20); print "survived\\n"']);
    const result = await p.exited;
    expect(result.signal).toBe("SIGKILL");
    expect(p.output()).not.toContain("survived");
    expect(cg.oomKilled()).toBe(true);
  });

  it("pids: under --pids-limit 10 forks fail and the tree stays within 10", async () => {
    const cg = await make({ pidsLimit: 10 });
    const p = await startIn(cg, [
      "perl",
      "-e",
      `$| = 1; my ($ok, $fail) = (0, 0);
       for (1..30) { my $p = fork(); if (!defined $p) { $fail++; next } if ($p == 0) { sleep 60; exit 0 } $ok++ }
       print "ok=$ok fail=$fail\\n"; sleep 60;`,
    ]);
    const m = await p.waitFor(/ok=(\d+) fail=(\d+)/);
    const ok = Number(m[1]);
    const fail = Number(m[2]);
    expect(ok + fail).toBe(30);
    expect(ok).toBe(9); // the parent plus 9 children = 10
    expect(fail).toBe(21);
    const pidsDir = dirOf(cg, "pids");
    expect(Number(read(`${pidsDir}/pids.current`))).toBeLessThanOrEqual(10);
    expect(cg.stats().pids).toBe(10);
    const inside = read(`${pidsDir}/cgroup.procs`).split("\n").map(Number);
    expect(inside).toHaveLength(10);

    // destroy() kills the whole tree, not just the process we started.
    await cg.destroy();
    expect((await p.exited).signal).toBe("SIGKILL");
    for (const pid of inside) {
      let state = "gone";
      try {
        state = read(`/proc/${pid}/stat`).replace(/^.*\) /, "")[0] as string;
      } catch {}
      expect(["gone", "Z", "X"]).toContain(state);
    }
    for (const d of cg.dirs) expect(existsSync(d)).toBe(false);
  });

  it("cpu: --cpus 0.5 holds a busy loop to about half a core", async () => {
    const cg = await make(parseCpus("0.5"));
    await startIn(cg, ["perl", "-e", "1 while 1"]);
    await sleep(300);
    const u0 = cg.stats().cpuUsageNs;
    const t0 = process.hrtime.bigint();
    await sleep(1500);
    const u1 = cg.stats().cpuUsageNs;
    const t1 = process.hrtime.bigint();
    const ratio = (u1 - u0) / Number(t1 - t0);
    expect(ratio).toBeGreaterThan(0.3);
    expect(ratio).toBeLessThan(0.7);
    const cpuStat = read(`${dirOf(cg, "cpu")}/cpu.stat`);
    expect(Number(/nr_throttled (\d+)/.exec(cpuStat)?.[1])).toBeGreaterThan(0);
  });

  it("stats() returns sane numbers", async () => {
    const cg = await make({ memory: 64 * MiB, pidsLimit: 20 });
    const p = await startIn(cg, [
      "perl",
      "-e",
      'use Time::HiRes "time"; $| = 1; $x = "a" x (10 << 20); my $t = time; 1 while time - $t < 1; print "ready\\n"; sleep 60',
    ]);
    await p.waitFor(/ready/);
    const s = cg.stats();
    expect(s.memoryLimit).toBe(64 * MiB);
    expect(s.memoryUsage).toBeGreaterThan(10 * MiB);
    expect(s.memoryUsage).toBeLessThan(64 * MiB);
    expect(s.cpuUsageNs).toBeGreaterThan(100_000_000); // busy for ~1 s
    expect(s.pids).toBe(1);
    const unlimited = await make({});
    expect(unlimited.stats().memoryLimit).toBe((await import("node:os")).totalmem());
  });

  it("destroy() kills leftovers, removes every dir (and the empty minibox dirs), and is idempotent", async () => {
    const lines: string[] = [];
    const cg = await make({ memory: 32 * MiB }, { trace: (l) => lines.push(l) });
    const p = await startIn(cg, ["sleep", "60"]);
    await cg.destroy();
    expect((await p.exited).signal).toBe("SIGKILL");
    for (const d of cg.dirs) {
      expect(existsSync(d)).toBe(false);
      expect(existsSync(path.dirname(d))).toBe(false); // the minibox dir was empty
    }
    expect(lines).toContain(`kill -KILL ${p.pid}`);
    expect(lines).toContain(`rmdir ${dirOf(cg, "memory")}`);
    await cg.destroy();
    await Promise.all([cg.destroy(), cg.destroy()]);
  });

  it("keeps a minibox dir that still holds another container", async () => {
    const a = await make({});
    const b = await make({});
    await a.destroy();
    for (const d of a.dirs) expect(existsSync(d)).toBe(false);
    for (const d of b.dirs) {
      expect(existsSync(d)).toBe(true);
      expect(existsSync(path.dirname(d))).toBe(true);
    }
    await b.destroy();
    for (const d of b.dirs) expect(existsSync(path.dirname(d))).toBe(false);
  });

  it("openCgroup() reopens a container's cgroup for stats and cleanup", async () => {
    const id = newId();
    const cg = await make({ memory: 32 * MiB }, {}, id);
    const p = await startIn(cg, ["sleep", "60"]);
    const again = openCgroup(id);
    expect(again?.version).toBe(1);
    expect(new Set(again?.dirs)).toEqual(new Set(cg.dirs));
    expect(again?.stats().pids).toBe(1);
    expect(again?.stats().memoryLimit).toBe(32 * MiB);
    expect(again?.oomKilled()).toBe(false);
    await again?.destroy();
    expect((await p.exited).signal).toBe("SIGKILL");
    for (const d of cg.dirs) expect(existsSync(d)).toBe(false);
    expect(openCgroup(id)).toBeUndefined();
    expect(openCgroup(newId())).toBeUndefined();
  });

  it("a write the kernel refuses fails with a clear error and leaves nothing behind", async () => {
    const id = newId();
    const lines: string[] = [];
    const err = await createCgroup(
      id,
      { memory: 32 * MiB, pidsLimit: 10_000_000_000 },
      {
        trace: (l) => lines.push(l),
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MiniboxError);
    expect((err as Error).message).toMatch(
      /cannot set .*pids\.max to 10000000000: the kernel refused/,
    );
    const made = lines.filter((l) => l.startsWith("mkdir ")).map((l) => l.slice(6));
    expect(made.length).toBeGreaterThan(0);
    for (const d of made) expect(existsSync(d)).toBe(false);
    expect(miniboxDirs()).toEqual([]);
  });

  it("refuses an existing id without touching it", async () => {
    const id = newId();
    const cg = await make({}, {}, id);
    await expect(createCgroup(id, {})).rejects.toThrow(/already exists/);
    for (const d of cg.dirs) expect(existsSync(d)).toBe(true);
  });

  it.each<[string, CgroupLimits, RegExp]>([
    ["--memory 1k", { memory: 1024 }, /--memory 1k is below the minimum of 6m/],
    ["--memory-swap alone", { memorySwap: 64 * MiB }, /--memory-swap needs --memory/],
    [
      "--memory-swap < --memory",
      { memory: 64 * MiB, memorySwap: 32 * MiB },
      /--memory-swap 32m is smaller than --memory 64m/,
    ],
    ["a quota under 1 ms", { cpuQuota: 500 }, /below the kernel's minimum of 1000µs/],
  ])("rejects %s before creating anything", async (_name, limits, message) => {
    await expect(createCgroup(newId(), limits)).rejects.toThrow(message);
    expect(miniboxDirs()).toEqual([]);
  });

  it.each(["../escape", "a/b", "", ".hidden", "x".repeat(200)])(
    "rejects the container id %j",
    async (id) => {
      await expect(createCgroup(id, {})).rejects.toThrow(/invalid container id/);
      expect(() => openCgroup(id)).toThrow(/invalid container id/);
    },
  );
});

// ---- the v2 driver on this machine's (controller-less) cgroup2 mount ----

describe.runIf(hasUnified)("cgroup v2 driver on the unified mount (no controllers)", () => {
  it("is detected as v2 when pointed at a cgroup2 mount", () => {
    expect(detectCgroupVersion(UNIFIED)).toBe(2);
  });

  it("creates /minibox/<id>, joins a process, reports stats, kills with cgroup.kill, removes it", async () => {
    const lines: string[] = [];
    const id = newId();
    const cg = await make({}, { fsRoot: UNIFIED, trace: (l) => lines.push(l) }, id);
    expect(cg.version).toBe(2);
    expect(cg.dirs).toEqual([`${UNIFIED}/minibox/${id}`]);
    expect(cg.procsFiles).toEqual([`${UNIFIED}/minibox/${id}/cgroup.procs`]);
    const p = await startIn(cg, ["sleep", "60"]);
    expect(parseProcCgroup(readFileSync(`/proc/${p.pid}/cgroup`, "utf8")).get("")).toBe(
      `/minibox/${id}`,
    );
    const s = cg.stats();
    expect(s.pids).toBe(1);
    expect(s.cpuUsageNs).toBeGreaterThanOrEqual(0);
    expect(cg.oomKilled()).toBe(false);
    expect(openCgroup(id, { fsRoot: UNIFIED })?.dirs).toEqual(cg.dirs);
    await cg.destroy();
    expect((await p.exited).signal).toBe("SIGKILL");
    expect(lines).toContain("write cgroup.kill = 1");
    expect(existsSync(cg.dirs[0] as string)).toBe(false);
    expect(existsSync(`${UNIFIED}/minibox`)).toBe(false);
    expect(openCgroup(id, { fsRoot: UNIFIED })).toBeUndefined();
  });

  it("names the missing controller when a limit needs it", async () => {
    await expect(make({ memory: 64 * MiB }, { fsRoot: UNIFIED })).rejects.toThrow(
      'cgroup controller "memory" is not available',
    );
    await expect(make({ pidsLimit: 5 }, { fsRoot: UNIFIED })).rejects.toThrow(
      'cgroup controller "pids" is not available',
    );
    expect(existsSync(`${UNIFIED}/minibox`)).toBe(false);
  });
});
