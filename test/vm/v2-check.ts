// Runs inside the QEMU VM (pure cgroup v2, see test/vm/qemu.ts), bundled into
// one file with esbuild: drives minibox's own cgroup code
// (src/runtime/cgroups) against a real cgroup2 filesystem and prints what it
// observed as one JSON line after V2_CHECK_MARKER. It asserts nothing itself:
// test/integration/cgroups-v2-vm.test.ts judges the observations.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  type Cgroup,
  type CgroupLimits,
  createCgroup,
  detectCgroupVersion,
  openCgroup,
} from "../../src/runtime/cgroups/index.js";
import { V2_CHECK_MARKER, type V2CheckResult } from "./v2-check-result.js";

const ROOT = "/sys/fs/cgroup";
const MiB = 1024 * 1024;

const result: V2CheckResult = {
  kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
  mounts: readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .filter((l) => l.includes("cgroup")),
  version: undefined,
  rootControllers: words(read(path.join(ROOT, "cgroup.controllers"))),
  errors: [],
  steps: {},
};

function read(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

function words(text: string | undefined): string[] {
  return (text ?? "").split(/\s+/).filter(Boolean);
}

function keyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

function procs(cg: Cgroup): number[] {
  return cg.procsFiles.flatMap((f) => words(read(f)).map(Number));
}

const now = () => Number(process.hrtime.bigint() / 1_000_000n);

async function step(name: string, fn: () => Promise<void> | void): Promise<void> {
  const t0 = now();
  try {
    await fn();
  } catch (err) {
    result.errors.push(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
  }
  result.steps[name] = now() - t0;
}

interface Child {
  proc: ChildProcess;
  out: { stdout: string; stderr: string };
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Start `sh -c script`; the script must begin with `read go`, so that it runs
 * no user code before join() has put it into the cgroup, as minibox does.
 */
function startShell(script: string): Child {
  const proc = spawn("/bin/sh", ["-c", script], { stdio: ["pipe", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  proc.stdout?.on("data", (d) => {
    out.stdout += d;
  });
  proc.stderr?.on("data", (d) => {
    out.stderr += d;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { proc, out, exit };
}

/** Write the PID into every procs file (what minibox does before the container's process runs), then let it go. */
function join(child: Child, cg: Cgroup): string {
  for (const f of cg.procsFiles) writeFileSync(f, String(child.proc.pid));
  const own = read(`/proc/${child.proc.pid}/cgroup`)?.trim() ?? "";
  child.proc.stdin?.write("go\n");
  return own;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no exit within ${ms} ms`)), ms);
    }),
  ]);
}

const waitFor = async (cond: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

async function destroyAndObserve(cg: Cgroup, trace: string[]) {
  const pidsBefore = procs(cg);
  const traceStart = trace.length;
  await cg.destroy();
  return {
    pidsBefore,
    pidsAliveAfter: pidsBefore.filter((p) => existsSync(`/proc/${p}`) && isNotZombie(p)),
    dirsExistAfter: cg.dirs.map((d) => existsSync(d)),
    trace: trace.slice(traceStart),
  };
}

function isNotZombie(pid: number): boolean {
  const stat = read(`/proc/${pid}/stat`);
  return stat !== undefined && !/^\d+ \(.*\) Z /.test(stat);
}

async function main(): Promise<void> {
  const trace: string[] = [];
  const options = { trace: (line: string) => trace.push(line) };
  const cleanup: Cgroup[] = [];
  const children: Child[] = [];

  await step("detect", () => {
    result.version = detectCgroupVersion();
  });

  // 1. Every limit at once: files, subtree_control, stats with a live process, destroy with it alive.
  await step("limits", async () => {
    const limits: CgroupLimits = {
      memory: 20 * MiB,
      cpuQuota: 50_000,
      cpuPeriod: 100_000,
      cpuShares: 512,
      pidsLimit: 10,
    };
    const cg = await createCgroup("vm-limits", limits, options);
    cleanup.push(cg);
    const leaf = cg.dirs[0] ?? "";
    const base = path.dirname(leaf);
    const files: Record<string, string | undefined> = {};
    for (const f of ["memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max"]) {
      files[f] = read(path.join(leaf, f))?.trim();
    }
    const rootSubtreeControl = words(read(path.join(ROOT, "cgroup.subtree_control")));
    const baseSubtreeControl = words(read(path.join(base, "cgroup.subtree_control")));
    const leafControllers = words(read(path.join(leaf, "cgroup.controllers")));
    // Some CPU time, then stay alive as one process for stats() and destroy().
    const child = startShell(
      "read go; i=0; while [ $i -lt 500 ]; do i=$((i+1)); done; echo busy-done; exec sleep 600",
    );
    children.push(child);
    const procCgroup = join(child, cg);
    // The same id again must fail without touching the live one; openCgroup finds it.
    let duplicate = "(no error)";
    await createCgroup("vm-limits", {}, options).then(
      (dup) => {
        cleanup.push(dup);
      },
      (err: unknown) => {
        duplicate = err instanceof Error ? err.message : String(err);
      },
    );
    const afterDuplicate = { leafExists: existsSync(leaf), procs: procs(cg).length };
    const reopened = openCgroup("vm-limits", options);
    const reopen = {
      dirs: reopened?.dirs,
      procsFiles: reopened?.procsFiles,
      missing: openCgroup("vm-no-such-id", options) === undefined,
    };
    const busyDone = await waitFor(() => child.out.stdout.includes("busy-done"), 30_000);
    // The exec of sleep after the echo: give it a moment to replace the shell.
    await waitFor(() => read(`/proc/${child.proc.pid}/cmdline`)?.split("\0")[0] === "sleep", 5_000);
    const stats = cg.stats();
    const destroy = await destroyAndObserve(cg, trace);
    const exit = await withTimeout(child.exit, 5_000, "limits child");
    result.limits = {
      version: cg.version,
      dirs: cg.dirs,
      procsFiles: cg.procsFiles,
      rootSubtreeControl,
      baseSubtreeControl,
      leafControllers,
      files,
      procCgroup,
      busyDone,
      stats,
      destroy,
      baseExistsAfter: existsSync(base),
      exit,
      duplicate,
      afterDuplicate,
      reopen,
    };
  });

  // 2. --cgroup-parent naming a cgroup that has processes: the no-internal-process rule.
  await step("busyParent", async () => {
    const busy = path.join(ROOT, "vm-busy-parent");
    mkdirSync(busy);
    const child = startShell("read go; exec sleep 600");
    children.push(child);
    writeFileSync(path.join(busy, "cgroup.procs"), String(child.proc.pid));
    let error = "(no error)";
    try {
      const cg = await createCgroup(
        "vm-child",
        { memory: 20 * MiB },
        { ...options, parent: "/vm-busy-parent" },
      );
      cleanup.push(cg);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const leftover = existsSync(path.join(busy, "vm-child"));
    child.proc.kill("SIGKILL");
    await withTimeout(child.exit, 5_000, "busy-parent child");
    await waitFor(() => words(read(path.join(busy, "cgroup.procs"))).length === 0, 5_000);
    rmdirSync(busy);
    result.busyParent = { error, leftover };
  });

  // 3. A process that outgrows --memory 20m is killed by the kernel's OOM killer.
  await step("oom", async () => {
    const cg = await createCgroup("vm-oom", { memory: 20 * MiB }, options);
    cleanup.push(cg);
    const child = startShell("read go; x=a; while :; do x=$x$x; done");
    children.push(child);
    const procCgroup = join(child, cg);
    const exit = await withTimeout(child.exit, 60_000, "oom child");
    const leaf = cg.dirs[0] ?? "";
    result.oom = {
      procCgroup,
      exit,
      oomKilled: cg.oomKilled(),
      memoryEvents: keyed(read(path.join(leaf, "memory.events"))),
      memoryMax: read(path.join(leaf, "memory.max"))?.trim(),
      destroy: await destroyAndObserve(cg, trace),
    };
  });

  // 4. --pids-limit 10: the 10th task cannot be forked.
  await step("pids", async () => {
    const cg = await createCgroup("vm-pids", { pidsLimit: 10 }, options);
    cleanup.push(cg);
    const child = startShell(
      'read go; n=0; while [ $n -lt 20 ]; do sleep 600 & n=$((n+1)); echo "started $n"; done; echo finished',
    );
    children.push(child);
    const procCgroup = join(child, cg);
    const exit = await withTimeout(child.exit, 30_000, "pids child");
    const leaf = cg.dirs[0] ?? "";
    result.pids = {
      procCgroup,
      exit,
      stdout: child.out.stdout,
      stderr: child.out.stderr,
      pidsMax: read(path.join(leaf, "pids.max"))?.trim(),
      pidsCurrent: Number(read(path.join(leaf, "pids.current"))),
      pidsEvents: keyed(read(path.join(leaf, "pids.events"))),
      procsLeft: procs(cg).length,
      statsPids: cg.stats().pids,
      oomKilled: cg.oomKilled(),
      destroy: await destroyAndObserve(cg, trace),
    };
  });

  // Whatever a failed step left behind (the VM powers off anyway); miniboxDirAfter tells.
  for (const cg of cleanup) await cg.destroy().catch(() => {});
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  result.miniboxDirAfter = existsSync(path.join(ROOT, "minibox"));
  result.trace = trace;
}

main()
  .catch((err) => {
    result.errors.push(`main: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
  })
  .finally(() => {
    // One line, written synchronously before init powers the machine off.
    writeFileSync(1, `\n${V2_CHECK_MARKER}${JSON.stringify(result)}\n`);
    process.exit(0);
  });
