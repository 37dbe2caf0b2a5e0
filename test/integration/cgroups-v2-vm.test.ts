// The cgroup v2 driver on a real pure-v2 kernel. This project's machines are
// v1 hybrids, where the v2 driver can only run on a controller-less cgroup2
// mount (cgroups.test.ts); here Debian's stock kernel boots under QEMU (TCG,
// no network device) with cgroup2 alone at /sys/fs/cgroup, as on Debian 12,
// Ubuntu 22.04+ and Fedora. Inside, test/vm/v2-check.ts drives minibox's own
// driver (src/runtime/cgroups) and test/vm/cli-check.ts the built CLI; both
// report JSON on the console, judged here. One boot serves every test.
// Needs root, qemu-system-x86 (scripts/setup.sh --test) and the kernel .deb,
// which the first run fetches with `apt-get download` into rootfs-cache/vm/.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { CliRun } from "../vm/cli-check-result.js";
import { QEMU } from "../vm/qemu.js";
import type { V2CheckResult } from "../vm/v2-check-result.js";
import { runV2Vm, type V2Vm } from "../vm/v2-vm.js";

const MiB = 1024 * 1024;

let vm: V2Vm | undefined;
const abort = new AbortController();

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("the cgroup v2 VM test runs as root");
  if (spawnSync(QEMU, ["--version"]).status !== 0) {
    throw new Error(`${QEMU} is not installed: run scripts/setup.sh --test (qemu-system-x86)`);
  }
  vm = await runV2Vm({ signal: abort.signal, timeoutMs: 100_000 });
  const t = vm.timings;
  console.log(
    `cgroup v2 VM: kernel ${vm.kernel.release} (${vm.kernel.vmlinux ? "vmlinux, PVH" : "bzImage"}) ` +
      `${t.kernel} ms, initramfs ${(vm.initramfsBytes / MiB).toFixed(0)} MiB ${t.initramfs} ms, ` +
      `boot + checks ${t.vm} ms` +
      (vm.v2 ? `; v2-check steps ${JSON.stringify(vm.v2.steps)}` : "") +
      (vm.cli
        ? `; CLI ${Object.entries(vm.cli.runs)
            .map(([k, r]) => `${k} ${r.ms} ms`)
            .join(", ")}`
        : ""),
  );
}, 180_000);

afterAll(() => abort.abort());

/** The console's tail, for failure messages: what the VM said. */
function consoleTail(): string {
  return `\n--- VM console (tail) ---\n${(vm?.console ?? "(no VM)").slice(-4000)}`;
}

function v2(): V2CheckResult {
  const r = vm?.v2;
  if (!r) {
    throw new Error(
      `v2-check printed no result (QEMU ${JSON.stringify(vm?.qemu)}, ${vm?.parseErrors.join("; ")})${consoleTail()}`,
    );
  }
  return r;
}

function cliRun(name: string): CliRun {
  const r = vm?.cli?.runs[name];
  if (!r) {
    throw new Error(
      `cli-check has no "${name}" run: ${vm?.cli?.error ?? "no result"}${consoleTail()}`,
    );
  }
  return r;
}

const describeRun = (r: CliRun) =>
  `minibox ${r.args.join(" ")} → ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe("the VM", () => {
  test("booted the stock kernel with cgroup2 alone at /sys/fs/cgroup, and powered off by itself", () => {
    const r = v2();
    expect(vm?.qemu, consoleTail()).toEqual({ code: 0, killed: false });
    expect(r.kernel).toBe(vm?.kernel.release);
    expect(r.mounts).toHaveLength(1);
    expect(r.mounts[0]).toMatch(/^cgroup2 \/sys\/fs\/cgroup cgroup2 /);
    expect(r.rootControllers).toEqual(expect.arrayContaining(["cpuset", "cpu", "memory", "pids"]));
    expect(r.errors, r.errors.join("\n")).toEqual([]);
  });
});

describe("the v2 driver on a real cgroup2 filesystem", () => {
  test("detectCgroupVersion() is 2", () => {
    expect(v2().version).toBe(2);
  });

  test("createCgroup makes /sys/fs/cgroup/minibox/<id> with the controllers enabled top-down", () => {
    const l = v2().limits;
    expect(l, v2().errors.join("\n")).toBeDefined();
    if (!l) return;
    expect(l.version).toBe(2);
    expect(l.dirs).toEqual(["/sys/fs/cgroup/minibox/vm-limits"]);
    expect(l.procsFiles).toEqual(["/sys/fs/cgroup/minibox/vm-limits/cgroup.procs"]);
    for (const c of ["cpu", "memory", "pids"]) {
      expect(l.rootSubtreeControl, "root subtree_control").toContain(c);
      expect(l.baseSubtreeControl, "minibox/ subtree_control").toContain(c);
      expect(l.leafControllers, "leaf cgroup.controllers").toContain(c);
    }
  });

  test("writes memory.max, memory.swap.max, cpu.max, cpu.weight and pids.max, read back from the kernel", () => {
    const l = v2().limits;
    expect(l?.files).toEqual({
      "memory.max": String(20 * MiB),
      // Docker's default --memory-swap is twice --memory: v2 limits the swap part alone.
      "memory.swap.max": String(20 * MiB),
      "cpu.max": "50000 100000",
      // runc's conversion of --cpu-shares 512.
      "cpu.weight": "20",
      "pids.max": "10",
    });
  });

  test("a process written into procsFiles is in the cgroup", () => {
    const r = v2();
    expect(r.limits?.procCgroup).toBe("0::/minibox/vm-limits");
    expect(r.oom?.procCgroup).toBe("0::/minibox/vm-oom");
    expect(r.pids?.procCgroup).toBe("0::/minibox/vm-pids");
  });

  test("the same id twice is refused without harm to the live cgroup; openCgroup finds it", () => {
    const l = v2().limits;
    expect(l?.duplicate).toMatch(/a cgroup for container vm-limits already exists/);
    expect(l?.afterDuplicate).toEqual({ leafExists: true, procs: 1 });
    expect(l?.reopen).toEqual({
      dirs: ["/sys/fs/cgroup/minibox/vm-limits"],
      procsFiles: ["/sys/fs/cgroup/minibox/vm-limits/cgroup.procs"],
      missing: true,
    });
  });

  test("a --cgroup-parent with processes of its own gets a clear error (no internal processes), nothing left", () => {
    const b = v2().busyParent;
    expect(b, v2().errors.join("\n")).toBeDefined();
    expect(b?.error).toMatch(
      /cannot enable .*memory.* for the children of \/sys\/fs\/cgroup\/vm-busy-parent: it has processes of its own/,
    );
    expect(b?.leftover).toBe(false);
  });

  test("stats() reports the live process's memory, CPU time, task count and the limit", () => {
    const l = v2().limits;
    expect(l?.busyDone).toBe(true);
    const s = l?.stats;
    expect(s?.memoryLimit).toBe(20 * MiB);
    expect(s?.memoryUsage).toBeGreaterThan(0);
    expect(s?.memoryUsage).toBeLessThan(20 * MiB);
    expect(s?.cpuUsageNs).toBeGreaterThan(0);
    expect(s?.pids).toBe(1);
  });

  test("a process that outgrows a 20 MB limit is OOM-killed, and oomKilled() says so", () => {
    const o = v2().oom;
    expect(o, v2().errors.join("\n")).toBeDefined();
    expect(o?.memoryMax).toBe(String(20 * MiB));
    expect(o?.exit).toEqual({ code: null, signal: "SIGKILL" });
    expect(o?.memoryEvents.oom_kill).toBeGreaterThanOrEqual(1);
    expect(o?.oomKilled).toBe(true);
    // …and only then: the pids cgroup had no memory limit and nothing was OOM-killed there.
    expect(v2().pids?.oomKilled).toBe(false);
  });

  test("a pids limit of 10 stops the 10th task: the shell forks 9 children, then fork fails", () => {
    const p = v2().pids;
    expect(p, v2().errors.join("\n")).toBeDefined();
    if (!p) return;
    expect(p.pidsMax).toBe("10");
    expect(p.stdout.trim().split("\n").at(-1)).toBe("started 9");
    expect(p.stderr).toMatch(/can't fork/);
    expect(p.exit.code).not.toBe(0);
    expect(p.pidsEvents.max).toBeGreaterThanOrEqual(1);
    // The shell has exited; its 9 sleeps are still there until destroy().
    expect(p.procsLeft).toBe(9);
    expect(p.pidsCurrent).toBe(9);
    expect(p.statsPids).toBe(9);
  });

  test("destroy() kills what is left through cgroup.kill and removes the directories", () => {
    const r = v2();
    for (const [name, d] of [
      ["limits", r.limits?.destroy],
      ["pids", r.pids?.destroy],
    ] as const) {
      expect(d?.pidsBefore.length, name).toBeGreaterThan(0);
      expect(d?.trace, name).toContain("write cgroup.kill = 1");
      expect(d?.pidsAliveAfter, name).toEqual([]);
      expect(d?.dirsExistAfter, name).toEqual([false]);
    }
    expect(r.pids?.destroy.pidsBefore).toHaveLength(9);
    expect(r.limits?.exit.signal).toBe("SIGKILL");
    // An empty cgroup needs no kill, only rmdir.
    expect(r.oom?.destroy.trace).not.toContain("write cgroup.kill = 1");
    expect(r.oom?.destroy.dirsExistAfter).toEqual([false]);
    // The shared minibox/ directory goes with the last container.
    expect(r.limits?.baseExistsAfter).toBe(false);
    expect(r.miniboxDirAfter).toBe(false);
  });
});

describe("the minibox CLI on a pure cgroup v2 machine", () => {
  test("import makes an image from a busybox rootfs tarball", () => {
    const r = cliRun("import");
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test("run … cat /proc/self/cgroup shows the container at the root of its cgroup namespace", () => {
    const r = cliRun("cgroup");
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toBe("0::/\n");
  });

  test("run -m 20m with a memory hog exits 137 and says OOM killed", () => {
    const r = cliRun("oom");
    expect(r.code, describeRun(r)).toBe(137);
    expect(r.stderr).toMatch(/OOM killed/);
  });

  test("run -m 64m --cpus 0.5 -c 512 --pids-limit 10: the kernel holds those limits while it runs", () => {
    const r = cliRun("limits");
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toBe("got go\n0::/\n");
    expect(r.observed?.leaf).toMatch(/^\/sys\/fs\/cgroup\/minibox\/[^/]+$/);
    expect(r.observed).toMatchObject({
      "memory.max": String(64 * MiB),
      "memory.swap.max": String(64 * MiB),
      "cpu.max": "50000 100000",
      "cpu.weight": "20",
      "pids.max": "10",
    });
  });

  test("every container's cgroup and mount is gone afterwards", () => {
    expect(vm?.cli?.error).toBeUndefined();
    expect(vm?.cli?.miniboxCgroupAfter).toBe(false);
    expect(vm?.cli?.mountsAfter).toEqual([]);
  });
});
