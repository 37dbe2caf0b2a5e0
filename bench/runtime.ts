// minibox-runc as an OCI runtime against runc and crun (issue 13,
// "Performance"): `podman --runtime X run --rm --network none IMAGE true` for
// each runtime, side by side in one run, and the cost of each runtime verb
// (create, start, state, kill, delete, and a foreground `run` of `true`) on a
// busybox bundle, each verb timed alone (hyperfine --prepare/--cleanup put the
// container in the state the verb needs and remove it afterwards). `node -e 0`
// and `./minibox-runc --version` are timed as the floor: minibox-runc is a
// node program. See bench/README.md ("Benchmark: minibox-runc against runc
// and crun").
//
//   npm run build && npx vite-node bench/runtime.ts [-- --rounds N --verb-rounds N --out FILE --readme --keep]
//
// --readme replaces the results between the markers in bench/README.md.
// crun 1.8 refuses this machine's hybrid cgroup layout; it runs behind the
// wrapper bench/run.ts uses (a private mount namespace with an empty file
// bound over the cgroup2 controllers list), and the wrapper alone is a row.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import type { RunningTestEnv } from "../test/support/env.js";
import { runtimeTracer } from "../test/support/podman.js";
import {
  BUNDLE,
  benchState,
  cleanUpBench,
  cleanupOnce,
  commitLine,
  cpuLine,
  filesystemOf,
  firstLine,
  hyperfineRound,
  hyperfineRounds,
  intOption,
  KEEP,
  leftoversSince,
  loadLine,
  mountsUnder,
  ms,
  must,
  OUT,
  PROJECT,
  podmanRun,
  podmanStore,
  processesNaming,
  quote,
  ratio,
  rotate,
  row,
  runBench,
  type Stats,
  settle,
  startRegistry,
  stats,
  stopChild,
  timesTable,
} from "./common.js";

const ROUNDS = intOption("--rounds", 20, 1);
const VERB_ROUNDS = intOption("--verb-rounds", 20, 1);
const WRITE_README = process.argv.includes("--readme");

const MINIBOX_RUNC = path.join(PROJECT, "minibox-runc");
const RUNC = "/usr/sbin/runc";
const CRUN = "/usr/bin/crun";
const CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers";
/** Where the runtimes keep state when podman 4.3 calls them (it passes no --root). */
const DEFAULT_STATE_ROOTS = ["/run/runc", "/run/crun", "/run/minibox-runc"];

const BENCH = benchState("mbx-rt");
const { token: TOKEN, work: WORK, anomalies, before, track } = BENCH;
const PODMAN_CGROUP_PARENT = `/${TOKEN}-podman`;
const P = {
  bundle: path.join(WORK, "bundle"),
  empty: path.join(WORK, "empty"),
  crunWrapper: path.join(WORK, "crun-hybrid"),
  states: path.join(WORK, "state"),
  log: path.join(WORK, "verbs.log"),
  podman: path.join(WORK, "podman"),
  /** Short on purpose (podman's overlay driver: runroot ≤ 50 characters). */
  podmanRunroot: path.join(WORK, "prun"),
  containersConfig: path.join(WORK, "containers-config"),
  hyperfine: path.join(WORK, "hyperfine"),
};
const PODMAN = podmanStore(P.podman, P.podmanRunroot, P.containersConfig);
let running: RunningTestEnv | undefined;
let podmanReady = false;

/** Podman's containers (64 hex digits) in the runtimes' default state dirs. */
function podmanStates(): string[] {
  return DEFAULT_STATE_ROOTS.flatMap((root) => {
    try {
      return readdirSync(root)
        .filter((e) => /^[0-9a-f]{64}$/.test(e))
        .map((e) => path.join(root, e));
    } catch {
      return [];
    }
  });
}
const statesBefore = new Set(podmanStates());

// ---- the runtimes ------------------------------------------------------------------

type Runtime = "minibox" | "runc" | "crun";
const RUNTIMES: Runtime[] = ["minibox", "runc", "crun"];
const RUNTIME_NAMES: Record<Runtime, string> = {
  minibox: "minibox-runc",
  runc: "runc",
  crun: "crun (wrapped)",
};

/**
 * The executable a runtime is called as: crun behind its hybrid-cgroup
 * wrapper, a script podman can name as `--runtime` too.
 */
const binaryOf = (r: Runtime) =>
  r === "minibox" ? MINIBOX_RUNC : r === "runc" ? RUNC : P.crunWrapper;

/** Each runtime keeps the verbs' containers in a --root of its own under the work dir. */
const stateRoot = (r: Runtime) => path.join(P.states, r);
const call = (r: Runtime, ...args: string[]) => [binaryOf(r), "--root", stateRoot(r), ...args];

function writeCrunWrapper(): void {
  writeFileSync(P.empty, "");
  // `unshare -m` makes the namespace's mounts private: the bind mount never
  // reaches the host's mount table (checked after every round).
  writeFileSync(
    P.crunWrapper,
    [
      "#!/bin/sh",
      "# crun 1.8 refuses hybrid cgroups when cgroup2 lists controllers: hide them.",
      `exec unshare -m sh -c 'mount --bind ${P.empty} ${CONTROLLERS} && exec ${CRUN} "$@"' crun "$@"`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
}

// ---- cleanup ------------------------------------------------------------------------

const ourProcesses = () => processesNaming(WORK, TOKEN);
const ourMounts = () => mountsUnder(WORK, CONTROLLERS);

/** Verb containers left in our state roots (each runtime keeps a directory per container). */
function verbContainers(): [Runtime, string][] {
  return RUNTIMES.flatMap((r) => {
    const root = stateRoot(r);
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .filter((id) => id.startsWith(TOKEN))
      .map((id): [Runtime, string] => [r, id]);
  });
}

const cleanup = cleanupOnce(async () => {
  await stopChild(BENCH.child);
  for (const [r, id] of verbContainers()) {
    anomalies.push(`${RUNTIME_NAMES[r]} container ${id} was left; deleted with delete --force`);
    const [file, ...args] = call(r, "delete", "--force", id);
    spawnSync(file as string, args, { stdio: "ignore" });
  }
  if (podmanReady) {
    spawnSync("podman", PODMAN.args("rm", "-af", "-t", "0"), {
      env: PODMAN.env(),
      stdio: "ignore",
    });
  }
  await cleanUpBench(BENCH, {
    running,
    podman: podmanReady ? PODMAN : undefined,
    podmanCgroupParent: PODMAN_CGROUP_PARENT,
    mounts: ourMounts,
    processes: ourProcesses,
  });
});

const leftovers = () => [
  ...leftoversSince(before, {
    mountDirs: [WORK, CONTROLLERS],
    ours: (dir) => dir.includes(TOKEN),
    processes: ourProcesses(),
    workDir: KEEP ? undefined : WORK,
  }),
  ...podmanStates()
    .filter((s) => !statesBefore.has(s))
    .map((s) => `runtime state ${s} (a podman container's)`),
];

// ---- 1. podman --runtime X run --rm --network none IMAGE true ---------------------

type PodTool = "podMinibox" | "podRunc" | "podCrun" | "node" | "version" | "wrapper";
const POD_TOOLS: PodTool[] = ["podMinibox", "podRunc", "podCrun", "node", "version", "wrapper"];
const POD_LABELS: Record<PodTool, string> = {
  podMinibox: "**podman `--runtime ./minibox-runc`** `run --rm --network none IMAGE true`",
  podRunc: "**podman `--runtime /usr/sbin/runc`** `run …`",
  podCrun: "**podman `--runtime` crun** (behind the hybrid-cgroup wrapper) `run …`",
  node: "`node -e 0` (the floor of any minibox-runc call)",
  version: "`./minibox-runc --version` (sh + node + the bundle's load)",
  wrapper: "crun's wrapper alone: `unshare -m sh -c 'mount --bind … && exec true'`",
};

/** `podman --runtime RUNTIME run --rm … IMAGE COMMAND`: every podman run of this bench. */
const podRun = (runtime: string, image: string, ...command: string[]) =>
  podmanRun({ runtime, cgroupParent: PODMAN_CGROUP_PARENT, options: ["--rm"], image, command });

function podArgv(tool: PodTool, ref: string): string[] {
  const pod = (runtime: string) => ["podman", ...PODMAN.args(...podRun(runtime, ref, "true"))];
  switch (tool) {
    case "podMinibox":
      return pod(MINIBOX_RUNC);
    case "podRunc":
      return pod(RUNC);
    case "podCrun":
      return pod(P.crunWrapper);
    case "node":
      return ["node", "-e", "0"];
    case "version":
      return [MINIBOX_RUNC, "--version"];
    case "wrapper":
      return ["unshare", "-m", "sh", "-c", `mount --bind ${P.empty} ${CONTROLLERS} && exec true`];
  }
}

/** After a round: nothing mounted of ours, no podman container state left with a runtime. */
function checkPodRound(round: string): void {
  for (const mp of ourMounts()) anomalies.push(`round ${round}: mount ${mp} left`);
  for (const s of podmanStates())
    if (!statesBefore.has(s)) anomalies.push(`podman round ${round}: runtime state ${s} left`);
}

function podmanRounds(ref: string): Promise<Record<PodTool, Stats>> {
  return hyperfineRounds(
    POD_TOOLS,
    ROUNDS,
    (order, name) =>
      hyperfineRound(order, (t) => podArgv(t, ref), {
        json: path.join(P.hyperfine, `pod-${name}.json`),
        env: PODMAN.env(),
        round: name,
        track,
      }),
    { check: checkPodRound, label: "podman: ", show: ["podMinibox", "podRunc", "podCrun"] },
  );
}

// ---- 2. the verbs, each timed alone ---------------------------------------------------

type Verb = "create" | "start" | "state" | "kill" | "delete" | "run" | "--version";
/** `--version` is the floor: the runtime's start-up, no container. */
const VERBS: Verb[] = ["create", "start", "state", "kill", "delete", "run", "--version"];

/** A shell word list for sh -c. */
const sh = (argv: string[]) => argv.map(quote).join(" ");

/**
 * What one verb's timing needs, for runtime `r` and container `id`: the
 * command, the untimed preparation (the container in the state the verb
 * acts on) and the cleanup (the container gone). Preparation and cleanup
 * write to the log file, never to hyperfine's pipes: a created container's
 * init would hold them open.
 */
function verbPlan(verb: Verb, r: Runtime, id: string) {
  // kill acts on a running `sleep 600`; every other verb on `true`.
  const bundle = `${P.bundle}-${verb === "kill" ? "sleep" : "true"}`;
  const pidFile = path.join(WORK, `${id}.pid`);
  const createArgv = call(r, "create", "--bundle", bundle, "--pid-file", pidFile, id);
  const create = sh(createArgv);
  const start = sh(call(r, "start", id));
  const state = sh(call(r, "state", id));
  // Poll (untimed) until `true` has exited and the runtime says so.
  const waitStopped = `i=0; until ${state} | grep -q '"status": *"stopped"'; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.01; done`;
  const script = (body: string) => ["sh", "-c", `exec >>${quote(P.log)} 2>&1; ${body}`];
  const gone = `[ ! -e ${quote(path.join(stateRoot(r), id))} ] || ${sh(call(r, "delete", "--force", id))}`;
  const cleanup = script(gone);
  switch (verb) {
    case "create":
      return { command: createArgv, prepare: script("true"), cleanup };
    case "start":
      return { command: call(r, "start", id), prepare: script(create), cleanup };
    case "state":
      return { command: call(r, "state", id), prepare: script(create), cleanup };
    case "kill":
      return {
        command: call(r, "kill", id, "KILL"),
        prepare: script(`${create} && ${start}`),
        cleanup,
      };
    case "delete":
      return {
        command: call(r, "delete", id),
        prepare: script(`${create} && ${start} && ${waitStopped}`),
        cleanup,
      };
    case "run":
      return { command: call(r, "run", "--bundle", bundle, id), prepare: script("true"), cleanup };
    case "--version":
      return { command: [binaryOf(r), "--version"], prepare: script("true"), cleanup };
  }
}

/** One verb, one runtime, one round: `hyperfine -N --runs 1 --prepare … --cleanup … CMD`. */
function timeVerb(verb: Verb, r: Runtime, round: number): { ms: number; cpu: number } {
  const id = `${TOKEN}-${r}-${verb}-${round}`;
  const plan = verbPlan(verb, r, id);
  const json = path.join(P.hyperfine, `${verb}-${r}-${round}.json`);
  const args = ["-N", "--runs", "1", "--style", "none", "--export-json", json];
  args.push("--prepare", sh(plan.prepare), "--cleanup", sh(plan.cleanup), sh(plan.command));
  const h = spawnSync("hyperfine", args, { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (h.status !== 0)
    throw new Error(`${verb} with ${RUNTIME_NAMES[r]} failed:\n${h.stderr.trim()}\n(see ${P.log})`);
  const result = JSON.parse(readFileSync(json, "utf8")).results[0];
  return { ms: result.times[0] * 1000, cpu: (result.user + result.system) * 1000 };
}

/** Verbs that fail for a runtime: recorded in the report, not timed further. */
const verbFailures: string[] = [];

function verbRounds(runtimes: Runtime[]): Map<string, Stats> {
  const wall = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const broken = new Set<string>();
  for (let round = 0; round <= VERB_ROUNDS; round++) {
    settle();
    const shown: string[] = [];
    for (const verb of VERBS) {
      for (const r of rotate(runtimes, round)) {
        const key = `${verb}/${r}`;
        if (broken.has(key)) continue;
        let t: { ms: number; cpu: number };
        try {
          t = timeVerb(verb, r, round);
        } catch (e) {
          broken.add(key);
          verbFailures.push(
            `${RUNTIME_NAMES[r]} \`${verb}\`: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}`,
          );
          continue;
        }
        for (const mp of ourMounts())
          anomalies.push(`verb ${key} round ${round}: mount ${mp} left`);
        if (round === 0) continue; // warm-up
        wall.set(key, [...(wall.get(key) ?? []), t.ms]);
        cpu.set(key, [...(cpu.get(key) ?? []), t.cpu]);
        shown.push(`${verb}/${r} ${ms(t.ms)}`);
      }
    }
    process.stderr.write(
      `verbs: round ${round}/${VERB_ROUNDS}${round === 0 ? " (warm-up)" : ""}: ${shown.join(", ")}\n`,
    );
  }
  const out = new Map<string, Stats>();
  for (const [key, all] of wall) out.set(key, stats(all, cpu.get(key)));
  return out;
}

// ---- preparation ----------------------------------------------------------------------

const APPLETS = ["sh", "true", "sleep"];

/** Two bundles over one busybox-static rootfs: `true`, and `sleep 600` (for kill). */
function makeBundles(): void {
  const rootfs = path.join(WORK, "rootfs");
  mkdirSync(path.join(rootfs, "bin"), { recursive: true });
  mkdirSync(path.join(rootfs, "tmp"));
  chmodSync(path.join(rootfs, "tmp"), 0o1777);
  copyFileSync("/bin/busybox", path.join(rootfs, "bin", "busybox"));
  for (const a of APPLETS) symlinkSync("busybox", path.join(rootfs, "bin", a));
  for (const [name, args] of [
    ["true", ["true"]],
    ["sleep", ["sleep", "600"]],
  ] as const) {
    const dir = `${P.bundle}-${name}`;
    mkdirSync(dir, { recursive: true });
    must(RUNC, ["spec", "--bundle", dir]);
    const file = path.join(dir, "config.json");
    const spec = JSON.parse(readFileSync(file, "utf8"));
    spec.process.terminal = false;
    spec.process.args = args;
    spec.root = { path: rootfs, readonly: false };
    writeFileSync(file, `${JSON.stringify(spec, null, 2)}\n`);
  }
}

/** Each podman runtime really starts a container: `sh -c 'echo $$'` prints 1. */
function checkPodman(ref: string): void {
  for (const runtime of [MINIBOX_RUNC, RUNC, P.crunWrapper]) {
    const out = must(
      "podman",
      PODMAN.args(...podRun(runtime, ref, "sh", "-c", "echo $$")),
      PODMAN.env(),
    ).trim();
    if (out !== "1") throw new Error(`podman --runtime ${runtime}: printed "${out}", expected "1"`);
  }
  process.stderr.write("podman ran `sh -c 'echo $$'` with each runtime and got 1\n");
}

/**
 * The runtime calls behind one `podman run --rm … true` (untimed), through
 * test/support/podman.ts's tracer: how many times a runtime's start-up is paid.
 */
function runtimeCalls(ref: string): Record<"minibox" | "runc", string[]> {
  const out = { minibox: [] as string[], runc: [] as string[] };
  for (const r of ["minibox", "runc"] as const) {
    const log = path.join(WORK, `calls-${r}.log`);
    const tracer = runtimeTracer(path.join(WORK, `traced-${r}`), binaryOf(r), log);
    must("podman", PODMAN.args(...podRun(tracer, ref, "true")), PODMAN.env());
    for (const line of readFileSync(log, "utf8").split("\n")) {
      const m = /^argv: (.*)$/.exec(line);
      // The verb: the first word that is not a global option or its value.
      const words = m?.[1]?.split(" ") ?? [];
      const verb = words.find(
        (w, i) => !w.startsWith("-") && !/^--(root|log|log-format)$/.test(words[i - 1] ?? ""),
      );
      if (m) out[r].push(verb ?? "?");
    }
  }
  return out;
}

// ---- the report ------------------------------------------------------------------------

const TARGETS: Partial<Record<Verb, number>> = { state: 2, kill: 2, delete: 2 };

function report(
  pod: Record<PodTool, Stats>,
  verbs: Map<string, Stats>,
  calls: Record<"minibox" | "runc", string[]>,
): string {
  const m = (s: Stats | undefined) => (s ? ms(s.median) : "fails");
  const podRatio = pod.podMinibox.median / pod.podRunc.median;
  const floor = verbs.get("--version/minibox");
  const lines = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z, podman ${ROUNDS} rounds, verbs ${VERB_ROUNDS} rounds)`,
    "",
    cpuLine(),
    `- work dir ${path.dirname(WORK)}/mbx-rt-*: ${filesystemOf(WORK)}`,
    `- node ${process.version}; ${firstLine(RUNC, ["--version"])}; ${firstLine(CRUN, ["--version"])}; ${firstLine("podman", ["--version"])}; ${firstLine("hyperfine", ["--version"])}; ${firstLine(MINIBOX_RUNC, ["--version"])}`,
    commitLine("src", "native"),
    loadLine(before.load),
    "",
    `### 1. \`podman --runtime X run --rm --network none IMAGE true\`, cached image, wall time (ms), ${ROUNDS} rounds`,
    "",
    ...timesTable(POD_TOOLS, (t) => POD_LABELS[t], pod),
    "",
    row(["ratio (medians)", "value", "target"]),
    "| --- | ---: | --- |",
    row([
      "podman+minibox-runc / podman+runc",
      ratio(pod.podMinibox.median, pod.podRunc.median),
      `≤ 1.2: ${podRatio <= 1.2 ? "met" : "**missed**"}`,
    ]),
    row([
      "podman+minibox-runc / podman+crun (wrapped)",
      ratio(pod.podMinibox.median, pod.podCrun.median),
      "—",
    ]),
    row([
      "podman+crun (wrapped) / podman+runc",
      ratio(pod.podCrun.median, pod.podRunc.median),
      "—",
    ]),
    row([
      "(podman+minibox-runc − podman+runc) / (`./minibox-runc --version`)",
      ratio(pod.podMinibox.median - pod.podRunc.median, pod.version.median),
      "— (how many node starts the difference is worth)",
    ]),
    "",
    `Runtime calls behind one \`podman run --rm … true\` (podman and conmon, traced, untimed): minibox-runc ${calls.minibox.length} (${calls.minibox.join(", ")}); runc ${calls.runc.length} (${calls.runc.join(", ")}).`,
    "",
    `### 2. Each verb alone on a busybox bundle, wall time (ms), ${VERB_ROUNDS} rounds (after one warm-up)`,
    "",
    row([
      "verb",
      "minibox-runc median",
      "runc median",
      "crun (wrapped) median",
      "minibox-runc / runc",
      "minibox-runc / crun",
      "target",
      "minibox-runc − its `--version`",
      "minibox-runc min / CPU",
      "runc min / CPU",
    ]),
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ...VERBS.map((verb) => {
      const mb = verbs.get(`${verb}/minibox`);
      const rc = verbs.get(`${verb}/runc`);
      const cr = verbs.get(`${verb}/crun`);
      const target = TARGETS[verb];
      const q = mb && rc ? mb.median / rc.median : undefined;
      return row([
        `\`${verb}\``,
        m(mb),
        m(rc),
        m(cr),
        q === undefined ? "—" : q.toFixed(2),
        mb && cr ? ratio(mb.median, cr.median) : "—",
        target === undefined
          ? "—"
          : q === undefined
            ? "not measured"
            : `≤ ${target}: ${q <= target ? "met" : "**missed**"}`,
        mb && floor && verb !== "--version" ? ms(mb.median - floor.median) : "—",
        mb ? `${ms(mb.min)} / ${ms(mb.cpu ?? 0)}` : "—",
        rc ? `${ms(rc.min)} / ${ms(rc.cpu ?? 0)}` : "—",
      ]);
    }),
    "",
    `Floor: \`node -e 0\` median ${ms(pod.node.median)} ms, \`./minibox-runc --version\` ${ms(pod.version.median)} ms (from the podman rounds); crun's wrapper alone ${ms(pod.wrapper.median)} ms (in each crun figure).`,
    "",
    ...(verbFailures.length
      ? ["Verbs that failed (not timed):", "", ...verbFailures.map((f) => `- ${f}`), ""]
      : ["Every verb worked with every runtime.", ""]),
    "Rounds, in order (ms):",
    "",
    ...[...verbs].map(([key, s]) => `- ${key}: ${s.all.map(ms).join(", ")}`),
    "",
  ];
  return `${lines.join("\n")}\n`;
}

const BEGIN = "<!-- runtime results: begin -->";
const END = "<!-- runtime results: end -->";

function writeReadme(text: string, closing: string): void {
  const file = path.join(PROJECT, "bench", "README.md");
  const readme = readFileSync(file, "utf8");
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`bench/README.md has no ${BEGIN} … ${END} markers`);
  writeFileSync(
    file,
    `${readme.slice(0, a + BEGIN.length)}\n${text}\n${closing}\n${readme.slice(b)}`,
  );
}

let reportText = "";

async function main() {
  running = await startRegistry(WORK, [BUNDLE, MINIBOX_RUNC]);
  const ref = `${running.env.registries.anon}/fixtures/base`;
  mkdirSync(P.hyperfine, { recursive: true });
  mkdirSync(P.states, { recursive: true });
  writeCrunWrapper();
  makeBundles();
  PODMAN.writeConfig();
  podmanReady = true;
  must("podman", PODMAN.args("pull", "--tls-verify=false", "-q", ref), PODMAN.env());
  checkPodman(ref);

  const calls = runtimeCalls(ref);
  const pod = await podmanRounds(ref);
  const verbs = verbRounds(RUNTIMES);
  reportText = report(pod, verbs, calls);
  process.stdout.write(reportText);
  if (OUT) writeFileSync(OUT, reportText);
}

await runBench(main, {
  cleanup,
  anomalies,
  leftovers,
  clean:
    "Cleanup check: no containers (ours or podman's state in /run/{runc,crun,minibox-runc}), mounts, cgroups (podman's cgroup parent included), processes or work dir of this run are left.",
  out: OUT,
  kept: KEEP ? WORK : undefined,
});

if (WRITE_README && reportText && process.exitCode !== 1) {
  const closing = anomaliesText();
  writeReadme(reportText, closing);
}

function anomaliesText(): string {
  return anomalies.length === 0
    ? "Cleanup check: nothing of this run left (containers, runtime state, mounts, cgroups incl. podman's cgroup parent, processes, work dir)."
    : `Cleanup check found:\n${anomalies.map((a) => `- ${a}`).join("\n")}`;
}
