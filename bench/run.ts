// `minibox run --rm --network none IMAGE true` against runc, crun and podman,
// side by side in one run, with a cached image; then where minibox's time
// goes, stage by stage. See bench/README.md for what is measured and why.
//
//   npm run build && npx vite-node bench/run.ts [-- --rounds N]
//
// Options (after "--"):
//   --rounds N        timed rounds; each round runs every command once (default 20)
//   --trace-rounds N  traced minibox runs for the per-stage breakdown (default 5;
//                     that many plain `--trace` runs plus as many through
//                     bench/run-trace.mjs; 0 = none)
//   --out FILE        also write the Markdown results to FILE
//   --keep            keep the work dir (default: removed at the end)
//
// Timing: each round is one `hyperfine -N --runs 1` invocation that runs every
// command once, in an order rotated from round to round, so drift in the
// machine's load is spread over all tools; hyperfine spawns from a small
// process without a shell, which keeps the harness's own cost (see the
// `/bin/true` row) at ~2-3 ms.
//
// bench/all.ts imports this file as a part (common.ts's asPart): then it
// runs nothing by itself; all.ts calls prepare, timedRounds, traceRuns,
// traceReport and cleanup with its own registry (RunningTestEnv) and rounds.
//
// Everything lives in one work dir made by mkdtemp under /tmp and chmod 0711
// (the container's root under minibox's user namespace is an unprivileged
// host uid: the state dir and its ancestors must be o+x). podman's runroot is
// in there too: its overlay driver refuses runroots longer than 50 characters.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { RunningTestEnv } from "../test/support/env.js";
import {
  BUNDLE,
  benchState,
  CLI,
  cleanUpBench,
  cleanupOnce,
  commitLine,
  cpuLine,
  filesystemOf,
  firstLine,
  HERE,
  hyperfineRound,
  hyperfineRounds,
  intOption,
  KEEP,
  LAUNCHER,
  leftoversSince,
  loadLine,
  makeBundle,
  mountsUnder,
  ms,
  ms1,
  must,
  newMiniboxCgroups,
  OUT,
  parseTrace,
  podmanRun,
  podmanStore,
  processesNaming,
  ratio,
  rotate,
  row,
  runAsScript,
  runBench,
  type Stats,
  settle,
  spawnTimed as spawnTimedIn,
  startRegistry,
  stats,
  stopChild,
  type TraceLine,
  timesTable,
  unpackBase,
} from "./common.js";

const CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers";

const ROUNDS = intOption("--rounds", 20, 1);
const TRACE_ROUNDS = intOption("--trace-rounds", 5, 0);

// ---- work dir, names, bookkeeping ---------------------------------------------

/** In every runc/crun container id and podman's cgroup parent: what is ours. */
const BENCH = benchState("mbx-run");
const { token: TOKEN, work: WORK, anomalies, before, track } = BENCH;
const P = {
  mbxRoot: path.join(WORK, "minibox"),
  mbxConfig: path.join(WORK, "minibox-config"),
  bundle: path.join(WORK, "bundle"),
  checkBundle: path.join(WORK, "bundle-check"),
  empty: path.join(WORK, "empty"),
  podman: path.join(WORK, "podman"),
  /** Short on purpose (podman's overlay driver: runroot ≤ 50 characters). */
  podmanRunroot: path.join(WORK, "prun"),
  containersConfig: path.join(WORK, "containers-config"),
  hyperfine: path.join(WORK, "hyperfine"),
};
const PODMAN_CGROUP_PARENT = `/${TOKEN}-podman`;

let running: RunningTestEnv | undefined;
/** Container ids handed to runc / crun, to delete whatever they left. */
const runtimeIds: { runc: string[]; crun: string[] } = { runc: [], crun: [] };
let podmanReady = false;

/** Mounts that would be ours: under the work dir, or crun's controllers file in the host's namespace. */
const ourMounts = () => mountsUnder(WORK, CONTROLLERS);
/** Processes whose command line names our work dir or token (by "pid cmdline"). */
const ourProcesses = () => processesNaming(WORK, TOKEN);

// ---- cleanup --------------------------------------------------------------------

export const cleanup = cleanupOnce(async () => {
  await stopChild(BENCH.child);
  // runc/crun state of ours that a foreground run did not delete (none expected).
  for (const runtime of ["runc", "crun"] as const) {
    for (const id of runtimeIds[runtime]) {
      if (spawnSync(runtime, ["state", id], { stdio: "ignore" }).status === 0) {
        anomalies.push(`${runtime} container ${id} was left; deleted with ${runtime} delete -f`);
        spawnSync(runtime, ["delete", "-f", id], { stdio: "ignore" });
      }
    }
  }
  await cleanUpBench(BENCH, {
    running,
    podman: podmanReady ? PODMAN : undefined,
    podmanCgroupParent: PODMAN_CGROUP_PARENT,
    mounts: ourMounts,
    processes: ourProcesses,
  });
});

/** What is left after cleanup (must be empty), against the snapshot at the start. */
export const leftovers = () =>
  leftoversSince(before, {
    mountDirs: [WORK, CONTROLLERS],
    ours: (dir) => dir.includes(TOKEN),
    processes: ourProcesses(),
    workDir: KEEP ? undefined : WORK,
  });

// ---- podman, isolated from the host's configuration (bench/common.ts) --------

const PODMAN = podmanStore(P.podman, P.podmanRunroot, P.containersConfig);
const podmanEnv = PODMAN.env;
const writePodmanConfig = PODMAN.writeConfig;
const podmanArgs = PODMAN.args;

// ---- the commands -----------------------------------------------------------------

export type Tool =
  | "floor"
  | "launcher"
  | "node"
  | "minibox"
  | "miniboxNode"
  | "miniboxBundle"
  | "miniboxHost"
  | "runc"
  | "crun"
  | "wrapper"
  | "podman";

const TOOLS: Tool[] = [
  "minibox",
  "runc",
  "podman",
  "crun",
  "node",
  "miniboxNode",
  "wrapper",
  "miniboxBundle",
  "miniboxHost",
  "launcher",
  "floor",
];

export const LABELS: Record<Tool, string> = {
  floor: "`/bin/true` (the harness's own cost)",
  launcher: "`./minibox`'s shell part alone (its `exec node …` replaced by `exec true`)",
  node: "`node -e 0`",
  minibox: "**minibox** `./minibox run --rm --network none IMAGE true`",
  miniboxBundle: "minibox `node dist/minibox.mjs run …` (the launcher's bundle, without sh)",
  miniboxNode: "minibox `node dist/cli/main.js run …` (tsc's output, not bundled)",
  miniboxHost: "minibox `./minibox run --userns=host …` (no user namespace)",
  runc: "**runc** `runc run --bundle B ID`",
  crun: "**crun** `unshare -m sh -c 'mount --bind … && exec crun run --bundle B ID'`",
  wrapper: "crun's wrapper alone: `unshare -m sh -c 'mount --bind … && exec true'`",
  podman: "**podman** `podman --runtime runc run --rm --network none …`",
};

/** The argv of each command; `round` makes runc/crun container ids unique. */
function argv(tool: Tool, ref: string, round: string, args: string[] = ["true"]): string[] {
  const mbx = ["--root", P.mbxRoot, "run", "--rm", "--network", "none"];
  const wrap = (inner: string) => [
    "unshare",
    "-m",
    "sh",
    "-c",
    `mount --bind ${P.empty} ${CONTROLLERS} && exec ${inner}`,
  ];
  const bundle = args[0] === "true" ? P.bundle : P.checkBundle;
  switch (tool) {
    case "floor":
      return ["/bin/true"];
    case "launcher":
      return ["sh", "-c", launcherShellPart(), LAUNCHER];
    case "node":
      return ["node", "-e", "0"];
    case "minibox":
      return [LAUNCHER, ...mbx, ref, ...args];
    case "miniboxNode":
      return ["node", CLI, ...mbx, ref, ...args];
    case "miniboxBundle":
      return ["node", BUNDLE, ...mbx, ref, ...args];
    case "miniboxHost":
      return [LAUNCHER, ...mbx, "--userns=host", ref, ...args];
    case "runc": {
      const id = `${TOKEN}-runc-${round}`;
      runtimeIds.runc.push(id);
      return ["runc", "run", "--bundle", bundle, id];
    }
    case "crun": {
      const id = `${TOKEN}-crun-${round}`;
      runtimeIds.crun.push(id);
      return wrap(`crun run --bundle ${bundle} ${id}`);
    }
    case "wrapper":
      return wrap("true");
    case "podman":
      return [
        "podman",
        ...podmanArgs(
          ...podmanRun({
            runtime: "runc",
            cgroupParent: PODMAN_CGROUP_PARENT,
            options: ["--rm"],
            image: ref,
            command: args,
          }),
        ),
      ];
  }
}

/** The ./minibox script with its last line, `exec node …`, turned into `exec true`. */
function launcherShellPart(): string {
  const text = readFileSync(LAUNCHER, "utf8");
  const replaced = text.replace(/^exec node .*$/m, "exec true");
  if (replaced === text) throw new Error(`${LAUNCHER} has no "exec node …" line any more`);
  return replaced;
}

function benchEnv(): NodeJS.ProcessEnv {
  return { ...podmanEnv(), MINIBOX_CONFIG: P.mbxConfig };
}

// ---- preparation (untimed) -------------------------------------------------------

/** Pulls the image into minibox's and podman's stores, makes runc's bundles, checks each of `tools`. */
export async function prepare(
  ref: string,
  base: RunningTestEnv["env"]["fixtures"]["base"],
  tools: readonly Tool[] = TOOLS,
) {
  mkdirSync(P.mbxConfig, { recursive: true });
  mkdirSync(P.hyperfine, { recursive: true });
  writeFileSync(P.empty, "");
  const env = benchEnv();
  process.stderr.write("pulling the image into minibox's and podman's stores…\n");
  must(LAUNCHER, ["--root", P.mbxRoot, "pull", "-q", ref], env);
  writePodmanConfig();
  must("podman", podmanArgs("pull", "--tls-verify=false", "-q", ref), env);
  podmanReady = true;

  // The bundle's rootfs: the base image's one layer, unpacked by GNU tar.
  const rootfs = path.join(P.bundle, "rootfs");
  unpackBase(base, rootfs);
  makeBundle(P.bundle, rootfs, ["true"]);
  makeBundle(P.checkBundle, rootfs, ["sh", "-c", "echo $$"]);

  // Each command really starts a container: `sh -c 'echo $$'` prints 1 (PID namespace).
  const checkArgs = ["sh", "-c", "echo $$"];
  for (const tool of tools) {
    if (["floor", "node", "wrapper", "launcher"].includes(tool)) continue;
    const [file, ...args] = argv(tool, ref, "check", checkArgs);
    const out = must(file as string, args, env).trim();
    if (out !== "1") throw new Error(`${tool}: sh -c 'echo $$' printed "${out}", expected "1"`);
  }
  process.stderr.write("each tool ran `sh -c 'echo $$'` in a container and got 1\n");
}

// ---- timed rounds ----------------------------------------------------------------

/** One hyperfine invocation: each command once, in this order. */
function round<T extends Tool>(tools: T[], ref: string, name: string) {
  return hyperfineRound(tools, (t) => argv(t, ref, name), {
    json: path.join(P.hyperfine, `${name}.json`),
    env: benchEnv(),
    round: name,
    track,
  });
}

/** After a round: nothing of ours may be mounted, no runc/crun state may remain. */
function checkRound(round: string): void {
  for (const mp of ourMounts()) anomalies.push(`round ${round}: mount ${mp} left`);
  for (const runtime of ["runc", "crun"] as const) {
    const id = `${TOKEN}-${runtime}-${round}`;
    if (spawnSync(runtime, ["state", id], { stdio: "ignore" }).status === 0) {
      anomalies.push(`round ${round}: ${runtime} container ${id} left; deleted`);
      spawnSync(runtime, ["delete", "-f", id], { stdio: "ignore" });
    }
  }
}

/** Timed rounds of `tools` (all of them by default), after an untimed warm-up round. */
export function timedRounds<T extends Tool>(
  ref: string,
  o: { rounds?: number; tools?: readonly T[]; label?: string } = {},
): Promise<Record<T, Stats>> {
  const tools = o.tools ?? (TOOLS as T[]);
  const shown: Tool[] = ["minibox", "node", "runc", "crun", "podman"];
  // The untimed warm-up round: page cache, binaries, minibox's idmap probe.
  return hyperfineRounds(tools, o.rounds ?? ROUNDS, (order, name) => round(order, ref, name), {
    check: checkRound,
    label: o.label ?? "",
    show: tools.filter((t) => shown.includes(t)),
  });
}

// ---- traced runs: where minibox's time goes -----------------------------------------

/** A timed spawn with the bench's environment, tracked for cleanup. */
const spawnTimed = (file: string, args: string[]) => spawnTimedIn(file, args, benchEnv(), track);

/**
 * The stages of one traced run. Node-side trace lines are stamped when the
 * step ends (T) with its duration (D); executor lines carry the step's
 * start, on the executor's clock shifted to where minibox took `spawnedAt`
 * (just before spawning it), so the executor's spawn time is not in them:
 * it shows up in the stage after execve.
 */
function stagesOf(lines: TraceLine[], wall: number): [string, number][] {
  const find = (what: string, test: (l: TraceLine) => boolean, from = 0): number => {
    const i = lines.findIndex((l, k) => k >= from && test(l));
    if (i < 0) throw new Error(`trace has no ${what}:\n${lines.map((l) => l.text).join("\n")}`);
    return i;
  };
  const line = (i: number) => lines[i] as TraceLine;
  const img = find("image line", (l) => /^image .* → /.test(l.text) && l.took !== undefined);
  const cont = find("container line", (l) => /^container [0-9a-f]{12} /.test(l.text), img);
  const firstCg = find("cgroup line", (l) => /^(mkdir|write) /.test(l.text), cont);
  const firstExec = find("executor step", (l) => l.took !== undefined, firstCg);
  const lastCg = firstExec - 1;
  const clone = find("clone", (l) => l.text.startsWith("clone("), firstExec);
  const tell = find("pid report", (l) => l.text.startsWith("tell minibox the init's PID"), clone);
  const exec = find("execve", (l) => l.text.startsWith("execve "), tell);
  const teardown = find("teardown", (l) => /^(rmdir|kill|exit status)/.test(l.text), exec);
  const exit = find("exit status", (l) => l.text.startsWith("exit status "), teardown);
  const end = (i: number) => line(i).at; // node-side lines: stamped at the end
  const start = (i: number) => line(i).at - (line(i).took ?? 0);
  const tellEnd = line(tell).at + (line(tell).took ?? 0);
  return [
    [
      "process start → image lookup begins: node bootstrap, module loading, CLI parsing, store init, sweep of dead containers",
      start(img),
    ],
    ["image resolution (find the image, read its config)", line(img).took ?? 0],
    [
      "user namespace state, /etc/passwd and /etc/group from the layers, name claim",
      start(cont) - end(img),
    ],
    [
      "container directory (dirs, /etc files, state.json) — the `container …` step",
      line(cont).took ?? 0,
    ],
    [
      "OCI spec + config.json, idmapped-mount check, cgroup detection (untraced)",
      end(firstCg) - end(cont),
    ],
    ["cgroup creation (the mkdir/write lines)", end(lastCg) - end(firstCg)],
    [
      "plan, plan.txt → executor's first step (spawn time excluded, see below)",
      line(firstExec).at - end(lastCg),
    ],
    [
      "executor, before clone: mount ns, idmap user ns, idmapped mount, overlay, /dev, bind mounts",
      line(clone).at - line(firstExec).at,
    ],
    ["clone + uid/gid maps + cgroup join + PID report", tellEnd - line(clone).at],
    [
      "init: wake-up, then its steps up to execve (mounts, pivot_root, caps, …)",
      line(exec).at - tellEnd,
    ],
    [
      "execve → teardown starts: program runs and exits, executor reports and exits (+ executor spawn time)",
      end(teardown) - line(exec).at,
    ],
    ["cgroup removal (rmdir lines) → exit status", end(exit) - end(teardown)],
    [
      "after the last trace line: container dir removal, process exit (+ exec before node's clock starts)",
      wall - end(exit),
    ],
  ];
}

interface Marks {
  marks: [string, number][];
}

/** The finer split that bench/run-trace.mjs's timestamps allow. */
function markedStagesOf(lines: TraceLine[], marks: Marks, wall: number): [string, number][] {
  const m = new Map<string, number>();
  for (const [label, t] of marks.marks) if (!m.has(label)) m.set(label, t);
  const at = (label: string) => {
    const t = m.get(label);
    if (t === undefined) throw new Error(`run-trace marks lack "${label}": ${[...m.keys()]}`);
    return t;
  };
  const img = lines.find((l) => /^image .* → /.test(l.text) && l.took !== undefined);
  const execIndex = lines.findIndex((l) => l.text.startsWith("execve "));
  const exec = lines[execIndex];
  const firstRm = lines.find((l, i) => i > execIndex && /^(rmdir|kill)/.test(l.text));
  const exit = lines.find((l) => l.text.startsWith("exit status "));
  const cgLines = lines.filter((l) => /^(mkdir|write) /.test(l.text) && l.took === undefined);
  const lastCg = cgLines.at(-1);
  if (!img || !exec || !firstRm || !exit || !lastCg) throw new Error("run-trace: trace incomplete");
  const spawnCall = at("spawn minibox-exec#1 call");
  const spawnMs = at("spawn minibox-exec#1 returned") - spawnCall;
  return [
    ["node bootstrap: process start → first line of a script", at("script start")],
    [
      "(run-trace.mjs's own set-up: not part of a normal run)",
      at("import start") - at("script start"),
    ],
    [
      "loading the CLI's modules (import → main(process.argv) is called)",
      at("modules loaded") - at("import start"),
    ],
    [
      "commander parsing, on-demand import of the run code, store init, sweep → image lookup begins",
      img.at - (img.took ?? 0) - at("modules loaded"),
    ],
    ["last cgroup line → spawn() of the executor called (plan, plan.txt)", spawnCall - lastCg.at],
    ["child_process.spawn of minibox-exec (fork of node + exec, until spawn() returns)", spawnMs],
    [
      "execve of the program (its executor time + the spawn time) → executor exited",
      at("spawn minibox-exec#1 exit") - (exec.at + spawnMs),
    ],
    [
      "executor exited → first rmdir line (node's exit/close events, OOM check)",
      firstRm.at - at("spawn minibox-exec#1 exit"),
    ],
    [
      "exit status line → process 'exit' event (container dir removal, event loop drains)",
      at("process exit") - exit.at,
    ],
    [
      "process 'exit' event → the parent sees the exit (node's teardown)",
      wall - at("process exit"),
    ],
  ];
}

interface Breakdown {
  plain: { label: string; stats: Stats }[];
  plainWall: Stats;
  marked: { label: string; stats: Stats }[];
  markedWall: Stats;
}

/** `node -e` with the same two marks: node's own bootstrap and teardown, for comparison. */
interface Baseline {
  bootstrap: Stats;
  teardown: Stats;
  wall: Stats;
}

export type TraceResults = Record<"bundle" | "main", Breakdown> & { baseline: Baseline };

/** An empty node program that reports when it started running and when it began to exit. */
const BASELINE_CODE = [
  "const start = performance.now();",
  'process.on("exit", () => require("node:fs").writeSync(2, `[run-trace] ${JSON.stringify(',
  '{ marks: [["script start", start], ["process exit", performance.now()]] })}\\n`));',
].join(" ");

function collect(rows: [string, number][][]): { label: string; stats: Stats }[] {
  const first = rows[0] ?? [];
  return first.map(([label], i) => ({ label, stats: stats(rows.map((r) => r[i]?.[1] ?? 0)) }));
}

/**
 * Traced runs of both CLI builds, alternating: per round, the bundle and
 * main.js with `--trace`, then both through bench/run-trace.mjs.
 */
export async function traceRuns(ref: string, rounds = TRACE_ROUNDS): Promise<TraceResults> {
  const mbx = ["--root", P.mbxRoot, "run", "--rm", "--network", "none", "--trace", ref, "true"];
  const scripts = { bundle: BUNDLE, main: CLI };
  const rows = {
    bundle: { plain: [] as [string, number][][], marked: [] as [string, number][][] },
    main: { plain: [] as [string, number][][], marked: [] as [string, number][][] },
  };
  const walls = {
    bundle: { plain: [] as number[], marked: [] as number[] },
    main: { plain: [] as number[], marked: [] as number[] },
  };
  const base = { bootstrap: [] as number[], teardown: [] as number[], wall: [] as number[] };
  for (let r = 1; r <= rounds; r++) {
    const shown: string[] = [];
    settle();
    const b = await spawnTimed("node", ["-e", BASELINE_CODE]);
    const bj = /^\[run-trace\] (.*)$/m.exec(b.stderr)?.[1];
    if (b.code !== 0 || !bj) throw new Error(`node -e baseline failed (${b.code}):\n${b.stderr}`);
    const bm = new Map((JSON.parse(bj) as Marks).marks);
    base.bootstrap.push(bm.get("script start") ?? Number.NaN);
    base.teardown.push(b.ms - (bm.get("process exit") ?? Number.NaN));
    base.wall.push(b.ms);
    shown.push(`node -e ${ms(b.ms)}`);
    for (const which of rotate(["bundle", "main"] as const, r - 1)) {
      const script = scripts[which];
      settle();
      const plain = await spawnTimed("node", [script, ...mbx]);
      if (plain.code !== 0) throw new Error(`traced run failed (${plain.code}):\n${plain.stderr}`);
      rows[which].plain.push(stagesOf(parseTrace(plain.stderr), plain.ms));
      walls[which].plain.push(plain.ms);
      settle();
      const marked = await spawnTimed("node", [path.join(HERE, "run-trace.mjs"), script, ...mbx]);
      if (marked.code !== 0)
        throw new Error(`run-trace.mjs failed (${marked.code}):\n${marked.stderr}`);
      const json = /^\[run-trace\] (.*)$/m.exec(marked.stderr)?.[1];
      if (!json) throw new Error(`run-trace.mjs printed no marks:\n${marked.stderr}`);
      rows[which].marked.push(
        markedStagesOf(parseTrace(marked.stderr), JSON.parse(json), marked.ms),
      );
      walls[which].marked.push(marked.ms);
      shown.push(`${which} ${ms(plain.ms)} / ${ms(marked.ms)}`);
    }
    process.stderr.write(
      `trace round ${r}/${rounds} (--trace / run-trace.mjs): ${shown.join(", ")} ms\n`,
    );
  }
  const breakdown = (which: "bundle" | "main"): Breakdown => ({
    plain: collect(rows[which].plain),
    plainWall: stats(walls[which].plain),
    marked: collect(rows[which].marked),
    markedWall: stats(walls[which].marked),
  });
  return {
    bundle: breakdown("bundle"),
    main: breakdown("main"),
    baseline: {
      bootstrap: stats(base.bootstrap),
      teardown: stats(base.teardown),
      wall: stats(base.wall),
    },
  };
}

// ---- report --------------------------------------------------------------------

function machineFacts(): string[] {
  return [
    cpuLine(),
    `- work dir ${path.dirname(WORK)}/mbx-run-*: ${filesystemOf(WORK)}`,
    `- node ${process.version}; ${firstLine("runc", ["--version"])}; ${firstLine("crun", ["--version"])}; ${firstLine("podman", ["--version"])}; ${firstLine("hyperfine", ["--version"])}`,
    commitLine("src", "native"),
    loadLine(before.load),
  ];
}

function report(times: Record<Tool, Stats>, trace: TraceResults | undefined): string {
  const out: string[] = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z, ${ROUNDS} rounds)`,
    "",
    ...machineFacts(),
    "",
    "### `run --rm --network none IMAGE true` with a cached image, wall time (ms)",
    "",
  ];
  const order: Tool[] = [
    "minibox",
    "miniboxBundle",
    "miniboxNode",
    "miniboxHost",
    "runc",
    "crun",
    "wrapper",
    "podman",
    "node",
    "launcher",
    "floor",
  ];
  out.push(...timesTable(order, (t) => LABELS[t], times));
  const node = times.node;
  const crun = times.crun;
  const crunAlone = {
    median: crun.median - times.wrapper.median,
    min: crun.min - times.wrapper.min,
  };
  const met = (v: number, limit: number) => (v <= limit ? "met" : "**missed**");
  out.push(
    "",
    row(["ratio", "of medians", "of mins", "target", ""]),
    "| --- | ---: | ---: | ---: | --- |",
  );
  for (const [t, name] of [
    ["minibox", "minibox"],
    ["miniboxBundle", "minibox (bundle, no sh)"],
    ["miniboxNode", "minibox (dist/cli/main.js)"],
    ["miniboxHost", "minibox --userns=host"],
  ] as [Tool, string][]) {
    const s = times[t];
    const bold = t === "minibox" ? "**" : "";
    out.push(
      row([
        `${bold}${name} / podman${bold}`,
        ratio(s.median, times.podman.median),
        ratio(s.min, times.podman.min),
        "≤ 0.6",
        met(s.median / times.podman.median, 0.6),
      ]),
      row([
        `${bold}(${name} − node -e 0) / crun${bold}`,
        ratio(s.median - node.median, crun.median),
        ratio(s.min - node.min, crun.min),
        "≤ 3",
        met((s.median - node.median) / crun.median, 3),
      ]),
      row([
        `(${name} − node -e 0) / (crun − its wrapper alone)`,
        ratio(s.median - node.median, crunAlone.median),
        ratio(s.min - node.min, crunAlone.min),
        "(≤ 3)",
        met((s.median - node.median) / crunAlone.median, 3),
      ]),
    );
  }
  const m = times.minibox;
  out.push(
    "",
    `To meet the targets, minibox's median would have to be ≤ ${ms(0.6 * times.podman.median)} ms ` +
      `(0.6 × podman) and ≤ ${ms(node.median + 3 * crun.median)} ms (node -e 0 + 3 × crun); it is ${ms(m.median)} ms.`,
    "",
  );
  if (trace) out.push(...traceReport(trace, TRACE_ROUNDS));
  return out.join("\n");
}

/** The per-stage breakdown of traceRuns, as Markdown lines. */
export function traceReport(trace: TraceResults, rounds: number): string[] {
  const out: string[] = [];
  {
    const b = trace.bundle;
    const t = trace.main;
    const both = (x: Stats, y: Stats) => [ms1(x.median), ms1(x.min), ms1(y.median), ms1(y.min)];
    const table = (
      left: { label: string; stats: Stats }[],
      right: { label: string; stats: Stats }[],
    ) => left.map((p, i) => row([p.label, ...both(p.stats, (right[i] as { stats: Stats }).stats)]));
    const head = [
      row(["stage", "bundle median", "bundle min", "main.js median", "main.js min"]),
      "| --- | ---: | ---: | ---: | ---: |",
    ];
    out.push(
      `### Where \`minibox run\` spends its time (${rounds} traced runs per CLI build, ms)`,
      "",
      "`node SCRIPT --root R run --rm --network none --trace IMAGE true`, spawned from node, where",
      "SCRIPT is the bundle `dist/minibox.mjs` (what `./minibox` runs) or tsc's `dist/cli/main.js`;",
      "stages from its `[trace T ms] D ms step` lines (T: ms since the process's time origin).",
      "",
      ...head,
      ...table(b.plain, t.plain),
      row(["**wall time of the traced run**", ...both(b.plainWall, t.plainWall)]),
      "",
      "Finer split of some of those stages: the same runs through `bench/run-trace.mjs`, which",
      "adds timestamps for node's bootstrap, module loading, the executor's spawn and exit, and",
      "process exit; last column: an empty `node -e` program with the same two marks (ms):",
      "",
      row([
        "stage",
        "bundle median",
        "bundle min",
        "main.js median",
        "main.js min",
        "node -e median",
      ]),
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...b.marked.map((p, i) => {
        const last = i === b.marked.length - 1;
        const base =
          i === 0 ? trace.baseline.bootstrap : last ? trace.baseline.teardown : undefined;
        const right = (t.marked[i] as { stats: Stats }).stats;
        return row([p.label, ...both(p.stats, right), base ? ms1(base.median) : ""]);
      }),
      row([
        "wall time of these runs",
        ...both(b.markedWall, t.markedWall),
        ms1(trace.baseline.wall.median),
      ]),
      "",
    );
  }
  return out;
}

/** Notes an anomaly if minibox left container directories (each run was --rm). */
export function checkNoContainersLeft(): void {
  const left = readdirSync(path.join(P.mbxRoot, "containers"));
  if (left.length > 0) anomalies.push(`minibox left container dirs: ${left.join(", ")}`);
}

/** This part's anomalies and the note on other runs' cgroups, for the closing check. */
export const RUN_BENCH = {
  anomalies,
  notes: () =>
    newMiniboxCgroups(before).map(
      (s) => `new minibox cgroup (ours or a concurrent run's; not touched): ${s}`,
    ),
};

// ---- main ----------------------------------------------------------------------

async function main(): Promise<void> {
  running = await startRegistry(WORK, [CLI, BUNDLE, LAUNCHER]);
  const { env } = running;
  const ref = `${env.registries.anon}/${env.fixtures.base.repo}:latest`;
  process.stderr.write(`test env ready in ${env.setupMs} ms; image ${ref}\n`);
  await prepare(ref, env.fixtures.base);
  const times = await timedRounds(ref);
  const trace = TRACE_ROUNDS > 0 ? await traceRuns(ref) : undefined;
  checkNoContainersLeft();
  const text = report(times, trace);
  process.stdout.write(`${text}\n`);
  if (OUT) writeFileSync(OUT, `${text}\n`);
}

if (runAsScript())
  await runBench(main, {
    cleanup,
    anomalies,
    leftovers,
    notes: RUN_BENCH.notes,
    clean:
      "Cleanup check: no mounts, cgroups, processes, runc/crun state or work dirs of this run are left.",
    out: OUT,
    kept: KEEP ? WORK : undefined,
  });
