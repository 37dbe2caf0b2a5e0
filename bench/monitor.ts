// The cost of a detached container: the memory of minibox's monitor against
// podman's conmon, for one idle container each, side by side in one run; the
// monitor's memory after the container wrote 10 MB of logs; and the latency
// of `run -d` against `podman run -d` and `runc run -d`. See bench/README.md.
//
//   npm run build && npx vite-node bench/monitor.ts [-- --rounds N]
//
// Options (after "--"):
//   --mem-rounds N   memory rounds; each starts one fresh idle container with
//                    minibox and one with podman, both alive at once (default 5)
//   --idle-ms N      how long the containers sit idle before memory is read (default 1000)
//   --log-rounds N   rounds of the log test, per tool (default 2; 0 = none)
//   --log-bytes N    bytes the log test's container writes to stdout (default 10000000)
//   --rounds N       latency rounds; each runs every `run -d` command once (default 10)
//   --out FILE       also write the Markdown results to FILE
//   --keep           keep the work dir (default: removed at the end)
//
// bench/all.ts imports this file as a part (common.ts's asPart): then it
// runs nothing by itself; all.ts calls prepare, memoryAtScale,
// scaleMemoryReport and cleanup with its own registry.
//
// Everything lives in one work dir made by mkdtemp under /tmp and chmod 0711
// (under minibox's user namespace the container's root is an unprivileged
// host uid: the state dir and its ancestors must be o+x), podman's storage,
// runroot and config, and runc's state dir (`runc --root`) included. Each
// container has a name that carries this run's token, `mbx-mon-PID`; podman's
// `--cgroup-parent` carries it too. Helpers shared with the other benches: bench/common.ts.
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import type { RunningTestEnv } from "../test/support/env.js";
import {
  BUNDLE,
  benchState,
  cleanUpBench,
  cleanupOnce,
  commitLine,
  cpuLine,
  EXECUTOR,
  exeOf,
  filesystemOf,
  firstLine,
  hyperfineRound,
  hyperfineRounds,
  intOption,
  KEEP,
  kb,
  LAUNCHER,
  leftoversSince,
  loadLine,
  makeBundle,
  median,
  mountsUnder,
  ms,
  must as mustWith,
  newMiniboxCgroups,
  OUT,
  PROJECT,
  pids,
  podmanRun,
  podmanStore,
  processesNaming,
  ratio,
  readOr,
  rotate,
  row,
  runAsScript,
  runBench,
  type Stats,
  settle,
  sleep,
  startRegistry,
  stats,
  stopChild,
  timesTable,
  unpackBase,
} from "./common.js";

const MEM_ROUNDS = intOption("--mem-rounds", 5, 1);
const IDLE_MS = intOption("--idle-ms", 1000, 0);
const LOG_ROUNDS = intOption("--log-rounds", 2, 0);
const LOG_BYTES = intOption("--log-bytes", 10_000_000, 1);
const ROUNDS = intOption("--rounds", 10, 1);
/** The log test gives up waiting for the container's last line after this long. */
const LOG_TIMEOUT_MS = 120_000;
const LOG_MARKER = "mbx-log-done";

// ---- work dir, names, bookkeeping ---------------------------------------------

/** In every container name, runc id and podman's cgroup parent: what is ours. */
const BENCH = benchState("mbx-mon");
const { token: TOKEN, work: WORK, anomalies, before, track } = BENCH;
const P = {
  mbxRoot: path.join(WORK, "minibox"),
  mbxConfig: path.join(WORK, "minibox-config"),
  bundle: path.join(WORK, "bundle"),
  runcRoot: path.join(WORK, "runc"),
  podman: path.join(WORK, "podman"),
  /** Short on purpose (podman's overlay driver: runroot ≤ 50 characters). */
  podmanRunroot: path.join(WORK, "prun"),
  containersConfig: path.join(WORK, "containers-config"),
  hyperfine: path.join(WORK, "hyperfine"),
};
const PODMAN_CGROUP_PARENT = `/${TOKEN}-podman`;

let running: RunningTestEnv | undefined;
let podmanReady = false;
/** What we started, to remove whatever is left at the end. */
const started = {
  minibox: new Set<string>(),
  /** Every minibox container ID of this run, removed or not. */
  miniboxAll: new Set<string>(),
  /** Host PIDs of minibox monitors and container inits we started. */
  miniboxPids: new Map<number, string>(),
  podman: new Set<string>(),
  runc: new Set<string>(),
};

const ourMounts = () => mountsUnder(WORK);
/** Processes whose command line names our work dir or token (by "pid cmdline"). */
const ourProcesses = () => processesNaming(WORK, TOKEN);

/**
 * Is `pid` (recorded for container `id`) still a process of ours? Its cgroup
 * names the container or our token, its command line names the work dir
 * (conmon), or it is minibox-exec holding a file in the work dir (a monitor).
 */
function stillOurs(pid: number, id: string): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  const cgroup = readOr(`/proc/${pid}/cgroup`);
  if (cgroup.includes(id) || cgroup.includes(TOKEN)) return true;
  if (readOr(`/proc/${pid}/cmdline`).includes(WORK)) return true;
  if (exeOf(pid) !== EXECUTOR) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(WORK);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

const must = (file: string, args: string[], env: NodeJS.ProcessEnv = benchEnv()) =>
  mustWith(file, args, env);

// ---- podman, isolated from the host's configuration (bench/common.ts) --------

const PODMAN = podmanStore(P.podman, P.podmanRunroot, P.containersConfig);
const podmanEnv = PODMAN.env;
const writePodmanConfig = PODMAN.writeConfig;
const podmanArgs = PODMAN.args;

function benchEnv(): NodeJS.ProcessEnv {
  return { ...podmanEnv(), MINIBOX_CONFIG: P.mbxConfig };
}

// ---- the commands -----------------------------------------------------------------

type Tool = "minibox" | "podman" | "runc" | "node" | "floor";
const TOOLS: Tool[] = ["minibox", "podman", "runc", "node", "floor"];
const LABELS: Record<Tool, string> = {
  minibox: "**minibox** `./minibox run -d --name N --network none IMAGE sleep 600`",
  podman:
    "**podman** `podman --runtime runc run -d --name N --network none --log-driver k8s-file … IMAGE sleep 600`",
  runc: "**runc** `runc --root S run -d --bundle B ID` (`sleep 600`, terminal: false)",
  node: "`node -e 0` (node's own start and exit)",
  floor: "`/bin/true` (the harness's own cost)",
};

const SLEEP = ["sleep", "600"];
/** What the log test's container runs: 1 s quiet, then LOG_BYTES of "hello\n", a marker, then idle. */
const LOG_CMD = [
  "sh",
  "-c",
  `sleep 1; yes hello | head -c ${LOG_BYTES}; echo ${LOG_MARKER}; sleep 600`,
];

function miniboxRunArgs(ref: string, name: string, cmd: string[]): string[] {
  return ["--root", P.mbxRoot, "run", "-d", "--name", name, "--network", "none", ref, ...cmd];
}

function podmanRunArgs(ref: string, name: string, cmd: string[]): string[] {
  return podmanArgs(
    ...podmanRun({
      runtime: "runc",
      cgroupParent: PODMAN_CGROUP_PARENT,
      options: ["-d", "--name", name, "--log-driver", "k8s-file"],
      image: ref,
      command: cmd,
    }),
  );
}

/** The argv of each timed command in round `round` (names carry the round). */
function argv(tool: Tool, ref: string, round: string): string[] {
  const name = `${TOKEN}-${round}`;
  switch (tool) {
    case "minibox":
      return [LAUNCHER, ...miniboxRunArgs(ref, name, SLEEP)];
    case "podman":
      return ["podman", ...podmanRunArgs(ref, name, SLEEP)];
    case "runc":
      return ["runc", "--root", P.runcRoot, "run", "-d", "--bundle", P.bundle, `${name}-runc`];
    case "node":
      return ["node", "-e", "0"];
    case "floor":
      return ["/bin/true"];
  }
}

// ---- containers: start, find, check, remove (untimed) ------------------------------

interface Started {
  tool: "minibox" | "podman";
  /** minibox's ID, podman's name. */
  id: string;
  /** The monitor: minibox-exec or conmon. */
  monitor: number;
  /** The container's init, as a host PID. */
  init: number;
  log: string;
}

function ppidOf(pid: number): number {
  const stat = readOr(`/proc/${pid}/stat`);
  // "pid (comm) state ppid …": comm may hold spaces and parentheses.
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function miniboxState(id: string): {
  pid?: number;
  monitorPid?: number;
  status?: string;
  logPath?: string;
  name?: string;
} {
  return JSON.parse(readFileSync(path.join(P.mbxRoot, "containers", id, "state.json"), "utf8"));
}

/** Checks that `monitor` is what we think and that it is the parent of the container's init. */
function checkMonitor(s: Started, exe: string): void {
  if (exeOf(s.monitor) !== exe)
    throw new Error(`${s.tool} ${s.id}: PID ${s.monitor} runs ${exeOf(s.monitor)}, not ${exe}`);
  if (ppidOf(s.init) !== s.monitor)
    throw new Error(`${s.tool} ${s.id}: init ${s.init}'s parent is not the monitor ${s.monitor}`);
}

function startMinibox(ref: string, name: string, cmd: string[]): Started {
  const id = must(LAUNCHER, miniboxRunArgs(ref, name, cmd)).trim();
  if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`minibox run -d printed "${id}", not an ID`);
  started.minibox.add(id);
  started.miniboxAll.add(id);
  const state = miniboxState(id);
  if (state.status !== "running" || !state.pid || !state.monitorPid)
    throw new Error(`minibox ${id}: state.json says ${JSON.stringify(state)}`);
  started.miniboxPids.set(state.monitorPid, id);
  started.miniboxPids.set(state.pid, id);
  const s: Started = {
    tool: "minibox",
    id,
    monitor: state.monitorPid,
    init: state.pid,
    log: state.logPath ?? "",
  };
  checkMonitor(s, EXECUTOR);
  return s;
}

function startPodman(ref: string, name: string, cmd: string[]): Started {
  started.podman.add(name);
  must("podman", podmanRunArgs(ref, name, cmd));
  const [conmon, pid, log] = must(
    "podman",
    podmanArgs(
      "inspect",
      "--format",
      "{{.State.ConmonPid}} {{.State.Pid}} {{.HostConfig.LogConfig.Path}}",
      name,
    ),
  )
    .trim()
    .split(" ");
  const s: Started = {
    tool: "podman",
    id: name,
    monitor: Number(conmon),
    init: Number(pid),
    log: log ?? "",
  };
  checkMonitor(s, "/usr/bin/conmon");
  return s;
}

function removeMinibox(id: string): void {
  must(LAUNCHER, ["--root", P.mbxRoot, "rm", "-f", id]);
  started.minibox.delete(id);
}

function removePodman(name: string): void {
  must("podman", podmanArgs("rm", "-f", "-t", "0", name));
  started.podman.delete(name);
}

/** Removes a container (untimed); its monitor and init must be gone within 2 s. */
async function remove(s: Started): Promise<void> {
  if (s.tool === "minibox") removeMinibox(s.id);
  else removePodman(s.id);
  for (const pid of [s.monitor, s.init]) {
    const t0 = performance.now();
    while (stillOurs(pid, s.id) && performance.now() - t0 < 2000) await sleep(20);
    if (stillOurs(pid, s.id))
      anomalies.push(`${s.tool} ${s.id}: PID ${pid} still there 2 s after rm -f`);
  }
}

// ---- memory of one process ----------------------------------------------------------

interface Mem {
  rss: number;
  pss: number;
  pssAnon: number;
  pssFile: number;
  sharedClean: number;
  privateClean: number;
  privateDirty: number;
  /** Private_Clean + Private_Dirty: what this process alone holds (USS). */
  uss: number;
  /** VmHWM: the peak RSS over the process's life. */
  hwm: number;
  threads: number;
  /** Other processes running the same binary at that moment (they share its pages: PSS). */
  sameBinary: number;
}

function memOf(pid: number): Mem {
  const kbOf = (text: string, key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`/proc/${pid}: no ${key}`);
    return Number(m[1]);
  };
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const exe = exeOf(pid);
  const privateClean = kbOf(rollup, "Private_Clean");
  const privateDirty = kbOf(rollup, "Private_Dirty");
  return {
    rss: kbOf(rollup, "Rss"),
    pss: kbOf(rollup, "Pss"),
    pssAnon: kbOf(rollup, "Pss_Anon"),
    pssFile: kbOf(rollup, "Pss_File"),
    sharedClean: kbOf(rollup, "Shared_Clean"),
    privateClean,
    privateDirty,
    uss: privateClean + privateDirty,
    hwm: kbOf(status, "VmHWM"),
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1]),
    sameBinary: pids().filter((p) => p !== pid && exeOf(p) === exe).length,
  };
}

/** Rss and Pss per mapped object (/proc/PID/smaps): the binary, each library, heap, stack, anonymous. */
function mappingsOf(pid: number): Map<string, { rss: number; pss: number }> {
  const out = new Map<string, { rss: number; pss: number }>();
  let current = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? "";
      current = name === "" ? "[anonymous]" : name.startsWith("[") ? name : path.basename(name);
      continue;
    }
    const m = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const entry = out.get(current) ?? { rss: 0, pss: 0 };
    if (m[1] === "Rss") entry.rss += Number(m[2]);
    else entry.pss += Number(m[2]);
    out.set(current, entry);
  }
  return out;
}

// ---- preparation (untimed) -------------------------------------------------------

export async function prepare(ref: string, base: RunningTestEnv["env"]["fixtures"]["base"]) {
  mkdirSync(P.mbxConfig, { recursive: true });
  mkdirSync(P.hyperfine, { recursive: true });
  mkdirSync(P.runcRoot, { recursive: true });
  process.stderr.write("pulling the image into minibox's and podman's stores…\n");
  must(LAUNCHER, ["--root", P.mbxRoot, "pull", "-q", ref]);
  writePodmanConfig();
  must("podman", podmanArgs("pull", "--tls-verify=false", "-q", ref));
  podmanReady = true;

  // runc's bundle: the base image's one layer, unpacked by GNU tar; `runc spec`.
  const rootfs = path.join(P.bundle, "rootfs");
  unpackBase(base, rootfs);
  makeBundle(P.bundle, rootfs, SLEEP);
}

// ---- 1. idle memory, side by side ---------------------------------------------------

interface MemResults {
  minibox: Mem[];
  podman: Mem[];
  /** Per-mapping Rss/Pss of each monitor, from the last round. */
  maps: Partial<Record<"minibox" | "podman", Map<string, { rss: number; pss: number }>>>;
}

async function memoryRounds(ref: string): Promise<MemResults> {
  const out: MemResults = { minibox: [], podman: [], maps: {} };
  for (let r = 1; r <= MEM_ROUNDS; r++) {
    settle();
    const both: Started[] = [];
    try {
      for (const tool of rotate(["minibox", "podman"] as const, r - 1)) {
        const name = `${TOKEN}-mem${r}`;
        both.push(
          tool === "minibox" ? startMinibox(ref, name, SLEEP) : startPodman(ref, name, SLEEP),
        );
      }
      await sleep(IDLE_MS);
      for (const s of both) {
        out[s.tool].push(memOf(s.monitor));
        out.maps[s.tool] = mappingsOf(s.monitor);
      }
    } finally {
      for (const s of both) await remove(s);
    }
    const show = (t: "minibox" | "podman") => {
      const m = out[t].at(-1) as Mem;
      return `${t} Rss ${m.rss} Pss ${m.pss} kB`;
    };
    process.stderr.write(
      `memory round ${r}/${MEM_ROUNDS}: ${show("minibox")}, ${show("podman")}\n`,
    );
  }
  return out;
}

// ---- 1b. memory of N detached containers at once (bench/all.ts) ------------------------

export interface ScaleMem {
  n: number;
  /** One entry per container: its monitor's memory (minibox-exec, conmon). */
  minibox: Mem[];
  podman: Mem[];
}

/**
 * Starts `n` idle containers with minibox and `n` with podman, alternating
 * (container i: minibox then podman, or podman then minibox), all alive at
 * once; after IDLE_MS reads the memory of each one's monitor — minibox's only
 * process per detached container (there is no daemon), podman's conmon — then
 * removes them all.
 */
export async function memoryAtScale(ref: string, n: number): Promise<ScaleMem> {
  const out: ScaleMem = { n, minibox: [], podman: [] };
  const all: Started[] = [];
  try {
    for (let i = 1; i <= n; i++) {
      for (const tool of rotate(["minibox", "podman"] as const, i - 1)) {
        const name = `${TOKEN}-n${i}`;
        all.push(
          tool === "minibox" ? startMinibox(ref, name, SLEEP) : startPodman(ref, name, SLEEP),
        );
      }
      if (i % 10 === 0 || i === n) process.stderr.write(`memory: ${i}/${n} containers each\n`);
    }
    await sleep(IDLE_MS);
    for (const s of all) out[s.tool].push(memOf(s.monitor));
  } finally {
    process.stderr.write(`memory: removing ${all.length} containers…\n`);
    for (const s of all) await remove(s);
  }
  return out;
}

/** Totals per container of memoryAtScale, in kB. */
export function perContainer(list: Mem[]): { rss: number; pss: number; uss: number } {
  const sum = (k: keyof Mem) => list.reduce((a, m) => a + m[k], 0);
  const n = Math.max(1, list.length);
  return { rss: sum("rss") / n, pss: sum("pss") / n, uss: sum("uss") / n };
}

export function scaleMemoryReport(mem: ScaleMem): string[] {
  const label = {
    minibox: "**minibox's monitors** (`minibox-exec --detach`)",
    podman: "**podman's conmons** (`--runtime runc`)",
  };
  const out = [
    `### Memory of ${mem.n} detached \`sleep 600\` containers per tool, all alive at once, read ${IDLE_MS} ms after the last start (kB)`,
    "",
    "Sum over the containers of their monitor's `/proc/PID/smaps_rollup`, divided by the number of containers.",
    "Rss counts shared pages (the binary, libc) once per process; Pss splits them among the processes sharing them.",
    "",
    row([
      "processes",
      "containers",
      "Rss per container",
      "Pss per container",
      "USS per container",
      "total Rss",
      "total Pss",
    ]),
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const t of ["minibox", "podman"] as const) {
    const p = perContainer(mem[t]);
    const total = (k: "rss" | "pss") => kb(mem[t].reduce((a, m) => a + m[k], 0));
    out.push(
      row([
        label[t],
        String(mem[t].length),
        kb(p.rss),
        kb(p.pss),
        kb(p.uss),
        total("rss"),
        total("pss"),
      ]),
    );
  }
  out.push("");
  return out;
}

// ---- 2. memory after LOG_BYTES of logs ------------------------------------------------

interface LogResult {
  before: Mem;
  after: Mem;
  logSize: number;
  /** run -d returned → the marker is in the log, minus the container's 1 s sleep. */
  drainMs: number;
}

/** The last bytes of a file. */
function tail(file: string, n = 256): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = statSync(file).size;
    const buf = Buffer.alloc(Math.min(n, size));
    readSync(fd, buf, 0, buf.length, size - buf.length);
    return buf.toString("utf8");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function logRun(tool: "minibox" | "podman", ref: string, round: number): Promise<LogResult> {
  const name = `${TOKEN}-log${round}`;
  const t0 = performance.now();
  const s = tool === "minibox" ? startMinibox(ref, name, LOG_CMD) : startPodman(ref, name, LOG_CMD);
  try {
    // Read while the container still sleeps its first second.
    await sleep(Math.max(0, 700 - (performance.now() - t0)));
    const before = memOf(s.monitor);
    let seen = 0;
    while (performance.now() - t0 < LOG_TIMEOUT_MS) {
      if (tail(s.log).includes(LOG_MARKER)) {
        seen = performance.now();
        break;
      }
      await sleep(20);
    }
    if (!seen)
      throw new Error(
        `${tool} log test: "${LOG_MARKER}" not in ${s.log} after ${LOG_TIMEOUT_MS / 1000} s`,
      );
    await sleep(IDLE_MS);
    const after = memOf(s.monitor);
    return { before, after, logSize: statSync(s.log).size, drainMs: seen - t0 - 1000 };
  } finally {
    await remove(s);
  }
}

async function logRounds(ref: string): Promise<Record<"minibox" | "podman", LogResult[]>> {
  const out = { minibox: [] as LogResult[], podman: [] as LogResult[] };
  for (let r = 1; r <= LOG_ROUNDS; r++) {
    for (const tool of rotate(["minibox", "podman"] as const, r - 1)) {
      settle();
      const res = await logRun(tool, ref, r);
      out[tool].push(res);
      process.stderr.write(
        `log round ${r}/${LOG_ROUNDS} ${tool}: Rss ${res.before.rss} → ${res.after.rss} kB, ` +
          `peak ${res.after.hwm} kB, ${(res.logSize / 1e6).toFixed(1)} MB of log in ~${ms(res.drainMs)} ms\n`,
      );
    }
  }
  return out;
}

// ---- 3. run -d latency -------------------------------------------------------------

function round(tools: Tool[], ref: string, name: string) {
  for (const t of tools)
    if (t === "runc") started.runc.add(`${TOKEN}-${name}-runc`);
    else if (t === "podman") started.podman.add(`${TOKEN}-${name}`);
  return hyperfineRound(tools, (t) => argv(t, ref, name), {
    json: path.join(P.hyperfine, `${name}.json`),
    env: benchEnv(),
    round: name,
    track,
  });
}

/** After a round (untimed): each container must be running; then it is removed. */
function checkAndClean(round: string): void {
  const name = `${TOKEN}-${round}`;
  // minibox: find the container by its name.
  const dir = path.join(P.mbxRoot, "containers");
  const ids = readdirSync(dir).filter((id) => {
    try {
      return miniboxState(id).name === name;
    } catch {
      return false;
    }
  });
  if (ids.length !== 1)
    throw new Error(`round ${round}: ${ids.length} minibox containers named ${name}`);
  const id = ids[0] as string;
  started.minibox.add(id);
  started.miniboxAll.add(id);
  const st = miniboxState(id);
  if (st.pid) started.miniboxPids.set(st.pid, id);
  if (st.monitorPid) started.miniboxPids.set(st.monitorPid, id);
  if (st.status !== "running" || !st.pid || !existsSync(`/proc/${st.pid}`))
    throw new Error(
      `round ${round}: minibox container ${id} is not running: ${JSON.stringify(st)}`,
    );
  removeMinibox(id);

  const podmanRunning = must(
    "podman",
    podmanArgs("inspect", "--format", "{{.State.Running}}", name),
  );
  if (podmanRunning.trim() !== "true")
    throw new Error(`round ${round}: podman container ${name} is not running`);
  removePodman(name);

  const runcId = `${name}-runc`;
  const state = JSON.parse(must("runc", ["--root", P.runcRoot, "state", runcId]));
  if (state.status !== "running")
    throw new Error(`round ${round}: runc container ${runcId} is ${state.status}`);
  must("runc", ["--root", P.runcRoot, "delete", "-f", runcId]);
  started.runc.delete(runcId);

  for (const mp of ourMounts())
    if (!mp.startsWith(path.join(P.podman, "root")))
      anomalies.push(`round ${round}: mount ${mp} left`);
}

function latencyRounds(ref: string): Promise<Record<Tool, Stats>> {
  return hyperfineRounds(TOOLS, ROUNDS, (order, name) => round(order, ref, name), {
    check: checkAndClean,
    label: "latency ",
    show: ["minibox", "podman", "runc", "node"],
  });
}

// ---- report --------------------------------------------------------------------

function machineFacts(): string[] {
  const size = (f: string) => `${Math.round(statSync(f).size / 1024)} KiB`;
  return [
    cpuLine(),
    `- work dir ${path.dirname(WORK)}/mbx-mon-*: ${filesystemOf(WORK)}`,
    `- node ${process.version}; ${firstLine("runc", ["--version"])}; ${firstLine("podman", ["--version"])}; ${firstLine("conmon", ["--version"])}; ${firstLine("hyperfine", ["--version"])}`,
    `${commitLine("src", "native")}; monitor = ${path.relative(PROJECT, EXECUTOR)} (${size(EXECUTOR)} on disk, dynamically linked to libc); /usr/bin/conmon ${size("/usr/bin/conmon")} (glib, libsystemd, …)`,
    loadLine(before.load),
  ];
}

function memoryReport(mem: MemResults): string[] {
  const col = (list: Mem[], k: keyof Mem) => stats(list.map((m) => m[k]));
  const out = [
    `### Idle monitor memory: one \`sleep 600\` container each, both alive at once, read ${IDLE_MS} ms after start (kB, ${MEM_ROUNDS} rounds)`,
    "",
    "From `/proc/PID/smaps_rollup` (and `VmHWM`, `Threads` from `/proc/PID/status`). USS = Private_Clean + Private_Dirty.",
    "",
    row([
      "process",
      "Rss median",
      "Rss min–max",
      "Pss median",
      "Pss min–max",
      "USS median",
      "Private_Dirty",
      "Shared_Clean",
      "peak (VmHWM)",
      "threads",
      "Rss / Pss per round",
      "same binary running elsewhere",
    ]),
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
  ];
  const label = {
    minibox: "**minibox's monitor** (`minibox-exec --detach`)",
    podman: "**podman's conmon** (conmon 2.1, `--runtime runc`)",
  };
  for (const t of ["minibox", "podman"] as const) {
    const list = mem[t];
    const rss = col(list, "rss");
    const pss = col(list, "pss");
    out.push(
      row([
        label[t],
        kb(rss.median),
        `${kb(rss.min)}–${kb(rss.max)}`,
        kb(pss.median),
        `${kb(pss.min)}–${kb(pss.max)}`,
        kb(col(list, "uss").median),
        kb(col(list, "privateDirty").median),
        kb(col(list, "sharedClean").median),
        kb(col(list, "hwm").median),
        String(col(list, "threads").median),
        list.map((m) => `${m.rss}/${m.pss}`).join(", "),
        list.map((m) => m.sameBinary).join(", "),
      ]),
    );
  }
  const m = mem.minibox;
  const c = mem.podman;
  const r = (k: keyof Mem) => ratio(col(m, k).median, col(c, k).median);
  const rssMet = col(m, "rss").median <= col(c, "rss").median;
  out.push(
    "",
    row(["minibox / conmon", "Rss", "Pss", "USS", "Private_Dirty", "goal: Rss ≤ conmon's"]),
    "| --- | ---: | ---: | ---: | ---: | --- |",
    row([
      "ratio of medians",
      r("rss"),
      r("pss"),
      r("uss"),
      r("privateDirty"),
      rssMet ? "met" : `**missed** (by ${kb(col(m, "rss").median - col(c, "rss").median)} kB)`,
    ]),
    "",
  );
  const mm = mem.maps.minibox;
  const cm = mem.maps.podman;
  if (mm && cm) {
    const names = [...new Set([...mm.keys(), ...cm.keys()])]
      .map((n) => ({ n, a: mm.get(n), b: cm.get(n) }))
      .filter(({ a, b }) => (a?.rss ?? 0) + (b?.rss ?? 0) > 0)
      .sort(
        (x, y) => Math.max(y.a?.rss ?? 0, y.b?.rss ?? 0) - Math.max(x.a?.rss ?? 0, x.b?.rss ?? 0),
      );
    const cell = (v?: { rss: number; pss: number }) => (v ? `${v.rss} / ${v.pss}` : "");
    out.push(
      "Where the Rss goes (last round, `/proc/PID/smaps` summed per mapped object; kB Rss / Pss):",
      "",
      row(["mapping", "minibox's monitor", "conmon"]),
      "| --- | ---: | ---: |",
      ...names.map(({ n, a, b }) => row([`\`${n}\``, cell(a), cell(b)])),
      "",
    );
  }
  return out;
}

function logReport(logs: Record<"minibox" | "podman", LogResult[]>): string[] {
  const out = [
    `### Monitor memory after the container wrote ${(LOG_BYTES / 1e6).toFixed(0)} MB to stdout (${LOG_ROUNDS} round${LOG_ROUNDS === 1 ? "" : "s"} per tool, kB)`,
    "",
    `\`sh -c 'sleep 1; yes hello | head -c ${LOG_BYTES}; echo ${LOG_MARKER}; sleep 600'\`: memory read ~0.7 s after start`,
    `(before any output), then ${IDLE_MS} ms after the marker line reached the log file. Peak = VmHWM over the monitor's life.`,
    "",
    row([
      "process",
      "log format",
      "log file",
      "drain time (ms)",
      "Rss before",
      "Rss after",
      "peak Rss",
      "Pss before",
      "Pss after",
      "USS after",
      "rounds: Rss before → after (peak)",
    ]),
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  const label = { minibox: "minibox's monitor", podman: "podman's conmon" };
  const format = { minibox: "json-file", podman: "k8s-file" };
  for (const t of ["minibox", "podman"] as const) {
    const list = logs[t];
    const med = (f: (l: LogResult) => number) => median(list.map(f));
    out.push(
      row([
        label[t],
        format[t],
        `${(med((l) => l.logSize) / 1e6).toFixed(1)} MB`,
        ms(med((l) => l.drainMs)),
        kb(med((l) => l.before.rss)),
        kb(med((l) => l.after.rss)),
        kb(med((l) => l.after.hwm)),
        kb(med((l) => l.before.pss)),
        kb(med((l) => l.after.pss)),
        kb(med((l) => l.after.uss)),
        list.map((l) => `${l.before.rss} → ${l.after.rss} (${l.after.hwm})`).join(", "),
      ]),
    );
  }
  out.push("");
  return out;
}

function latencyReport(times: Record<Tool, Stats>): string[] {
  const out = [
    `### \`run -d\` until the command returns with the container running, wall time (ms, ${ROUNDS} rounds)`,
    "",
    ...timesTable(TOOLS, (t) => LABELS[t], times),
  ];
  const m = times.minibox;
  out.push(
    "",
    row(["ratio", "of medians", "of mins"]),
    "| --- | ---: | ---: |",
    row([
      "**minibox / podman**",
      ratio(m.median, times.podman.median),
      ratio(m.min, times.podman.min),
    ]),
    row(["**minibox / runc**", ratio(m.median, times.runc.median), ratio(m.min, times.runc.min)]),
    row([
      "(minibox − node -e 0) / runc",
      ratio(m.median - times.node.median, times.runc.median),
      ratio(m.min - times.node.min, times.runc.min),
    ]),
    "",
  );
  return out;
}

// ---- cleanup --------------------------------------------------------------------

export const cleanup = cleanupOnce(async () => {
  await stopChild(BENCH.child);
  // minibox containers of ours that a round did not remove (none expected);
  // every container under our root is ours.
  const containersDir = path.join(P.mbxRoot, "containers");
  if (existsSync(containersDir))
    for (const id of readdirSync(containersDir)) {
      started.minibox.add(id);
      started.miniboxAll.add(id);
    }
  for (const id of started.minibox) {
    if (!existsSync(path.join(P.mbxRoot, "containers", id))) continue;
    anomalies.push(`minibox container ${id} was left; removed with rm -f`);
    spawnSync(LAUNCHER, ["--root", P.mbxRoot, "rm", "-f", id], {
      env: benchEnv(),
      stdio: "ignore",
    });
  }
  for (const [pid, id] of started.miniboxPids) {
    if (stillOurs(pid, id)) {
      anomalies.push(`PID ${pid} of minibox container ${id} was left; sent SIGKILL`);
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
  for (const id of started.runc) {
    if (spawnSync("runc", ["--root", P.runcRoot, "state", id], { stdio: "ignore" }).status === 0) {
      anomalies.push(`runc container ${id} was left; deleted with runc delete -f`);
      spawnSync("runc", ["--root", P.runcRoot, "delete", "-f", id], { stdio: "ignore" });
    }
  }
  if (podmanReady) {
    for (const name of started.podman)
      spawnSync("podman", podmanArgs("rm", "-f", "-t", "0", name), {
        env: podmanEnv(),
        stdio: "ignore",
      });
  }
  await cleanUpBench(BENCH, {
    running,
    podman: podmanReady ? PODMAN : undefined,
    podmanCgroupParent: PODMAN_CGROUP_PARENT,
    mounts: ourMounts,
    ourCgroup,
    processes: ourProcesses,
  });
});

/** A cgroup named after our token or after one of this run's minibox containers. */
const ourCgroup = (dir: string) =>
  dir.includes(TOKEN) || started.miniboxAll.has(path.basename(dir));

export function leftovers(): string[] {
  const out = leftoversSince(before, {
    mountDirs: [WORK],
    ours: ourCgroup,
    processes: ourProcesses(),
    workDir: KEEP ? undefined : WORK,
  });
  for (const [pid, id] of started.miniboxPids)
    if (stillOurs(pid, id)) out.push(`process ${pid} (minibox ${id})`);
  return out;
}

/**
 * New minibox container cgroups (…/minibox/<id>) of other runs on the shared
 * machine (ours are checked by leftovers()): reported as one line, never touched.
 */
function othersMiniboxCgroups(): string[] {
  const ids = new Set(
    newMiniboxCgroups(before)
      .map((d) => path.basename(d))
      .filter((id) => !started.miniboxAll.has(id)),
  );
  if (ids.size === 0) return [];
  const some = [...ids].slice(0, 3).map((id) => id.slice(0, 12));
  return [
    `${ids.size} minibox container cgroup(s) appeared during the run that are not this run's (a concurrent run's on the shared machine; not touched), e.g. ${some.join(", ")}`,
  ];
}

// ---- main ----------------------------------------------------------------------

async function main(): Promise<void> {
  running = await startRegistry(WORK, [BUNDLE, LAUNCHER, EXECUTOR]);
  const { env } = running;
  const ref = `${env.registries.anon}/${env.fixtures.base.repo}:latest`;
  process.stderr.write(`test env ready in ${env.setupMs} ms; image ${ref}\n`);
  await prepare(ref, env.fixtures.base);
  const mem = await memoryRounds(ref);
  const logs = LOG_ROUNDS > 0 ? await logRounds(ref) : undefined;
  const times = await latencyRounds(ref);
  const left = readdirSync(path.join(P.mbxRoot, "containers"));
  if (left.length > 0) anomalies.push(`minibox left container dirs: ${left.join(", ")}`);
  const text = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z)`,
    "",
    ...machineFacts(),
    "",
    ...memoryReport(mem),
    ...(logs ? logReport(logs) : []),
    ...latencyReport(times),
  ].join("\n");
  process.stdout.write(`${text}\n`);
  if (OUT) writeFileSync(OUT, `${text}\n`);
}

/** This part's anomalies and the note on other runs' cgroups, for the closing check. */
export const MONITOR_BENCH = { anomalies, notes: othersMiniboxCgroups };

if (runAsScript())
  await runBench(main, {
    cleanup,
    anomalies,
    leftovers,
    notes: othersMiniboxCgroups,
    clean:
      "Cleanup check: no mounts, cgroups, processes, containers or work dirs of this run are left.",
    out: OUT,
    kept: KEEP ? WORK : undefined,
  });
