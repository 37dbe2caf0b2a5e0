// Networking: `minibox run --rm IMAGE true` on its default bridge against
// `podman run --rm` on podman's default bridge (netavark), with
// `--network none` as the reference rows; where minibox's network steps
// spend their time (--trace); then HTTP throughput and latency to a busybox
// httpd in a container, through the container's address directly and
// through published ports (`-p`), with wrk on the host. See bench/README.md
// ("Benchmark: networking") for what is measured and why.
//
//   npm run build && npx vite-node bench/network.ts [-- --rounds N]
//
// Options (after "--"):
//   --rounds N           timed rounds of part 1; each runs every command once (default 10)
//   --warm-rounds N      part 1's bridge rows again while a container of each
//                        tool keeps its bridge up (default 5; 0 = none)
//   --trace-rounds N     traced minibox runs per network mode (default 5; 0 = none)
//   --wrk-rounds N       rounds of part 2; each runs wrk once per target and file (default 3; 0 = none)
//   --wrk-seconds N      one wrk run's duration (default 10)
//   --wrk-threads N, --wrk-connections N   wrk's -t and -c (default 2 and 16)
//   --out FILE           also write the Markdown results to FILE
//   --keep               keep the work dir (default: removed at the end)
//
// Host hygiene: netavark writes iptables chains (NETAVARK_*) and turns
// net.ipv4.ip_forward on without undoing either, so iptables, ip6tables, the
// nftables rule set and the forwarding sysctls are snapshotted before
// anything runs and put back at the end, then compared with the snapshot
// (bench/host-net.ts). HTTP traffic goes only to the containers' addresses
// (after checking the route goes through the tool's bridge), to 127.0.0.1 and
// to the host's own address; a guard table drops anything for the
// containers' addresses that would leave through another interface.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { NETWORK_ROOT, networkPaths, rootLayout } from "../src/layout.js";
import type { RunningTestEnv } from "../test/support/env.js";
import {
  BUNDLE,
  benchState,
  CLI,
  cleanUpBench,
  cleanupOnce,
  commitLine,
  cpuLine,
  firstLine,
  hyperfineRound,
  hyperfineRounds,
  intOption,
  KEEP,
  LAUNCHER,
  leftoversSince,
  loadLine,
  median,
  mountsUnder,
  ms,
  ms1,
  must,
  OUT,
  parseTrace,
  podmanRunLimits,
  podmanStore,
  processesNaming,
  ratio,
  rotate,
  row,
  runBench,
  type Stats,
  settle,
  sleep,
  spawnTimed,
  startRegistry,
  stats,
  stopChild,
  type TraceLine,
  timesTable,
} from "./common.js";
import {
  addGuard,
  guardDrops,
  hostNetDiff,
  hostNetSnapshot,
  nftTables,
  removeGuard,
  restoreHostNet,
} from "./host-net.js";
import { runWrk, type WrkResult } from "./wrk.js";

const ROUNDS = intOption("--rounds", 10, 1);
const WARM_ROUNDS = intOption("--warm-rounds", 5, 0);
const TRACE_ROUNDS = intOption("--trace-rounds", 5, 0);
const WRK_ROUNDS = intOption("--wrk-rounds", 3, 0);
const WRK_SECONDS = intOption("--wrk-seconds", 10, 1);
const WRK_THREADS = intOption("--wrk-threads", 2, 1);
const WRK_CONNECTIONS = intOption("--wrk-connections", 16, 1);

// ---- work dir, names, bookkeeping ---------------------------------------------

/** Before anything of ours runs: what the host's network settings must be again at the end. */
const HOST_BEFORE = hostNetSnapshot();
/** Whether minibox's table was there before we ran anything: another user's network. */
const TABLE_AT_START = nftTables().includes("inet minibox");
const BENCH = benchState("mbx-net");
const { token: TOKEN, work: WORK, anomalies, before, track } = BENCH;
const P = {
  mbxRoot: path.join(WORK, "minibox"),
  mbxConfig: path.join(WORK, "minibox-config"),
  podman: path.join(WORK, "podman"),
  /** Short on purpose (podman's overlay driver: runroot ≤ 50 characters). */
  podmanRunroot: path.join(WORK, "prun"),
  containersConfig: path.join(WORK, "containers-config"),
  podmanNetworks: path.join(WORK, "podman-networks"),
  www: path.join(WORK, "www"),
  hyperfine: path.join(WORK, "hyperfine"),
};
const PODMAN_CGROUP_PARENT = `/${TOKEN}-podman`;
/** The served files: a small one (the talk's greeting) and 1 MiB of random bytes. */
const FILES = { small: "greeting.txt", big: "big.bin" } as const;
type FileKey = keyof typeof FILES;
const GREETING = "Hello from a container on the bridge!\n";

let running: RunningTestEnv | undefined;
let podmanReady = false;
let guard: string | undefined;
/** Our minibox containers that run on purpose (part 2's httpd): not leftovers of a round. */
const serving = new Set<string>();
/** Found by cleanup for leftovers(): minibox network state of ours still there. */
const networkLeft: string[] = [];
/** Cleanup's notes: what it put back on the host. */
const restored: string[] = [];
/** Things worth saying that are not anomalies. */
const notes: string[] = [];
/** Things that may have disturbed the figures (concurrent users of minibox's bridge). */
const disturbances: string[] = [];

const ourMounts = () => mountsUnder(WORK);
const ourProcesses = () => processesNaming(WORK, TOKEN);

// ---- podman, isolated, with netavark (bench/common.ts) --------------------------

const PODMAN = podmanStore(P.podman, P.podmanRunroot, P.containersConfig, {
  backend: "netavark",
  configDir: P.podmanNetworks,
});
const podmanArgs = PODMAN.args;
const benchEnv = (): NodeJS.ProcessEnv => ({ ...PODMAN.env(), MINIBOX_CONFIG: P.mbxConfig });
const mbx = (...args: string[]) => [LAUNCHER, "--root", P.mbxRoot, ...args];
/** podman run's options shared by every podman container here (as in bench/run.ts). */
const PODMAN_RUN = podmanRunLimits(PODMAN_CGROUP_PARENT);

// ---- minibox's network state (read-only, through src/layout.ts) -------------------

interface LeaseView {
  /** Container IDs of our store that hold a lease. */
  ours: string[];
  /** Leases of other stores (another user's containers on minibox's networks). */
  others: number;
}

/** The lease files of every minibox network, read without a lock (a glance, not a decision). */
function leasesNow(): LeaseView {
  const view: LeaseView = { ours: [], others: 0 };
  const dir = rootLayout(NETWORK_ROOT).networks;
  let ids: string[] = [];
  try {
    ids = readdirSync(dir);
  } catch {
    return view; // no network yet
  }
  for (const id of ids) {
    let leases: Record<string, { root?: string }> = {};
    try {
      leases = JSON.parse(readFileSync(networkPaths(path.join(dir, id)).leases, "utf8"));
    } catch {
      continue; // no lease file
    }
    for (const [cid, l] of Object.entries(leases)) {
      if (l.root === P.mbxRoot) view.ours.push(cid);
      else view.others++;
    }
  }
  return view;
}

/** minibox's default network record: its bridge and subnet. */
function defaultNetwork(): { bridge: string; subnet: string } | undefined {
  const dir = rootLayout(NETWORK_ROOT).networks;
  for (const id of readdirSync(dir)) {
    try {
      const n = JSON.parse(readFileSync(networkPaths(path.join(dir, id)).record, "utf8"));
      if (n.name === "bridge") return { bridge: n.bridge, subnet: n.subnet };
    } catch {
      // removed meanwhile
    }
  }
  return undefined;
}

const linkExists = (dev: string) =>
  spawnSync("ip", ["link", "show", "dev", dev], { stdio: "ignore" }).status === 0;

// ---- cleanup --------------------------------------------------------------------

async function removeContainers(): Promise<void> {
  const env = benchEnv();
  const ids = spawnSync(LAUNCHER, ["--root", P.mbxRoot, "ps", "-aq", "--no-trunc"], {
    env,
    encoding: "utf8",
  }).stdout?.trim();
  if (ids) {
    const r = spawnSync(LAUNCHER, ["--root", P.mbxRoot, "rm", "-f", ...ids.split("\n")], { env });
    if (r.status !== 0) anomalies.push(`minibox rm -f ${ids.replace(/\n/g, " ")} failed`);
  }
  if (podmanReady) {
    spawnSync("podman", podmanArgs("rm", "-af", "-t", "0"), { env, stdio: "ignore" });
    const r = spawnSync("podman", podmanArgs("system", "reset", "-f"), { env, encoding: "utf8" });
    if (r.status !== 0) anomalies.push(`podman system reset failed: ${r.stderr.trim()}`);
  }
}

/**
 * Whether minibox's networking is in use by someone else: leases of another
 * store, or (when none of ours runs) the default bridge or minibox's table
 * there at all. Another engineer's tests may keep their network state under
 * another root, so the bridge and the table count too. Returns what was seen.
 */
function othersOnMinibox(): string | undefined {
  const leases = leasesNow();
  if (leases.others > 0) return `${leases.others} lease(s) of another store`;
  if (leases.ours.some((id) => serving.has(id))) return undefined;
  const net = defaultNetwork();
  const seen = [
    ...(net && linkExists(net.bridge) ? [`bridge ${net.bridge}`] : []),
    ...(nftTables().includes("inet minibox") ? ["table inet minibox"] : []),
  ];
  return leases.ours.length === 0 && seen.length > 0 ? `${seen.join(" and ")} up` : undefined;
}

/** minibox's side at the end: no lease of ours; no bridge or table unless someone else's. */
function checkMiniboxNetwork(): void {
  const leases = leasesNow();
  for (const id of leases.ours) networkLeft.push(`minibox lease of container ${id.slice(0, 12)}`);
  const others = othersOnMinibox();
  if (!others) return;
  if (leases.others > 0 || TABLE_AT_START) {
    disturbances.push(
      `at the end: ${others}, another user's (it was so at the start too, or they hold leases)`,
    );
    return;
  }
  // A minibox of another branch keeps its leases elsewhere: then this is not ours, but it cannot be told.
  networkLeft.push(
    `${others} with no lease under ${NETWORK_ROOT} (minibox's leak, or another branch's minibox)`,
  );
}

const cleanup = cleanupOnce(async () => {
  await stopChild(BENCH.child);
  await stopChild(hostHttpd);
  // podman's store is reset there too (between rounds as well).
  await removeContainers();
  await cleanUpBench(BENCH, {
    running,
    podmanCgroupParent: PODMAN_CGROUP_PARENT,
    mounts: ourMounts,
    processes: ourProcesses,
    beforeStop: () => {
      if (guard) {
        const drops = guardDrops(guard);
        if (drops) anomalies.push(`the guard dropped ${drops} packet(s) bound off the host`);
        removeGuard(guard);
      }
      checkMiniboxNetwork();
      restored.push(...restoreHostNet(HOST_BEFORE, anomalies));
    },
  });
});

/** What is left after cleanup (must be empty), against the snapshots at the start. */
function leftovers(): string[] {
  const othersNow = leasesNow().others > 0 || TABLE_AT_START || disturbances.length > 0;
  // Another store's containers own minibox's table (and ip_forward) while they run.
  const skip = (table: string) => othersNow && table === "inet minibox";
  const host = hostNetDiff(HOST_BEFORE, skip).filter(
    (d) => !(othersNow && d.startsWith("net.ipv4.ip_forward ")),
  );
  return [
    ...leftoversSince(before, {
      mountDirs: [WORK],
      ours: (dir) => dir.includes(TOKEN),
      processes: ourProcesses(),
      workDir: KEEP ? undefined : WORK,
    }),
    ...networkLeft,
    ...host,
  ];
}

// ---- part 1: run --rm IMAGE true --------------------------------------------------

type Tool = "mbxBridge" | "mbxNone" | "podBridge" | "podNone" | "node";
const TOOLS: Tool[] = ["mbxBridge", "podBridge", "mbxNone", "podNone", "node"];
const WARM_TOOLS: Tool[] = ["mbxBridge", "podBridge", "mbxNone", "podNone"];

const LABELS: Record<Tool, string> = {
  mbxBridge: "**minibox** `./minibox run --rm IMAGE true` (default network: bridge)",
  podBridge:
    "**podman** `podman --runtime runc run --rm … IMAGE true` (default network: netavark bridge)",
  mbxNone: "minibox `./minibox run --rm --network none IMAGE true`",
  podNone: "podman `podman --runtime runc run --rm --network none … IMAGE true`",
  node: "`node -e 0`",
};

function argv(tool: Tool, ref: string, args: string[] = ["true"]): string[] {
  const podman = (...net: string[]) => [
    "podman",
    ...podmanArgs("--runtime", "runc", "run", "--rm", ...net, ...PODMAN_RUN, ref, ...args),
  ];
  switch (tool) {
    case "mbxBridge":
      return mbx("run", "--rm", ref, ...args);
    case "mbxNone":
      return mbx("run", "--rm", "--network", "none", ref, ...args);
    case "podBridge":
      return podman();
    case "podNone":
      return podman("--network", "none");
    case "node":
      return ["node", "-e", "0"];
  }
}

/** Each tool's container gets (bridge) or lacks (none) an eth0 with an IPv4 address. */
function checkNetworkModes(ref: string): void {
  const env = benchEnv();
  const show = ["sh", "-c", "ip -o -4 addr show"];
  for (const tool of ["mbxBridge", "mbxNone", "podBridge", "podNone"] as Tool[]) {
    const [file, ...args] = argv(tool, ref, show);
    const out = must(file as string, args, env);
    const eth0 = /^\d+: eth0\s+inet (\S+)/m.exec(out)?.[1];
    const bridged = tool.endsWith("Bridge");
    if (bridged !== (eth0 !== undefined))
      throw new Error(`${tool}: expected ${bridged ? "an" : "no"} eth0 address, got:\n${out}`);
    if (eth0) process.stderr.write(`${tool}: eth0 ${eth0}\n`);
  }
}

/** After a round: no container of ours, no lease of ours; note others on minibox's bridge. */
function checkRound(name: string): void {
  // c/storage's overlay driver bind-mounts its home onto itself and keeps it (bench/README.md).
  const home = path.join(P.podman, "root", "overlay");
  const podmanLeft = podmanContainers().filter((id) => !serving.has(id));
  if (podmanLeft.length > 0)
    notes.push(
      `after round ${name}: podman still had container(s) ${podmanLeft.map((id) => id.slice(0, 12))} (its --rm cleanup runs on after the command returns)`,
    );
  for (const mp of ourMounts()) {
    if (mp === home) continue;
    // A podman --rm container's storage is unmounted by `podman container cleanup`,
    // which conmon starts in the background: it may not be done yet. The end checks it.
    if (mp.startsWith(`${P.podman}/`))
      notes.push(
        `after a round, podman's background cleanup had not yet unmounted ${path.basename(path.dirname(mp))}/…/${path.basename(mp)}`,
      );
    else anomalies.push(`round ${name}: mount ${mp} left`);
  }
  const left = readdirSync(rootLayout(P.mbxRoot).containers).filter((id) => !serving.has(id));
  if (left.length > 0) anomalies.push(`round ${name}: minibox left container dirs ${left}`);
  const leases = leasesNow();
  const ours = leases.ours.filter((id) => !serving.has(id));
  if (ours.length > 0) anomalies.push(`round ${name}: leases of ours left: ${ours}`);
  if (leases.others > 0)
    disturbances.push(
      `round ${name}: ${leases.others} lease(s) of another store on minibox's networks`,
    );
}

/** IDs of podman's containers in our store (all states). */
function podmanContainers(): string[] {
  const r = spawnSync("podman", podmanArgs("ps", "-aq", "--no-trunc"), {
    env: benchEnv(),
    encoding: "utf8",
  });
  return (r.stdout ?? "").split("\n").filter((l) => l.trim() !== "");
}

function runRounds(ref: string, tools: Tool[], rounds: number, label: string) {
  const round = (order: Tool[], name: string) =>
    hyperfineRound(order, (t) => argv(t, ref), {
      json: path.join(P.hyperfine, `${label.trim()}-${name}.json`),
      env: benchEnv(),
      round: name,
      track,
    });
  return hyperfineRounds(tools, rounds, round, {
    check: checkRound,
    label,
    show: tools.filter((t) => t !== "node"),
  });
}

// ---- minibox's network steps, from --trace --------------------------------------

/** One stage of the breakdown: its label, and how to get it from one run's trace (undefined: absent). */
type Stage = [string, (l: TraceLine[], wall: number) => number | undefined];

const tookOf = (re: RegExp) => (lines: TraceLine[]) => lines.find((l) => re.test(l.text))?.took;

function span(lines: TraceLine[], from: (l: TraceLine) => boolean, to: (l: TraceLine) => boolean) {
  const i = lines.findIndex(from);
  const j = lines.findIndex((l, k) => k > i && to(l));
  return i < 0 || j < 0 ? undefined : (lines[j] as TraceLine).at - (lines[i] as TraceLine).at;
}

/** The last cgroup rmdir line → exit status: what runs after the container's cgroups are gone. */
function teardown(lines: TraceLine[]): number | undefined {
  const exit = lines.findIndex((l) => l.text.startsWith("exit status "));
  const rmdirs = lines.filter((l, i) => i < exit && l.text.startsWith("rmdir "));
  const last = rmdirs.at(-1);
  return exit < 0 || !last ? undefined : (lines[exit] as TraceLine).at - last.at;
}

const STAGES: Stage[] = [
  [
    "lease: the default network's record, an address under the lease lock",
    tookOf(/^network \S+: lease /),
  ],
  [
    "host side under the host lock: bridge, ip_forward, firewall (total)",
    tookOf(/: host side ready$/),
  ],
  ["… of which the bridge and its gateway address up", tookOf(/^bridge \S+ \S+ up$/)],
  [
    "… of which the nftables table (libnftables, one batch)",
    tookOf(/^firewall: table inet minibox for /),
  ],
  ["veth pair, peer moved into the init's netns (executor, netlink)", tookOf(/^veth /)],
  ["eth0: MAC, address, up (init, netlink)", tookOf(/^eth0: MAC /)],
  ["default route (init, netlink)", tookOf(/^default route via /)],
  ["loopback up (init)", tookOf(/^bring up the loopback interface$/)],
  [
    "execve → first cgroup rmdir: the program runs and exits, the executor reaps and exits",
    (l) =>
      span(
        l,
        (x) => x.text.startsWith("execve "),
        (x) => x.text.startsWith("rmdir "),
      ),
  ],
  [
    "last cgroup rmdir → exit status: lease released, veth and bridge deleted, table removed, ip_forward restored",
    teardown,
  ],
  ["… of which removing the nftables table", tookOf(/^firewall: table inet minibox removed$/)],
  ["**sum of the network steps** (lease, host side, veth, eth0, route, teardown)", networkSum],
  ["wall time of the traced run", (_, wall) => wall],
];

/** The network's share of a bridge run: its steps above, undefined without the lease (none). */
function networkSum(lines: TraceLine[]): number | undefined {
  const lease = tookOf(/^network \S+: lease /)(lines);
  if (lease === undefined) return undefined;
  const parts = [
    tookOf(/: host side ready$/),
    tookOf(/^veth /),
    tookOf(/^eth0: MAC /),
    tookOf(/^default route via /),
    teardown,
  ].map((f) => f(lines) ?? 0);
  return parts.reduce((a, b) => a + b, lease);
}

interface TraceStats {
  bridge: (Stats | undefined)[];
  none: (Stats | undefined)[];
  counts: { bridge: number[]; none: number[] };
}

async function traceRuns(ref: string): Promise<TraceStats> {
  const values = {
    bridge: STAGES.map(() => [] as number[]),
    none: STAGES.map(() => [] as number[]),
  };
  const args = (mode: "bridge" | "none") => [
    BUNDLE,
    "--root",
    P.mbxRoot,
    "run",
    "--rm",
    ...(mode === "none" ? ["--network", "none"] : []),
    "--trace",
    ref,
    "true",
  ];
  for (let r = 1; r <= TRACE_ROUNDS; r++) {
    const shown: string[] = [];
    for (const mode of rotate(["bridge", "none"] as const, r - 1)) {
      settle();
      const run = await spawnTimed("node", args(mode), benchEnv(), track);
      if (run.code !== 0) throw new Error(`traced run failed (${run.code}):\n${run.stderr}`);
      const lines = parseTrace(run.stderr);
      STAGES.forEach(([, get], i) => {
        const v = get(lines, run.ms);
        if (v !== undefined) values[mode][i]?.push(v);
      });
      shown.push(`${mode} ${ms(run.ms)}`);
    }
    checkRound(`trace ${r}`);
    process.stderr.write(`trace round ${r}/${TRACE_ROUNDS}: ${shown.join(", ")} ms\n`);
  }
  const st = (all: number[]) => (all.length > 0 ? stats(all) : undefined);
  return {
    bridge: values.bridge.map(st),
    none: values.none.map(st),
    counts: { bridge: values.bridge.map((v) => v.length), none: values.none.map((v) => v.length) },
  };
}

// ---- part 2: HTTP through the bridge and published ports ----------------------------

/** Whether this minibox has `run -p` (it is being added while this bench is written). */
function miniboxPublishes(): boolean {
  return /--publish/.test(must(LAUNCHER, ["run", "--help"]));
}

/** `n` free TCP ports on the host (bound on all interfaces, then released). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once("error", reject);
          s.listen(0, "0.0.0.0", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The host's own IPv4 address on the interface of its default route (not loopback). */
function hostAddress(): string | undefined {
  const routes = readFileSync("/proc/net/route", "utf8").split("\n").slice(1);
  const dev = routes.map((l) => l.split("\t")).find((f) => f[1] === "00000000")?.[0];
  return os.networkInterfaces()[dev ?? ""]?.find((a) => a.family === "IPv4" && !a.internal)
    ?.address;
}

/** The device `ip route get ADDR` picks (lo for the host's own addresses). */
function routeDevice(addr: string): string | undefined {
  const r = spawnSync("ip", ["-o", "route", "get", addr], { encoding: "utf8" });
  return / dev (\S+)/.exec(r.stdout ?? "")?.[1];
}

/** Who serves: a container of either tool, or the same busybox httpd on the host itself (the floor). */
type Side = "minibox" | "podman" | "host";
type Path = "direct" | "loopback" | "host";
const PATHS: Path[] = ["direct", "loopback", "host"];
const PATH_LABELS: Record<Path, string> = {
  direct: "(a) container IP:8080 over the bridge",
  loopback: "(b) 127.0.0.1:PORT, `-p 127.0.0.1:PORT:8080`",
  host: "(c) host address:PORT, `-p PORT:8080`",
};

interface Target {
  side: Side;
  path: Path;
  /** http://ADDR:PORT */
  base: string;
  /** The device the route to ADDR must use. */
  device: string;
}

interface Server {
  side: Side;
  name: string;
  ip: string;
  bridge: string;
  ports?: { loopback: number; all: number };
}

const HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"];

/** `-p 127.0.0.1:LOOPBACK:8080 -p ALL:8080`, or nothing without ports. */
const publishArgs = (ports?: Server["ports"]) =>
  ports ? ["-p", `127.0.0.1:${ports.loopback}:8080`, "-p", `${ports.all}:8080`] : [];

/** minibox's httpd container on its default bridge (serving: not a round's leftover). */
function startMinibox(ref: string, ports?: Server["ports"]): Server {
  const env = benchEnv();
  const name = `${TOKEN}-mbx`;
  const run = ["run", "-d", "--name", name, ...publishArgs(ports), "-v", `${P.www}:/www:ro`];
  const id = must(LAUNCHER, mbx(...run, ref, ...HTTPD).slice(1), env).trim();
  serving.add(id);
  const inspect = JSON.parse(must(LAUNCHER, mbx("inspect", name).slice(1), env));
  const ip = inspect[0].NetworkSettings.IPAddress as string;
  return { side: "minibox", name, ip, bridge: defaultNetwork()?.bridge ?? "?", ports };
}

/** podman's httpd container on podman's default network (netavark). */
function startPodman(ref: string, ports?: Server["ports"]): Server {
  const env = benchEnv();
  const name = `${TOKEN}-pod`;
  const run = ["--runtime", "runc", "run", "-d", "--name", name, ...PODMAN_RUN];
  run.push(...publishArgs(ports), "-v", `${P.www}:/www:ro`, ref, ...HTTPD);
  serving.add(must("podman", podmanArgs(...run), env).trim());
  const ip = JSON.parse(must("podman", podmanArgs("inspect", name), env))[0].NetworkSettings
    .IPAddress as string;
  const format = ["--format", "{{.NetworkInterface}}"];
  const bridge = must("podman", podmanArgs("network", "inspect", "podman", ...format), env).trim();
  return { side: "podman", name, ip, bridge, ports };
}

function targetsOf(servers: Server[], host: string | undefined): Target[] {
  const out: Target[] = [];
  for (const s of servers) {
    out.push({ side: s.side, path: "direct", base: `http://${s.ip}:8080`, device: s.bridge });
    if (!s.ports) continue;
    out.push({
      side: s.side,
      path: "loopback",
      base: `http://127.0.0.1:${s.ports.loopback}`,
      device: "lo",
    });
    if (host)
      out.push({ side: s.side, path: "host", base: `http://${host}:${s.ports.all}`, device: "lo" });
  }
  return out;
}

/** Refuses to send anything unless the route to the target's address uses the expected device. */
function checkRoute(t: Target): void {
  const addr = new URL(t.base).hostname;
  const dev = routeDevice(addr);
  if (dev !== t.device)
    throw new Error(
      `route to ${addr} goes through ${dev ?? "nothing"}, not ${t.device}: not sending`,
    );
}

/** One GET (5 s timeout): status and body length. */
function get(url: string): Promise<{ status: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, bytes: body.length, body: body.toString("latin1") });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out after 5 s")));
    req.on("error", reject);
  });
}

/** get(), retried for up to 2 s while the connection is refused (a server just started). */
async function getSoon(url: string): ReturnType<typeof get> {
  for (let i = 0; ; i++) {
    try {
      return await get(url);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ECONNREFUSED" || i >= 20) throw e;
      await sleep(100);
    }
  }
}

/** Each target serves both files whole; a target that does not work is dropped and reported. */
async function usableTargets(targets: Target[], broken: string[]): Promise<Target[]> {
  const ok: Target[] = [];
  for (const t of targets) {
    checkRoute(t);
    try {
      const small = await getSoon(`${t.base}/${FILES.small}`);
      const big = await get(`${t.base}/${FILES.big}`);
      if (small.status !== 200 || small.body !== GREETING)
        throw new Error(`greeting: ${small.status}`);
      if (big.status !== 200 || big.bytes !== 2 ** 20)
        throw new Error(`big.bin: ${big.status}, ${big.bytes} bytes`);
      ok.push(t);
    } catch (e) {
      broken.push(`${t.side} ${PATH_LABELS[t.path]} (${t.base}): ${(e as Error).message}`);
    }
  }
  return ok;
}

function wrk(url: string): Promise<WrkResult> {
  return runWrk(
    ["-t", `${WRK_THREADS}`, "-c", `${WRK_CONNECTIONS}`, "-d", `${WRK_SECONDS}s`, "--latency", url],
    track,
  );
}

type WrkKey = `${Side} ${Path} ${FileKey}`;

/** wrk runs that failed or reported errors, for the report. */
const wrkFailures: string[] = [];

async function wrkRounds(targets: Target[]): Promise<Map<WrkKey, WrkResult[]>> {
  const results = new Map<WrkKey, WrkResult[]>();
  for (let r = 1; r <= WRK_ROUNDS; r++) {
    const shown: string[] = [];
    for (const t of rotate(targets, r - 1)) {
      for (const file of ["small", "big"] as FileKey[]) {
        checkRoute(t);
        settle();
        const key: WrkKey = `${t.side} ${t.path} ${file}`;
        const url = `${t.base}/${FILES[file]}`;
        // A target failing (e.g. connections timing out) is a result: said, and the others go on.
        const res = await wrk(url).catch((e: Error) => {
          wrkFailures.push(
            `round ${r}, ${t.side} ${PATH_LABELS[t.path]}, ${url}: ${e.message.trim().split("\n").at(-1)}`,
          );
          return undefined;
        });
        if (!res) continue;
        if (res.errors) wrkFailures.push(`round ${r}, ${key}: ${res.errors}`);
        results.set(key, [...(results.get(key) ?? []), res]);
        shown.push(`${key} ${Math.round(res.rps)}/s`);
      }
    }
    const drops = guard ? guardDrops(guard) : 0;
    if (drops) throw new Error(`the guard dropped ${drops} packet(s) bound off the host: stopping`);
    process.stderr.write(`wrk round ${r}/${WRK_ROUNDS}: ${shown.join(", ")}\n`);
  }
  return results;
}

interface Part2 {
  targets: Target[];
  servers: Server[];
  broken: string[];
  publish: boolean;
  host?: string;
  warm?: Record<Tool, Stats>;
  wrk: Map<WrkKey, WrkResult[]>;
}

function writeWww(): void {
  mkdirSync(P.www, { recursive: true });
  writeFileSync(path.join(P.www, FILES.small), GREETING);
  const big = Buffer.alloc(2 ** 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
  writeFileSync(path.join(P.www, FILES.big), big);
  chmodSync(P.www, 0o755);
}

/** busybox httpd on the host, in the foreground: ended (by PID) at cleanup. */
let hostHttpd: ChildProcess | undefined;

/** The same server, without a container or a bridge: what the server itself costs here. */
function startHostHttpd(port: number): void {
  const args = ["httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", P.www];
  hostHttpd = spawn("busybox", args, { stdio: "ignore" });
}

async function part2(ref: string): Promise<Part2> {
  const publish = miniboxPublishes();
  if (!publish) process.stderr.write("this minibox has no run -p: part 2 measures path (a) only\n");
  const [p0, p1, p2, p3, p4] = (await freePorts(5)) as [number, number, number, number, number];
  startHostHttpd(p0);
  const servers = [
    startMinibox(ref, publish ? { loopback: p1, all: p2 } : undefined),
    startPodman(ref, publish ? { loopback: p3, all: p4 } : undefined),
  ];
  guard = addGuard(
    TOKEN,
    servers.map((s) => `${s.ip}/32`),
    servers.map((s) => s.bridge),
  );
  const host = hostAddress();
  const broken: string[] = [];
  const floor: Target = {
    side: "host",
    path: "direct",
    base: `http://127.0.0.1:${p0}`,
    device: "lo",
  };
  const targets = await usableTargets([floor, ...targetsOf(servers, host)], broken);
  for (const s of servers) process.stderr.write(`${s.side}: httpd at ${s.ip} on ${s.bridge}\n`);
  const warm =
    WARM_ROUNDS > 0 ? await runRounds(ref, WARM_TOOLS, WARM_ROUNDS, "warm: ") : undefined;
  const wrkResults = WRK_ROUNDS > 0 ? await wrkRounds(targets) : new Map();
  return { targets, servers, broken, publish, host, warm, wrk: wrkResults };
}

// ---- report --------------------------------------------------------------------

function machineFacts(): string[] {
  const wrkVersion = firstLine("wrk", ["-v"]).replace(/ \[.*$/, "");
  return [
    cpuLine(),
    `- node ${process.version}; ${firstLine("podman", ["--version"])} with ${firstLine("/usr/lib/podman/netavark", ["--version"])} and runc (${firstLine("runc", ["--version"])}); ${wrkVersion}; ${firstLine("hyperfine", ["--version"])}`,
    commitLine("src", "native"),
    loadLine(before.load),
  ];
}

const met = (v: number, limit: number) => (v <= limit ? "met" : "**missed**");

function part1Report(times: Record<Tool, Stats>, warm?: Record<Tool, Stats>): string[] {
  const m = times.mbxBridge;
  const p = times.podBridge;
  const cost = (b: Stats, n: Stats) => ({ median: b.median - n.median, min: b.min - n.min });
  const mc = cost(m, times.mbxNone);
  const pc = cost(p, times.podNone);
  const out = [
    `### 1. \`run --rm IMAGE true\`, cached image, wall time (ms), ${ROUNDS} rounds`,
    "",
    ...timesTable(
      ["mbxBridge", "podBridge", "mbxNone", "podNone", "node"],
      (t) => LABELS[t],
      times,
    ),
    "",
    row(["ratio", "of medians", "of mins", "target", ""]),
    "| --- | ---: | ---: | ---: | --- |",
    row([
      "**minibox bridge / podman bridge**",
      ratio(m.median, p.median),
      ratio(m.min, p.min),
      "≤ 0.4",
      met(m.median / p.median, 0.4),
    ]),
    row([
      "minibox none / podman none",
      ratio(times.mbxNone.median, times.podNone.median),
      ratio(times.mbxNone.min, times.podNone.min),
      "",
      "",
    ]),
    row([
      "network cost (bridge − none): minibox / podman",
      ratio(mc.median, pc.median),
      ratio(mc.min, pc.min),
      "",
      "",
    ]),
    "",
    `Network cost (bridge − none, ms): minibox ${ms(mc.median)} (of medians), ${ms(mc.min)} (of mins); podman ${ms(pc.median)}, ${ms(pc.min)}.`,
    "",
  ];
  if (warm) {
    const wm = warm.mbxBridge;
    const wp = warm.podBridge;
    const wmc = cost(wm, warm.mbxNone);
    const wpc = cost(wp, warm.podNone);
    out.push(
      `**Warm bridge**: the same rows while each tool's httpd container (part 2) keeps its bridge and firewall up (${WARM_ROUNDS} rounds):`,
      "",
      ...timesTable(WARM_TOOLS, (t) => LABELS[t], warm),
      "",
      `minibox / podman, warm bridge: ${ratio(wm.median, wp.median)} (medians), ${ratio(wm.min, wp.min)} (mins); target ≤ 0.4: ${met(wm.median / wp.median, 0.4)}.`,
      `Network cost, warm (bridge − none, ms): minibox ${ms(wmc.median)} (of medians), ${ms(wmc.min)} (of mins); podman ${ms(wpc.median)}, ${ms(wpc.min)}.`,
      "",
    );
  }
  return out;
}

function traceReport(t: TraceStats): string[] {
  const cell = (s: Stats | undefined, n: number) =>
    s ? [ms1(s.median), ms1(s.min), n < TRACE_ROUNDS ? `${n}/${TRACE_ROUNDS}` : ""] : ["", "", ""];
  return [
    `### minibox's network steps (${TRACE_ROUNDS} traced runs per mode, ms)`,
    "",
    "`node dist/minibox.mjs --root R run --rm [--network none] --trace IMAGE true`, from its",
    "`[trace T ms] D ms step` lines; medians. A step missing from some runs says in how many it was.",
    "",
    row(["stage", "bridge median", "bridge min", "", "none median", "none min", ""]),
    "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ...STAGES.map(([label], i) =>
      row([
        label,
        ...cell(t.bridge[i], t.counts.bridge[i] ?? 0),
        ...cell(t.none[i], t.counts.none[i] ?? 0),
      ]),
    ),
    "",
  ];
}

function part2Report(p: Part2): string[] {
  const out = [
    `### 2. HTTP to busybox \`httpd -f -p 8080 -h /www\` in a container: \`wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${WRK_SECONDS}s --latency\`, ${WRK_ROUNDS} rounds, medians`,
    "",
    `Files: \`${FILES.small}\` (${GREETING.length} bytes) and \`${FILES.big}\` (1 MiB, random). busybox httpd answers one request per connection, so every request is a new TCP connection (and, through a published port, a new conntrack entry and DNAT).`,
    `minibox httpd at ${p.servers[0]?.ip} (${p.servers[0]?.bridge}), podman httpd at ${p.servers[1]?.ip} (${p.servers[1]?.bridge}); host address ${p.host ?? "none found"}.`,
    "",
  ];
  if (!p.publish) out.push("This minibox has no `run -p` yet: only path (a) was measured.", "");
  for (const b of p.broken) out.push(`- did not work, not measured: ${b}`);
  for (const f of wrkFailures) out.push(`- wrk: ${f}`);
  if (p.broken.length + wrkFailures.length > 0) out.push("");
  out.push(
    row([
      "file",
      "tool",
      "path",
      "req/s",
      "p50 ms",
      "p99 ms",
      "MB/s",
      "req/s ÷ (a)",
      "p50 ÷ (a)",
      "p99 ÷ (a)",
      "req/s, rounds",
    ]),
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  );
  const med = (rs: WrkResult[], k: keyof Omit<WrkResult, "errors">) => median(rs.map((r) => r[k]));
  for (const file of ["small", "big"] as FileKey[]) {
    for (const side of ["host", "minibox", "podman"] as Side[]) {
      const a = p.wrk.get(`${side} direct ${file}`);
      for (const path of PATHS) {
        const rs = p.wrk.get(`${side} ${path} ${file}`);
        if (!rs) continue;
        const host = side === "host";
        const rel = (k: "rps" | "p50" | "p99") => (a && !host ? ratio(med(rs, k), med(a, k)) : "");
        out.push(
          row([
            FILES[file],
            host ? "none: busybox httpd on the host" : side,
            host
              ? "127.0.0.1:PORT, no container, no bridge (the server's own cost)"
              : PATH_LABELS[path],
            ms(med(rs, "rps")),
            med(rs, "p50").toFixed(2),
            med(rs, "p99").toFixed(2),
            med(rs, "transfer").toFixed(1),
            rel("rps"),
            rel("p50"),
            rel("p99"),
            rs.map((r) => Math.round(r.rps)).join(", "),
          ]),
        );
      }
    }
  }
  out.push("", row(["minibox ÷ podman", "req/s", "p50", "p99"]), "| --- | ---: | ---: | ---: |");
  for (const file of ["small", "big"] as FileKey[]) {
    for (const path of PATHS) {
      const m = p.wrk.get(`minibox ${path} ${file}`);
      const q = p.wrk.get(`podman ${path} ${file}`);
      if (!m || !q) continue;
      const rel = (k: "rps" | "p50" | "p99") => ratio(med(m, k), med(q, k));
      out.push(row([`${FILES[file]}, ${PATH_LABELS[path]}`, rel("rps"), rel("p50"), rel("p99")]));
    }
  }
  out.push("");
  return out;
}

/** Why part 2 stopped, when it did (e.g. minibox's bridge deleted under it by another user). */
let failedPart2: string | undefined;

function report(times: Record<Tool, Stats>, trace?: TraceStats, p2?: Part2): string {
  const out = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z)`,
    "",
    ...machineFacts(),
    "",
    ...part1Report(times, p2?.warm),
    ...(trace ? traceReport(trace) : []),
    ...(p2 ? part2Report(p2) : []),
    ...(failedPart2 ? ["### 2. HTTP: not completed", "", failedPart2, ""] : []),
  ];
  const seen = [...new Set(disturbances)];
  if (seen.length > 0)
    out.push(
      "Disturbances (another user's containers on minibox's networks):",
      "",
      ...seen.map((d) => `- ${d}`),
      "",
    );
  return out.join("\n");
}

// ---- main ----------------------------------------------------------------------

async function prepare(ref: string): Promise<void> {
  mkdirSync(P.mbxConfig, { recursive: true });
  mkdirSync(P.hyperfine, { recursive: true });
  mkdirSync(P.podmanNetworks, { recursive: true });
  writeWww();
  const env = benchEnv();
  process.stderr.write("pulling the image into minibox's and podman's stores…\n");
  must(LAUNCHER, ["--root", P.mbxRoot, "pull", "-q", ref], env);
  PODMAN.writeConfig();
  podmanReady = true;
  must("podman", podmanArgs("pull", "--tls-verify=false", "-q", ref), env);
  const backend = must("podman", podmanArgs("info", "--format", "{{.Host.NetworkBackend}}"), env);
  if (backend.trim() !== "netavark")
    throw new Error(`podman's network backend is ${backend}, not netavark`);
  checkNetworkModes(ref);
}

async function main(): Promise<void> {
  running = await startRegistry(WORK, [CLI, BUNDLE, LAUNCHER]);
  const ref = `${running.env.registries.anon}/${running.env.fixtures.base.repo}:latest`;
  process.stderr.write(`image ${ref}\n`);
  const atStart = leasesNow();
  if (atStart.others > 0)
    disturbances.push(
      `at the start, ${atStart.others} lease(s) of another store on minibox's networks`,
    );
  await prepare(ref);
  const times = await runRounds(ref, TOOLS, ROUNDS, "");
  const trace = TRACE_ROUNDS > 0 ? await traceRuns(ref) : undefined;
  let p2: Part2 | undefined;
  try {
    p2 = WRK_ROUNDS > 0 || WARM_ROUNDS > 0 ? await part2(ref) : undefined;
  } catch (e) {
    // Part 1's figures stand; a disturbed part 2 is said in the report and in the exit status.
    failedPart2 = (e as Error).message;
    process.exitCode = 1;
  }
  await removeContainers();
  const text = report(times, trace, p2);
  process.stdout.write(`${text}\n`);
  if (OUT) writeFileSync(OUT, `${text}\n`);
}

await runBench(main, {
  cleanup,
  anomalies,
  leftovers,
  notes: () => [...new Set(notes), ...restored.map((r) => `put back at the end: ${r}`)],
  clean:
    "Cleanup check: no containers, leases, bridges, mounts, cgroups, processes or work dirs of this run are left; iptables, ip6tables, the nftables rule set and the forwarding sysctls equal the snapshot taken at the start.",
  out: OUT,
  kept: KEEP ? WORK : undefined,
});
