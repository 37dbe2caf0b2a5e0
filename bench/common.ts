// What the benchmarks in bench/ share: option parsing, running and timing
// commands (hyperfine rounds), statistics and Markdown tables, podman's
// isolated configuration, and the bookkeeping that finds and removes what a
// run leaves behind (mounts, cgroups, processes), checked against a snapshot
// taken at the start. See bench/README.md.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  type Dirent,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type RunningTestEnv, startTestEnv } from "../test/support/env.js";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PROJECT = path.resolve(HERE, "..");
export const DIST = path.join(PROJECT, "dist");
/** tsc's output, as the issues name it. */
export const CLI = path.join(DIST, "cli", "main.js");
/** The bundle (esbuild) that the ./minibox launcher runs. */
export const BUNDLE = path.join(DIST, "minibox.mjs");
export const LAUNCHER = path.join(PROJECT, "minibox");
/** The executor, which stays behind as the monitor of a detached container. */
export const EXECUTOR = path.join(PROJECT, "native", "build", "minibox-exec");

// ---- options (after "--" on the command line) ---------------------------------

export function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function intOption(name: string, fallback: number, min: number): number {
  const text = option(name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} wants an integer ≥ ${min}`);
  return n;
}

export const flag = (name: string) => process.argv.includes(name);

/** Every bench's: --out FILE also writes the Markdown results to FILE. */
export const OUT = option("--out");
/** Every bench's: --keep keeps the work dir. */
export const KEEP = flag("--keep");

/**
 * Checks that the build outputs a bench runs exist, then starts the project's
 * test environment (a real docker-registry on 127.0.0.1 with the fixtures).
 */
export async function startRegistry(work: string, needs: string[]): Promise<RunningTestEnv> {
  for (const file of needs)
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  process.stderr.write(`work dir ${work}; starting the test registry…\n`);
  const running = await startTestEnv();
  process.stderr.write(`test env ready in ${running.env.setupMs} ms\n`);
  return running;
}

// ---- running commands (untimed) -----------------------------------------------------

/** The first line a command prints (stdout, else stderr): versions for the report. */
export function firstLine(file: string, args: string[]): string {
  const r = spawnSync(file, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n")[0] ?? "?";
}

/** Runs a command to completion (untimed); throws with its stderr when it fails. */
export function must(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(file, args, { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0) {
    throw new Error(
      `${file} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${(r.stderr ?? "").trim()}`,
    );
  }
  return r.stdout;
}

/** Untimed: flush dirty pages so one round's writeback does not land in the next. */
export function settle(): void {
  spawnSync("sync");
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ends `child` (by its PID, SIGTERM) if it still runs, and waits for it. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

// ---- minibox's --trace lines, and timed spawns that collect them ---------------------

export interface TraceLine {
  /** ms since the process's time origin: a node-side step's end, an executor step's start. */
  at: number;
  /** The step's duration, when the line has one. */
  took?: number;
  text: string;
}

/** `[trace  T ms]  D ms  step` (D optional). */
export function parseTrace(stderr: string): TraceLine[] {
  const out: TraceLine[] = [];
  for (const line of stderr.split("\n")) {
    const m = /^\[trace\s+([\d.]+) ms\]\s+(?:([\d.]+) ms)?\s+(.*)$/.exec(line);
    if (m) out.push({ at: Number(m[1]), took: m[2] ? Number(m[2]) : undefined, text: m[3] ?? "" });
  }
  return out;
}

/**
 * Spawns a command (stdout ignored) and resolves with its wall time until
 * it exited, its stderr and its exit code; `track` sees the child while it runs.
 */
export function spawnTimed(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  track?: (c?: ChildProcess) => void,
): Promise<{ ms: number; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ms = 0;
    const child = spawn(file, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    track?.(child);
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", () => {
      ms = performance.now() - t0;
    });
    child.on("close", (code) => {
      track?.(undefined);
      resolve({ ms, stderr, code });
    });
  });
}

// ---- statistics and tables --------------------------------------------------------

export interface Stats {
  median: number;
  min: number;
  max: number;
  /** Nearest-rank 90th percentile. */
  p90: number;
  all: number[];
  /** Median CPU time (user + sys), when measured. */
  cpu?: number;
}

export function median(all: number[]): number {
  const sorted = [...all].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile. */
export function percentile(all: number[], p: number): number {
  const sorted = [...all].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export function stats(all: number[], cpu?: number[]): Stats {
  return {
    median: median(all),
    min: Math.min(...all),
    max: Math.max(...all),
    p90: percentile(all, 90),
    all,
    cpu: cpu && median(cpu),
  };
}

export const ms = (n: number) => `${Math.round(n)}`;
export const ms1 = (n: number) => n.toFixed(1);
export const kb = (n: number) => `${Math.round(n)}`;
export const ratio = (a: number, b: number) => (a / b).toFixed(2);
/** Rotates `items` by `k`: round k starts with a different command. */
export const rotate = <T>(items: readonly T[], k: number): T[] =>
  items.map((_, i) => items[(i + k) % items.length] as T);
/** A word for hyperfine -N, which splits command lines like a shell. */
export const quote = (s: string) =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
/** One row of a Markdown table. */
export const row = (cells: string[]) => `| ${cells.join(" | ")} |`;

/** A table of wall times (ms): one row per command, labelled, in the order given. */
export function timesTable<T extends string>(
  order: readonly T[],
  label: (t: T) => string,
  times: Record<T, Stats>,
): string[] {
  return [
    row(["command", "median", "min", "p90", "CPU median", "rounds, in order"]),
    "| --- | ---: | ---: | ---: | ---: | --- |",
    ...order.map((t) => {
      const s = times[t];
      const cpu = s.cpu === undefined ? "" : ms(s.cpu);
      return row([label(t), ms(s.median), ms(s.min), ms(s.p90), cpu, s.all.map(ms).join(", ")]);
    }),
  ];
}

// ---- hyperfine: one invocation runs each command once ---------------------------------

interface HyperfineResult {
  times: number[];
  user: number;
  system: number;
  exit_codes: (number | null)[];
}

/**
 * One `hyperfine -N --runs 1` invocation: every command once, in the order
 * given, without a shell (the harness costs ~2 ms: time `/bin/true` to see).
 * Resolves with each tool's wall time and CPU time (user + sys of the command
 * and the children it waited for), in ms; rejects if any command failed.
 */
export function hyperfineRound<T extends string>(
  tools: readonly T[],
  argvOf: (tool: T) => string[],
  opts: { json: string; env: NodeJS.ProcessEnv; round: string; track?: (c?: ChildProcess) => void },
): Promise<Map<T, { ms: number; cpu: number }>> {
  const commands = tools.map((t) => argvOf(t).map(quote).join(" "));
  const args = ["-N", "--runs", "1", "--ignore-failure", "--style", "none"];
  args.push("--export-json", opts.json, ...commands);
  return new Promise((resolve, reject) => {
    const child = spawn("hyperfine", args, { env: opts.env, stdio: ["ignore", "ignore", "pipe"] });
    opts.track?.(child);
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      opts.track?.(undefined);
      if (code !== 0) {
        reject(new Error(`hyperfine failed (${code ?? signal}):\n${stderr.trim()}`));
        return;
      }
      const results = JSON.parse(readFileSync(opts.json, "utf8")).results as HyperfineResult[];
      const out = new Map<T, { ms: number; cpu: number }>();
      for (const [i, tool] of tools.entries()) {
        const r = results[i];
        const exit = r ? r.exit_codes[0] : "no result";
        if (r === undefined || exit !== 0) {
          reject(
            new Error(
              `round ${opts.round}: ${tool} exited with ${exit}: ${commands[i]}\n` +
                "run it by hand to see why",
            ),
          );
          return;
        }
        out.set(tool, { ms: (r.times[0] as number) * 1000, cpu: (r.user + r.system) * 1000 });
      }
      resolve(out);
    });
  });
}

/**
 * Rounds of `round` (a hyperfineRound), the order rotated each round, after
 * one untimed warm-up round; `check` runs (untimed) after each. Progress on
 * stderr: `label round r/N: ` and the times of the tools in `show`.
 */
export async function hyperfineRounds<T extends string>(
  tools: readonly T[],
  rounds: number,
  round: (order: T[], name: string) => Promise<Map<T, { ms: number; cpu: number }>>,
  o: { check: (name: string) => void; label: string; show: T[] },
): Promise<Record<T, Stats>> {
  process.stderr.write(`${o.label}warm-up round…\n`);
  await round([...tools], "warmup");
  o.check("warmup");
  const wall = new Map<T, number[]>(tools.map((t) => [t, []]));
  const cpu = new Map<T, number[]>(tools.map((t) => [t, []]));
  for (let r = 1; r <= rounds; r++) {
    settle();
    const result = await round(rotate(tools, r - 1), String(r));
    o.check(String(r));
    for (const [tool, t] of result) {
      wall.get(tool)?.push(t.ms);
      cpu.get(tool)?.push(t.cpu);
    }
    const shown = o.show.map((t) => `${t} ${ms(result.get(t)?.ms ?? Number.NaN)}`);
    process.stderr.write(`${o.label}round ${r}/${rounds}: ${shown.join(", ")} ms\n`);
  }
  return Object.fromEntries(
    tools.map((t) => [t, stats(wall.get(t) ?? [], cpu.get(t) ?? [])]),
  ) as Record<T, Stats>;
}

// ---- the machine: mounts, cgroups, processes (read-only) -----------------------------

const decodeMountPoint = (mp: string) =>
  mp.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));

/** Mount points of this mount namespace (/proc/self/mountinfo). */
export function mountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((mp): mp is string => mp !== undefined)
    .map(decodeMountPoint);
}

/** Mount points at or under any of `dirs`, deepest first. */
export function mountsUnder(...dirs: string[]): string[] {
  return mountPoints()
    .filter((mp) => dirs.some((dir) => mp === dir || mp.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts `mp` (lazily if it is busy). */
export function unmount(mp: string): void {
  if (spawnSync("umount", [mp]).status !== 0) spawnSync("umount", ["-l", mp]);
}

/** Every cgroup directory on the host, as paths. Read-only: we only look. */
export function cgroupDirs(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // removed meanwhile
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const full = path.join(dir, e.name);
      out.push(full);
      walk(full);
    }
  };
  walk("/sys/fs/cgroup");
  return out;
}

/** Removes cgroups (rmdir, deepest first: rmdir only ever removes an empty cgroup). */
export function removeCgroups(dirs: string[]): void {
  for (const dir of [...dirs].sort((a, b) => b.length - a.length))
    spawnSync("rmdir", [dir], { stdio: "ignore" });
}

export const pids = () =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map(Number);

export function readOr(file: string, fallback = ""): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return fallback;
  }
}

export function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "";
  }
}

/** Processes (other than this one) whose command line names any of `needles`, as "pid cmdline". */
export function processesNaming(...needles: string[]): string[] {
  const out: string[] = [];
  for (const pid of pids()) {
    if (pid === process.pid) continue;
    const cmd = readOr(`/proc/${pid}/cmdline`).replace(/\0/g, " ").trim();
    if (needles.some((n) => cmd.includes(n))) out.push(`${pid} ${cmd}`);
  }
  return out;
}

/** Sends SIGKILL to each "pid cmdline" of processesNaming(). */
export function killProcesses(list: string[]): void {
  for (const p of list) {
    try {
      process.kill(Number(p.split(" ")[0]), "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** What the machine looked like at the start: leftovers are what is new since. */
export interface Snapshot {
  mounts: Set<string>;
  cgroups: Set<string>;
  load: number[];
}

export function snapshot(): Snapshot {
  return { mounts: new Set(mountPoints()), cgroups: new Set(cgroupDirs()), load: os.loadavg() };
}

/**
 * What is left after cleanup (must be nothing), against the snapshot at the
 * start: new mounts under `mountDirs`, new cgroups that `ours` claims, the
 * `processes` given, and `workDir` if it still exists (pass undefined with --keep).
 */
export function leftoversSince(
  before: Snapshot,
  o: {
    mountDirs: string[];
    ours: (cgroup: string) => boolean;
    processes: string[];
    workDir?: string;
  },
): string[] {
  const out: string[] = [];
  for (const mp of mountsUnder(...o.mountDirs)) if (!before.mounts.has(mp)) out.push(`mount ${mp}`);
  for (const dir of cgroupDirs())
    if (!before.cgroups.has(dir) && o.ours(dir)) out.push(`cgroup ${dir}`);
  for (const p of o.processes) out.push(`process ${p}`);
  if (o.workDir !== undefined && existsSync(o.workDir)) out.push(`directory ${o.workDir}`);
  return out;
}

/** New minibox container cgroups (…/minibox/<id>) since `before`. */
export function newMiniboxCgroups(before: Snapshot): string[] {
  return cgroupDirs().filter((d) => /\/minibox\/[0-9a-f]{64}$/.test(d) && !before.cgroups.has(d));
}

// ---- work dir, cleanup, the closing check -----------------------------------------------

/**
 * A work dir from mkdtemp under /tmp, chmod 0711: under minibox's user
 * namespace the container's root is an unprivileged host uid, so the state
 * dir and its ancestors must be o+x. Short, for podman's runroot limit.
 */
export function makeWorkDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  chmodSync(dir, 0o711);
  return dir;
}

/**
 * What every bench keeps: its token (`PREFIX-PID`, in names of what it makes:
 * what is ours), its work dir (makeWorkDir), the anomalies found (reported,
 * never hidden), the snapshot taken at the start, and the child being timed
 * (`track` it; cleanup ends it with stopChild).
 */
export function benchState(prefix: string) {
  const state = {
    token: `${prefix}-${process.pid}`,
    work: makeWorkDir(prefix),
    anomalies: [] as string[],
    before: snapshot(),
    child: undefined as ChildProcess | undefined,
    track: (c?: ChildProcess) => {
      state.child = c;
    },
  };
  return state;
}

// ---- a bench as a script, or as a part of bench/all.ts ------------------------------

/**
 * Set by bench/all.ts before it imports the other benches (dynamically): a
 * bench run as a script (`vite-node bench/X.ts`) runs its main when loaded;
 * imported as a part, it only defines what all.ts calls. (vite-node puts its
 * own path in process.argv[1], so the script cannot tell by itself.)
 */
export const asPart = { value: false };
export const runAsScript = () => !asPart.value;

/** One row of bench/all.ts's summary: issue 15's targets, measured. */
export interface SummaryRow {
  work: string;
  /** Median, in `unit`. */
  minibox: number;
  /** What minibox is compared with, and its median. */
  anchorLabel: string;
  anchor: number;
  /** minibox / anchor (or minibox − anchor, for "+ms" targets). */
  kind: "ratio" | "difference";
  /** The target: the ratio (or difference) must be ≤ this. */
  target: number;
  unit: "ms" | "kB";
}

/** Every cleanupOnce's cleanup, so that one Ctrl-C runs those of all parts (bench/all.ts). */
const cleanups = new Set<() => Promise<void>>();
let signalsHandled = false;

/**
 * Makes `cleanup` idempotent (a second caller, e.g. Ctrl-C during the normal
 * end, waits for the first) and runs it on SIGINT/SIGTERM before exiting —
 * together with every other cleanup registered here.
 */
export function cleanupOnce(cleanup: () => Promise<void>): () => Promise<void> {
  let cleaning: Promise<void> | undefined;
  const once = () => {
    cleaning ??= cleanup();
    return cleaning;
  };
  cleanups.add(once);
  if (!signalsHandled) {
    signalsHandled = true;
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.on(sig, () => {
        process.stderr.write(`\n${sig}: cleaning up\n`);
        // One after another: two parts' cleanups may both reset podman stores.
        const all = async () => {
          for (const c of cleanups) await c().catch((e) => process.stderr.write(`${e}\n`));
        };
        all().finally(() => process.exit(130));
      });
    }
  }
  return once;
}

/** What cleanUpBench needs to know besides the bench's state (benchState). */
export interface BenchLeftovers {
  running: RunningTestEnv | undefined;
  /** The isolated podman, when it was set up: its store is reset. */
  podman?: { args: (...command: string[]) => string[]; env: () => NodeJS.ProcessEnv };
  /** podman's --cgroup-parent: podman keeps it (and conmon's), so removing it is no anomaly. */
  podmanCgroupParent: string;
  mounts: () => string[];
  processes: () => string[];
  /** Which of the cgroups made since the start are ours (default: named after the token). */
  ourCgroup?: (dir: string) => boolean;
  /** Whatever else the bench puts back, once its processes are gone (the network bench's host state). */
  beforeStop?: () => void;
}

/**
 * The end every bench's cleanup shares, after its own (its containers
 * deleted with their tools): podman's store reset, then anything of ours
 * still there — mounts, new cgroups, processes — removed, each noted as an
 * anomaly; the test env stopped and the work dir removed (unless --keep).
 */
export async function cleanUpBench(
  bench: ReturnType<typeof benchState>,
  o: BenchLeftovers,
): Promise<void> {
  const { anomalies, before, token, work } = bench;
  if (o.podman) {
    const r = spawnSync("podman", o.podman.args("system", "reset", "-f"), {
      env: o.podman.env(),
      encoding: "utf8",
    });
    if (r.status !== 0) anomalies.push(`podman system reset failed: ${r.stderr.trim()}`);
  }
  for (const mp of o.mounts()) {
    anomalies.push(`mount ${mp} was left; unmounted`);
    unmount(mp);
  }
  // The containers' cgroups are their runtime's to remove; podman's parent is podman's to keep.
  const ourCgroup = o.ourCgroup ?? ((dir: string) => dir.includes(token));
  const ours = cgroupDirs().filter((d) => !before.cgroups.has(d) && ourCgroup(d));
  for (const dir of ours)
    if (!dir.includes(o.podmanCgroupParent)) anomalies.push(`cgroup ${dir} was left; removed`);
  removeCgroups(ours);
  const procs = o.processes();
  for (const p of procs) anomalies.push(`process ${p} was left; sent SIGKILL`);
  killProcesses(procs);
  o.beforeStop?.();
  await o.running?.stop().catch((e) => anomalies.push(`stopping the test env: ${e}`));
  if (!KEEP) await rm(work, { recursive: true, force: true });
}

/**
 * Runs `main`, then always `cleanup`, then the closing check: what went
 * wrong and was fixed (`anomalies`), what is still there (`leftovers()`),
 * notes; or the all-clear `clean`. Printed on stdout and appended to `out`.
 * The exit status is 1 if `main` failed or anything is left.
 */
export async function runBench(
  main: () => Promise<void>,
  o: {
    cleanup: () => Promise<void>;
    anomalies: string[];
    leftovers: () => string[];
    notes?: () => string[];
    clean: string;
    out?: string;
    /** The work dir, when --keep kept it. */
    kept?: string;
  },
): Promise<void> {
  let failed = false;
  try {
    await main();
  } catch (e) {
    failed = true;
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
  } finally {
    await o.cleanup();
    const left = o.leftovers();
    const lines = [
      ...o.anomalies.map((a) => `- ${a}`),
      ...left.map((l) => `- still there after cleanup: ${l}`),
      ...(o.notes?.() ?? []).map((s) => `- note: ${s}`),
    ];
    const summary = lines.length === 0 ? o.clean : `Cleanup check found:\n${lines.join("\n")}`;
    process.stdout.write(`${summary}\n`);
    if (o.out) writeFileSync(o.out, `${summary}\n`, { flag: "a" });
    if (o.kept) process.stderr.write(`kept ${o.kept}\n`);
    if (failed || left.length > 0) process.exitCode = 1;
  }
}

// ---- the report's machine facts --------------------------------------------------------

export function cpuLine(): string {
  return `- CPUs: ${os.cpus().length} (${os.cpus()[0]?.model ?? "?"}), RAM ${Math.round(os.totalmem() / 2 ** 30)} GiB; kernel ${os.release()}`;
}

/** The filesystem and mount options of `dir`. */
export function filesystemOf(dir: string): string {
  return firstLine("findmnt", ["-n", "-o", "FSTYPE,OPTIONS", "-T", dir]).replace(/\s+/, " ");
}

/** "minibox at COMMIT", noting uncommitted changes under `dirs` (e.g. src, native). */
export function commitLine(...dirs: string[]): string {
  const commit = firstLine("git", ["-C", PROJECT, "rev-parse", "--short", "HEAD"]);
  const dirty = spawnSync("git", ["-C", PROJECT, "status", "--porcelain", ...dirs], {
    encoding: "utf8",
  }).stdout.trim();
  const where = dirs.map((d) => `${d}/`).join(" or ");
  return `- minibox at ${commit}${dirty ? ` (${where} has uncommitted changes)` : ""}`;
}

export function loadLine(atStart: number[]): string {
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  return `- load average at start ${load(atStart)}, at end ${load(os.loadavg())} (other work on the machine shows up as noise)`;
}

// ---- runc bundles over the base fixture ------------------------------------------------

/** The base fixture's single layer (busybox) unpacked by GNU tar into `rootfs`. */
export function unpackBase(base: RunningTestEnv["env"]["fixtures"]["base"], rootfs: string): void {
  const [layer] = base.layerDigests;
  if (base.layerDigests.length !== 1 || layer === undefined)
    throw new Error("fixtures/base should have exactly one layer");
  const blob = path.join(base.layoutDir, "blobs", "sha256", layer.replace(/^sha256:/, ""));
  mkdirSync(rootfs, { recursive: true });
  must("tar", ["-xzf", blob, "-C", rootfs]);
}

/** An OCI bundle over `rootfs`, made with `runc spec` (rootful): no terminal, writable root. */
export function makeBundle(dir: string, rootfs: string, args: string[]): void {
  mkdirSync(dir, { recursive: true });
  must("runc", ["spec", "--bundle", dir]);
  const file = path.join(dir, "config.json");
  const spec = JSON.parse(readFileSync(file, "utf8"));
  spec.process.terminal = false;
  spec.process.args = args;
  spec.root = { path: rootfs, readonly: false };
  writeFileSync(file, `${JSON.stringify(spec, null, 2)}\n`);
}

// ---- podman (and buildah), isolated from the host's configuration ---------------------
// The isolated podman lives in test/support/podman.ts: the integration tests
// (podman driving minibox-runc) and the benches share it.
export {
  type ContainersConfig,
  containersEnv,
  type PodmanStore,
  podmanArgs,
  podmanRun,
  podmanRunLimits,
  podmanStore,
  writeContainersConfig,
} from "../test/support/podman.js";
