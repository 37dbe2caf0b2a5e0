// Pull and unpack benchmarks: minibox against podman, skopeo and GNU tar, side
// by side in one run. See bench/README.md for what is measured and why.
//
//   npm run build && npx vite-node bench/pull.ts [-- --rounds N]
//
// Options (after "--"):
//   --rounds N        timed rounds per tool (default 5)
//   --trace-rounds N  phase-traced minibox pulls (default 3; 0 = none)
//   --only pull|unpack
//   --out FILE        also write the Markdown results to FILE
//   --keep            keep bench/.work/<pid> (default: removed at the end)
//
// bench/all.ts imports this file as a part (common.ts's asPart): then it
// runs nothing by itself; all.ts calls makeWorkDirs, pullBenchmark (once per
// image), pullSection and cleanup with its own registry and rounds.
//
// Everything a round writes goes to a directory created fresh for it under
// bench/.work/<pid>/; nothing is deleted until the very end. On this machine
// "/" is ext4 without a journal, and recreating many files right after
// deleting many is slow for minutes: deleting between rounds would time the
// filesystem's housekeeping, not the tools.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { type RunningTestEnv, startTestEnv } from "../test/support/env.js";
import {
  BUNDLE,
  cleanupOnce,
  commitLine,
  cpuLine,
  DIST,
  filesystemOf,
  firstLine,
  HERE,
  intOption,
  KEEP,
  LAUNCHER,
  loadLine,
  mountsUnder,
  ms,
  OUT,
  option,
  PROJECT,
  podmanArgs as podmanStoreArgs,
  ratio,
  rotate,
  row,
  runAsScript,
  type Stats,
  settle,
  stats,
  stopChild,
  unmount,
  writeContainersConfig,
} from "./common.js";

const ROUNDS = intOption("--rounds", 5, 1);
const TRACE_ROUNDS = intOption("--trace-rounds", 3, 0);
const ONLY = option("--only");

// ---- process and mount bookkeeping -------------------------------------------

const WORK = path.join(HERE, ".work", String(process.pid));
/**
 * podman's overlay driver refuses a runroot path longer than 50 characters,
 * so runroots (a few lock and state files, no layer data) live here instead.
 */
const SHORT = path.join(os.tmpdir(), `mbx-bench-${process.pid}`);
/** The child being timed, so a Ctrl-C can end it (by PID) before cleaning up. */
let currentChild: ChildProcess | undefined;
let running: RunningTestEnv | undefined;
let unpackWorker: UnpackWorker | undefined;
/** Mounts found (and unmounted) under WORK: reported, since none are expected. */
const strayMounts: string[] = [];

/** Unmounts whatever is mounted under our work dir (and only there). */
function unmountStrays(when: string): void {
  for (const mp of mountsUnder(WORK, SHORT)) {
    strayMounts.push(`${mp} (${when})`);
    unmount(mp);
  }
}

export const cleanup = cleanupOnce(async () => {
  await stopChild(currentChild).catch(() => {});
  await unpackWorker?.stop();
  if (existsSync(WORK) || existsSync(SHORT)) unmountStrays("cleanup");
  await running?.stop().catch((e) => process.stderr.write(`stopping the test env: ${e}\n`));
  if (!KEEP) {
    await rm(WORK, { recursive: true, force: true });
    await rm(SHORT, { recursive: true, force: true });
  }
});

// ---- running and timing --------------------------------------------------------

let timedRuns = 0;

/**
 * Spawns a command and resolves with its wall time and its CPU time (user +
 * sys of it and its children, from /usr/bin/time), in ms; rejects if it
 * fails. CPU time is the figure that other load on the machine disturbs least.
 */
function timed(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ ms: number; cpu: number; stdout: string }> {
  const cpuFile = path.join(WORK, "cpu", `${++timedRuns}`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("/usr/bin/time", ["-f", "%U %S", "-o", cpuFile, file, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    currentChild = child;
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = performance.now() - t0;
      currentChild = undefined;
      const [user, sys] = readFileSync(cpuFile, "utf8").trim().split("\n").at(-1)?.split(" ") ?? [];
      const cpu = (Number(user) + Number(sys)) * 1000;
      if (code === 0) resolve({ ms, cpu, stdout });
      else
        reject(
          new Error(`${file} ${args.join(" ")} failed (${code ?? signal}):\n${stderr.trim()}`),
        );
    });
  });
}

// ---- podman's isolated configuration -------------------------------------------

interface PodmanSetup {
  driver: string;
  env: NodeJS.ProcessEnv;
  note: string;
}

/**
 * Config files that keep podman (and skopeo) away from the host's registries,
 * storage and auth (bench/common.ts). Defaults only: every podman run below
 * passes its own --root/--runroot.
 */
async function isolatedContainersEnv(driver: string): Promise<NodeJS.ProcessEnv> {
  return writeContainersConfig({
    dir: path.join(WORK, "containers-config"),
    tmp: path.join(WORK, "tmp"),
    driver,
    graphroot: path.join(WORK, "podman-default", "root"),
    runroot: path.join(SHORT, "default"),
  });
}

function podmanArgs(driver: string, dir: string, ...command: string[]): string[] {
  const runroot = path.join(SHORT, path.basename(dir));
  return podmanStoreArgs(
    { root: path.join(dir, "root"), runroot, tmpdir: path.join(dir, "tmp"), driver },
    ...command,
  );
}

/** Finds a storage driver podman can pull with here: overlay, else vfs. Untimed. */
async function setUpPodman(ref: string): Promise<PodmanSetup> {
  const failures: string[] = [];
  for (const driver of ["overlay", "vfs"]) {
    const env = await isolatedContainersEnv(driver);
    const dir = path.join(WORK, `probe-podman-${driver}`);
    await mkdir(dir, { recursive: true });
    try {
      await timed("podman", podmanArgs(driver, dir, "pull", "--tls-verify=false", "-q", ref), env);
      const info = JSON.parse(
        (await timed("podman", podmanArgs(driver, dir, "info", "--format", "json"), env)).stdout,
      );
      const status = info.store?.graphStatus ?? {};
      const options = info.store?.graphOptions ?? {};
      const mountProgram = options["overlay.mount_program"]?.Executable;
      const note =
        driver === "overlay"
          ? `overlay, kernel overlayfs (Native Overlay Diff: ${status["Native Overlay Diff"]}, ` +
            `mount_program: ${mountProgram ?? "none"}, backing fs: ${status["Backing Filesystem"]})`
          : `vfs (overlay failed: ${failures.join("; ")})`;
      unmountStrays("podman probe");
      return { driver, env, note };
    } catch (e) {
      failures.push(`${driver}: ${(e as Error).message.split("\n").slice(-1)[0]}`);
      unmountStrays("podman probe");
    }
  }
  throw new Error(`podman cannot pull here: ${failures.join("; ")}`);
}

// ---- checks that a run really produced the image (untimed) -----------------------

function countJson(file: string, pick: (j: unknown) => unknown[] | object): number {
  const value = pick(JSON.parse(readFileSync(file, "utf8")));
  return Array.isArray(value) ? value.length : Object.keys(value).length;
}

function checkMinibox(root: string, layers: number, bigFile: { path: string; size?: number }) {
  const index = JSON.parse(readFileSync(path.join(root, "images.json"), "utf8"));
  const images = Object.values(index.images) as { layers: { chainId: string }[] }[];
  if (images.length !== 1 || images[0]?.layers.length !== layers)
    throw new Error(`minibox store ${root} does not hold the ${layers}-layer image`);
  const found = readdirSync(path.join(root, "layers")).some((d) => {
    const st = statSync(path.join(root, "layers", d, "diff", bigFile.path), {
      throwIfNoEntry: false,
    });
    return st !== undefined && (bigFile.size === undefined || st.size === bigFile.size);
  });
  if (!found) throw new Error(`minibox store ${root} lacks ${bigFile.path}`);
}

function checkPodman(dir: string, driver: string, layers: number) {
  const root = path.join(dir, "root");
  const n = countJson(path.join(root, `${driver}-layers`, "layers.json"), (j) => j as unknown[]);
  const images = countJson(
    path.join(root, `${driver}-images`, "images.json"),
    (j) => j as unknown[],
  );
  if (n !== layers || images !== 1)
    throw new Error(`podman store ${root} holds ${images} images / ${n} layers`);
}

function checkSkopeo(dir: string, layers: number) {
  const index = JSON.parse(readFileSync(path.join(dir, "index.json"), "utf8"));
  const blobs = readdirSync(path.join(dir, "blobs", "sha256")).length;
  if (index.manifests?.length !== 1 || blobs !== layers + 2)
    throw new Error(`skopeo layout ${dir} holds ${blobs} blobs`);
}

// ---- the benchmarks ------------------------------------------------------------

export interface PullResults {
  podman: PodmanSetup;
  times: Record<"minibox" | "podman" | "skopeo", Stats>;
}

/** The work dirs (makeWorkDirs) are made; they are removed by cleanup. */
export async function makeWorkDirs(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  await mkdir(SHORT, { recursive: true });
  await mkdir(path.join(WORK, "cpu"), { recursive: true });
}

/** A fixture image to pull: its layers, and a file its unpacked layers must hold. */
type PulledFixture = RunningTestEnv["env"]["fixtures"]["base" | "layered"];

/**
 * Rounds of minibox pull, podman pull and skopeo copy of `ref` (a fixture
 * image) into fresh stores, rotated per round, after one warm-up each.
 * `tag` prefixes the round dirs (one call per image: bench/all.ts).
 */
export async function pullBenchmark(
  ref: string,
  fixture: PulledFixture,
  o: { rounds?: number; tag?: string } = {},
): Promise<PullResults> {
  const rounds = o.rounds ?? ROUNDS;
  const tag = o.tag ?? "";
  const layers = fixture.layerDigests.length;
  // The file that proves the layers were unpacked: layered's big file, else busybox.
  const proof = "bigFile" in fixture ? fixture.bigFile : { path: "/bin/busybox" };
  const podman = await setUpPodman(ref);
  const env = podman.env;
  const miniboxEnv = { ...env, MINIBOX_CONFIG: path.join(WORK, "minibox-config") };

  type Tool = "minibox" | "podman" | "skopeo";
  const run: Record<Tool, (dir: string) => Promise<{ ms: number; cpu: number }>> = {
    minibox: async (dir) => {
      // What a user types: ./minibox (sh → node dist/minibox.mjs, the bundle).
      const t = await timed(LAUNCHER, ["--root", dir, "pull", "-q", ref], miniboxEnv);
      checkMinibox(dir, layers, proof);
      return t;
    },
    podman: async (dir) => {
      const args = podmanArgs(podman.driver, dir, "pull", "--tls-verify=false", "-q", ref);
      const t = await timed("podman", args, env);
      unmountStrays(`after ${path.basename(dir)}`);
      checkPodman(dir, podman.driver, layers);
      return t;
    },
    skopeo: async (dir) => {
      const args = ["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${dir}:latest`];
      const t = await timed("skopeo", args, env);
      checkSkopeo(dir, layers);
      return t;
    },
  };
  const tools: Tool[] = ["minibox", "podman", "skopeo"];
  // One untimed warm-up each (podman's was its probe): registry, page cache, binaries.
  for (const tool of ["minibox", "skopeo"] as const) {
    const dir = path.join(WORK, `${tag}warmup-${tool}`);
    await mkdir(dir);
    await run[tool](dir);
  }
  const wall: Record<Tool, number[]> = { minibox: [], podman: [], skopeo: [] };
  const cpu: Record<Tool, number[]> = { minibox: [], podman: [], skopeo: [] };
  for (let r = 1; r <= rounds; r++) {
    for (const tool of rotate(tools, r - 1)) {
      const dir = path.join(WORK, `${tag}round-${r}-${tool}`);
      await mkdir(dir);
      settle();
      const t = await run[tool](dir);
      wall[tool].push(t.ms);
      cpu[tool].push(t.cpu);
      process.stderr.write(
        `${tag}pull round ${r}/${rounds} ${tool.padEnd(7)} ${ms(t.ms)} ms (cpu ${ms(t.cpu)} ms)\n`,
      );
    }
  }
  return {
    podman,
    times: {
      minibox: stats(wall.minibox, cpu.minibox),
      podman: stats(wall.podman, cpu.podman),
      skopeo: stats(wall.skopeo, cpu.skopeo),
    },
  };
}

interface TraceResults {
  wall: Stats;
  phases: { label: string; stats: Stats }[];
}

/** minibox pulls with a timeline (bench/trace-pull.mjs): where the time goes. */
async function traceBenchmark(
  ref: string,
  layered: RunningTestEnv["env"]["fixtures"]["layered"],
  env: NodeJS.ProcessEnv,
): Promise<TraceResults> {
  const short = (digest: string) => digest.replace(/^sha256:/, "").slice(0, 12);
  const big = short(layered.layerDigests[1] as string);
  const base = short(layered.layerDigests[0] as string);
  const walls: number[] = [];
  const phaseTimes = new Map<string, number[]>();
  for (let r = 1; r <= TRACE_ROUNDS; r++) {
    const dir = path.join(WORK, `trace-${r}`);
    await mkdir(dir);
    settle();
    const { ms: wall, stdout } = await timed(
      "node",
      [path.join(HERE, "trace-pull.mjs"), DIST, dir, ref],
      { ...env, MINIBOX_CONFIG: path.join(WORK, "minibox-config") },
    );
    walls.push(wall);
    const trace = JSON.parse(stdout) as {
      marks: [string, number][];
      eventLoopUtilization: number;
      cpuMs: number;
    };
    const marks = new Map<string, number>();
    for (const [label, t] of trace.marks) {
      if (!marks.has(label)) marks.set(label, t);
    }
    const at = (label: string) => {
      const t = marks.get(label);
      if (t === undefined)
        throw new Error(`trace has no "${label}": ${[...marks.keys()].join(", ")}`);
      return t;
    };
    const firstLayerRequest = Math.min(
      ...[...marks].filter(([l]) => /^request blobs /.test(l)).map(([, t]) => t),
    );
    const bigRequest = [...marks].find(([l]) => l.startsWith(`request blobs ${big}`))?.[1];
    if (bigRequest === undefined) throw new Error("trace has no request for the big layer");
    const lastPullComplete = Math.max(
      ...[...marks].filter(([l]) => l.endsWith(" Pull complete")).map(([, t]) => t),
    );
    const phases: [string, number][] = [
      ["node bootstrap (process start → first line of script)", at("script start")],
      ["loading minibox's modules", at("modules loaded") - at("script start")],
      ["store init, manifest + config fetch", firstLayerRequest - at("modules loaded")],
      [`big layer ${big}: request → response headers`, at(`headers blobs ${big}`) - bigRequest],
      [
        `big layer: request → "Download complete" (download, sha256, write)`,
        at(`layer ${big} Download complete`) - bigRequest,
      ],
      [
        `big layer: "Extracting" → "Pull complete" (unpack, after the download)`,
        at(`layer ${big} Pull complete`) - at(`layer ${big} Extracting`),
      ],
      [
        `base layer ${base} (busybox): "Extracting" → "Pull complete", while the big one downloads`,
        at(`layer ${base} Pull complete`) - at(`layer ${base} Extracting`),
      ],
      ["all layers done → image recorded", at("pull done") - lastPullComplete],
      ["process start → pull done (in-process clock)", at("pull done")],
      ["exit and spawn overhead (wall − the above)", wall - at("pull done")],
      ["CPU time of the process up to pull done (user + sys, all threads)", trace.cpuMs],
      [
        "main thread busy, % (event-loop utilization, loop start → pull done)",
        trace.eventLoopUtilization * 100,
      ],
    ];
    for (const [label, t] of phases) {
      if (!phaseTimes.has(label)) phaseTimes.set(label, []);
      phaseTimes.get(label)?.push(t);
    }
    process.stderr.write(`trace round ${r}/${TRACE_ROUNDS} ${ms(wall)} ms\n`);
  }
  return {
    wall: stats(walls),
    phases: [...phaseTimes].map(([label, all]) => ({ label, stats: stats(all) })),
  };
}

/**
 * bench/unpack-worker.ts in its own process (through vite-node, so it runs
 * src/image/layer.ts): the in-process timings, taken where no fork happens.
 */
class UnpackWorker {
  private readonly pending: ((line: string) => void)[] = [];

  private constructor(private readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      if (line.startsWith("RESULT ")) this.pending.shift()?.(line.slice(7));
    });
  }

  static async start(): Promise<UnpackWorker> {
    const viteNode = path.join(PROJECT, "node_modules", ".bin", "vite-node");
    const child = spawn(viteNode, [path.join(HERE, "unpack-worker.ts")], {
      cwd: PROJECT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const worker = new UnpackWorker(child);
    const ready = await Promise.race([
      worker.next(),
      new Promise<string>((resolve) => child.once("exit", (code) => resolve(`exit ${code}`))),
    ]);
    if (ready !== "ready") throw new Error(`bench/unpack-worker.ts did not start (${ready})`);
    return worker;
  }

  private next(): Promise<string> {
    return new Promise((resolve) => this.pending.push(resolve));
  }

  async unpack(blob: string, dest: string): Promise<{ ms: number; cpuMs: number; diffID: string }> {
    const answer = this.next();
    this.child.stdin?.write(`${JSON.stringify({ blob, dest })}\n`);
    const result = JSON.parse(await answer);
    if (result.error) throw new Error(`unpack-worker: ${result.error}`);
    return result;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}

interface UnpackResults {
  nodeStartup: Stats;
  layers: {
    name: string;
    blobSize: number;
    entries: string;
    coldInProcess: number;
    times: Record<"tar" | "inProcess" | "spawned", Stats>;
  }[];
}

async function unpackBenchmark(
  layered: RunningTestEnv["env"]["fixtures"]["layered"],
): Promise<UnpackResults> {
  const blobOf = (digest: string) =>
    path.join(layered.layoutDir, "blobs", "sha256", digest.replace(/^sha256:/, ""));
  const cases = [
    { name: "big (20 MiB random file)", index: 1, entries: "" },
    { name: "base (busybox, symlinks)", index: 0, entries: "" },
  ];
  const startup: number[] = [];
  const layers: UnpackResults["layers"] = [];
  const worker = await UnpackWorker.start();
  unpackWorker = worker;
  for (const c of cases) {
    const blob = blobOf(layered.layerDigests[c.index] as string);
    const diffId = layered.diffIds[c.index] as string;
    const listing = spawnSync("tar", ["-tvzf", blob], { encoding: "utf8" })
      .stdout.trim()
      .split("\n");
    const kinds = new Map<string, number>();
    for (const line of listing) kinds.set(line[0] ?? "?", (kinds.get(line[0] ?? "?") ?? 0) + 1);
    const kindNames: Record<string, string> = {
      "-": "files",
      d: "dirs",
      l: "symlinks",
      h: "hard links",
    };
    c.entries = [...kinds].map(([k, n]) => `${n} ${kindNames[k] ?? k}`).join(", ");

    type Way = "tar" | "inProcess" | "spawned";
    const run: Record<Way, (dir: string) => Promise<{ ms: number; cpu: number }>> = {
      tar: (dir) => timed("tar", ["-xzf", blob, "-C", dir]),
      inProcess: async (dir) => {
        const result = await worker.unpack(blob, dir);
        if (result.diffID !== diffId)
          throw new Error(`unpackLayer gave ${result.diffID}, want ${diffId}`);
        return { ms: result.ms, cpu: result.cpuMs };
      },
      spawned: async (dir) => {
        const t = await timed("node", [path.join(HERE, "unpack-one.mjs"), DIST, blob, dir]);
        if (t.stdout.trim() !== diffId)
          throw new Error(`unpack-one.mjs gave ${t.stdout.trim()}, want ${diffId}`);
        return t;
      },
    };
    const ways: Way[] = ["tar", "inProcess", "spawned"];
    // Untimed warm-up (page cache, binaries) — except that the first in-process
    // run is also the cold-JIT figure, which a CLI pull pays every time.
    let coldInProcess = 0;
    for (const way of ways) {
      const dir = path.join(WORK, `unpack-warmup-${c.index}-${way}`);
      await mkdir(dir);
      const t = await run[way](dir);
      if (way === "inProcess") coldInProcess = t.ms;
    }
    const times: Record<Way, number[]> = { tar: [], inProcess: [], spawned: [] };
    const cpu: Record<Way, number[]> = { tar: [], inProcess: [], spawned: [] };
    for (let r = 1; r <= ROUNDS; r++) {
      for (const way of rotate(ways, r - 1)) {
        const dir = path.join(WORK, `unpack-${r}-${c.index}-${way}`);
        await mkdir(dir);
        settle();
        const t = await run[way](dir);
        times[way].push(t.ms);
        cpu[way].push(t.cpu);
      }
      process.stderr.write(
        `unpack ${c.name} round ${r}/${ROUNDS}: tar ${ms(times.tar.at(-1) ?? 0)} ms, ` +
          `in-process ${ms(times.inProcess.at(-1) ?? 0)} ms, spawned ${ms(times.spawned.at(-1) ?? 0)} ms\n`,
      );
    }
    layers.push({
      name: c.name,
      blobSize: statSync(blob).size,
      entries: c.entries,
      coldInProcess,
      times: {
        tar: stats(times.tar, cpu.tar),
        inProcess: stats(times.inProcess, cpu.inProcess),
        spawned: stats(times.spawned, cpu.spawned),
      },
    });
  }
  await worker.stop();
  const startupCpu: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = await timed("node", ["-e", "0"]);
    startup.push(t.ms);
    startupCpu.push(t.cpu);
  }
  return { nodeStartup: stats(startup, startupCpu), layers };
}

// ---- report --------------------------------------------------------------------

const loadAtStart = os.loadavg();

function machineFacts(): string[] {
  return [
    cpuLine(),
    `- work dir filesystem: ${filesystemOf(HERE)}`,
    `- node ${process.version}; ${firstLine("podman", ["--version"])}; ${firstLine("skopeo", ["--version"])}; ${firstLine("tar", ["--version"])}`,
    `- registry: ${firstLine("/usr/bin/docker-registry", ["--version"])}, on 127.0.0.1`,
    commitLine("src"),
    loadLine(loadAtStart),
  ];
}

const cpuCell = (s: Stats) => (s.cpu === undefined ? "" : ms(s.cpu));
const statCells = (s: Stats) => [ms(s.median), ms(s.min), cpuCell(s), s.all.map(ms).join(", ")];
const columns = ["median", "min", "CPU median", "rounds, in order"];
const rule = "| --- | ---: | ---: | ---: | --- |";

/** The Markdown of one pullBenchmark: times, then ratios against `target` (minibox / podman). */
export function pullSection(image: string, pull: PullResults, target: number): string[] {
  const t = pull.times;
  const ratios = (a: Stats, b: Stats) => [
    ratio(a.median, b.median),
    ratio(a.min, b.min),
    ratio(a.cpu ?? 0, b.cpu ?? 0),
  ];
  return [
    `### Pull \`${image}\` into a fresh store (ms)`,
    "",
    `podman storage driver: ${pull.podman.note}.`,
    "",
    row(["tool", ...columns]),
    rule,
    row(["minibox `pull` (download + unpack)", ...statCells(t.minibox)]),
    row([`podman \`pull\` (${pull.podman.driver}, download + unpack)`, ...statCells(t.podman)]),
    row(["skopeo `copy` to `oci:` (download only)", ...statCells(t.skopeo)]),
    "",
    row(["ratio", "of wall medians", "of wall mins", "of CPU medians", "target"]),
    rule,
    row(["minibox / podman", ...ratios(t.minibox, t.podman), `≤ ${target}`]),
    row(["minibox / skopeo", ...ratios(t.minibox, t.skopeo), "—"]),
    "",
  ];
}

function report(
  pulls: { name: string; results: PullResults; target: number }[],
  trace?: TraceResults,
  unpack?: UnpackResults,
): string {
  const out: string[] = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z, ${ROUNDS} rounds)`,
    "",
    ...machineFacts(),
    "",
  ];
  for (const p of pulls) out.push(...pullSection(p.name, p.results, p.target));
  if (trace) {
    out.push(
      `### Where a minibox pull spends its time (${TRACE_ROUNDS} traced pulls, ms)`,
      "",
      row(["phase (bench/trace-pull.mjs)", "median", "min", "rounds"]),
      "| --- | ---: | ---: | --- |",
      ...[...trace.phases, { label: "wall time of the traced process", stats: trace.wall }].map(
        (p) => row([p.label, ms(p.stats.median), ms(p.stats.min), p.stats.all.map(ms).join(", ")]),
      ),
      "",
    );
  }
  if (unpack) {
    const n = unpack.nodeStartup;
    out.push(
      "### Unpack one layer blob into a fresh directory (ms)",
      "",
      `\`node -e 0\` (node startup alone): median ${ms(n.median)} ms, min ${ms(n.min)} ms, CPU ${cpuCell(n)} ms.`,
      "",
      row(["layer", "how", ...columns]),
      "| --- | --- | ---: | ---: | ---: | --- |",
    );
    for (const l of unpack.layers) {
      const name = `${l.name}: ${(l.blobSize / 2 ** 20).toFixed(1)} MiB gz; ${l.entries}`;
      out.push(
        row([name, "GNU tar `-xzf` (spawned)", ...statCells(l.times.tar)]),
        row(["", "minibox `unpackLayer` in-process (warm JIT)", ...statCells(l.times.inProcess)]),
        row(["", "minibox `unpackLayer` in a fresh `node`", ...statCells(l.times.spawned)]),
        row(["", "minibox in-process, first (cold JIT) call", ms(l.coldInProcess), "", "", ""]),
      );
    }
    out.push(
      "",
      row(["ratio to GNU tar", "of wall medians", "of wall mins", "of CPU medians", "target"]),
      rule,
    );
    for (const l of unpack.layers) {
      const t = l.times;
      for (const [how, s] of [
        ["in-process", t.inProcess],
        ["fresh node", t.spawned],
      ] as const) {
        out.push(
          row([
            `${l.name.split(" ")[0]}: ${how} / tar`,
            ratio(s.median, t.tar.median),
            ratio(s.min, t.tar.min),
            ratio(s.cpu ?? 0, t.tar.cpu ?? 0),
            how === "in-process" ? "≤ 1.2" : "—",
          ]),
        );
      }
    }
    out.push("");
  }
  if (strayMounts.length > 0)
    out.push(`Mounts found and unmounted under the work dir: ${strayMounts.join(", ")}`, "");
  return out.join("\n");
}

// ---- main ----------------------------------------------------------------------

async function main(): Promise<void> {
  if (ONLY !== undefined && ONLY !== "pull" && ONLY !== "unpack") {
    throw new Error("--only wants pull or unpack");
  }
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
  await makeWorkDirs();
  process.stderr.write(`work dir ${WORK}; starting the test registry…\n`);
  running = await startTestEnv();
  const { env } = running;
  const ref = `${env.registries.anon}/${env.fixtures.layered.repo}:latest`;
  process.stderr.write(`test env ready in ${env.setupMs} ms; ref ${ref}\n`);

  const pulls: { name: string; results: PullResults; target: number }[] = [];
  let trace: TraceResults | undefined;
  let unpack: UnpackResults | undefined;
  if (ONLY !== "unpack") {
    // Issue 15's two pulls: busybox alone (target ≤ 0.6× podman), then the layered image (≤ 0.7×).
    const baseRef = `${env.registries.anon}/${env.fixtures.base.repo}:latest`;
    const base = await pullBenchmark(baseRef, env.fixtures.base, { tag: "base-" });
    pulls.push({ name: "fixtures/base", results: base, target: 0.6 });
    const pull = await pullBenchmark(ref, env.fixtures.layered, { tag: "layered-" });
    pulls.push({ name: "fixtures/layered", results: pull, target: 0.7 });
    if (TRACE_ROUNDS > 0) {
      trace = await traceBenchmark(ref, env.fixtures.layered, pull.podman.env);
    }
  }
  if (ONLY !== "pull") unpack = await unpackBenchmark(env.fixtures.layered);
  unmountStrays("end");
  const text = report(pulls, trace, unpack);
  process.stdout.write(`${text}\n`);
  if (OUT) await writeFile(OUT, `${text}\n`);
}

if (runAsScript()) {
  try {
    await main();
  } finally {
    await cleanup();
    if (existsSync(WORK)) process.stderr.write(`kept ${WORK} and ${SHORT}\n`);
  }
}

/** The work dirs that cleanup removes (unless --keep): the closing check looks for them. */
export const pullWorkDirs = () => [WORK, SHORT];

/** Mounts found (and unmounted) under the work dirs: none are expected. */
export const strayMountsFound = () => [...strayMounts];
