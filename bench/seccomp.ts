// What the seccomp filter costs: `minibox run --rm --network none IMAGE true`
// with the default filter against `--security-opt seccomp=unconfined` (and
// with the store's filter cache emptied before each run: what every run cost
// before the cache), the node time of the filter's two steps from `--trace`,
// and a syscall-heavy loop (1 M getppid in a static C program) inside the
// container with the filter against unconfined, with podman's default filter
// against podman unconfined on the same loop when podman is installed. See
// bench/README.md ("Benchmarks: the seccomp filter").
//
//   npm run build && npx vite-node bench/seccomp.ts [-- --rounds N --loop-rounds N --out FILE --keep]
//
// Rounds alternate the commands (the order rotates each round) and the
// tables give medians. The loop program times itself (CLOCK_MONOTONIC around
// the loop), so container start-up is not in its figure.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { RunningTestEnv } from "../test/support/env.js";
import {
  BUNDLE,
  benchState,
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
  ms1,
  must,
  OUT,
  parseTrace,
  podmanRun,
  podmanStore,
  processesNaming,
  ratio,
  rotate,
  row,
  runBench,
  startRegistry,
  stopChild,
  timesTable,
} from "./common.js";

const ROUNDS = intOption("--rounds", 30, 1);
const LOOP_ROUNDS = intOption("--loop-rounds", 11, 1);
const TRACE_ROUNDS = intOption("--trace-rounds", 9, 1);
const LOOP_CALLS = 1_000_000;

const BENCH = benchState("mbx-seccomp");
const { token: TOKEN, work: WORK, anomalies, before, track } = BENCH;
/** podman's containers go under this cgroup (ours to remove at the end, as bench/run.ts does). */
const PODMAN_CGROUP_PARENT = `/${TOKEN}-podman`;
const P = {
  mbxRoot: path.join(WORK, "minibox"),
  mbxConfig: path.join(WORK, "minibox-config"),
  loopDir: path.join(WORK, "loop"),
  podman: path.join(WORK, "podman"),
  podmanRunroot: path.join(WORK, "prun"),
  containersConfig: path.join(WORK, "containers-config"),
  hyperfine: path.join(WORK, "hyperfine"),
};
const PODMAN = podmanStore(P.podman, P.podmanRunroot, P.containersConfig);
/** podman runs with runc (scripts/setup.sh --bench installs both). */
const HAS_PODMAN = ["podman", "runc"].every(
  (tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).status === 0,
);
let running: RunningTestEnv | undefined;
let podmanReady = false;

const env = () => ({ ...PODMAN.env(), MINIBOX_CONFIG: P.mbxConfig });
const ourProcesses = () => processesNaming(WORK);

const cleanup = cleanupOnce(async () => {
  await stopChild(BENCH.child);
  await cleanUpBench(BENCH, {
    running,
    podman: podmanReady ? { args: PODMAN.args, env } : undefined,
    podmanCgroupParent: PODMAN_CGROUP_PARENT,
    mounts: () => mountsUnder(WORK),
    processes: ourProcesses,
  });
});

const leftovers = () => [
  ...leftoversSince(before, {
    mountDirs: [WORK],
    ours: (dir) => dir.includes(TOKEN),
    processes: ourProcesses(),
    workDir: KEEP ? undefined : WORK,
  }),
  ...ourContainers().map((id) => `container ${id} in our store`),
];

/** Containers left in our store (every run is --rm: none). */
function ourContainers(): string[] {
  const r = spawnSync(LAUNCHER, ["--root", P.mbxRoot, "ps", "-a", "-q"], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n").filter(Boolean);
}

// ---- `run … true`: the filter, unconfined, the filter without the cache ---------------

type RunTool = "filter" | "unconfined" | "uncached";
const RUN_TOOLS: RunTool[] = ["filter", "unconfined", "uncached"];
const RUN_LABELS: Record<RunTool, string> = {
  filter: "`./minibox run --rm --network none IMAGE true` (the default filter, cached)",
  unconfined: "`./minibox run --rm --network none --security-opt seccomp=unconfined IMAGE true`",
  uncached:
    "the default filter, the store's cache emptied first (`sh -c 'rm -rf ROOT/seccomp; exec ./minibox run …'`)",
};
const UNCACHED_FLOOR = "`sh -c 'rm -rf ROOT/seccomp; exec true'` (what the emptying itself costs)";

function runArgv(tool: RunTool | "floor", ref: string): string[] {
  const mbx = [LAUNCHER, "--root", P.mbxRoot, "run", "--rm", "--network", "none"];
  const emptyCache = `rm -rf ${path.join(P.mbxRoot, "seccomp")}; exec`;
  switch (tool) {
    case "filter":
      return [...mbx, ref, "true"];
    case "unconfined":
      return [...mbx, "--security-opt", "seccomp=unconfined", ref, "true"];
    case "uncached":
      return ["sh", "-c", `${emptyCache} "$@"`, "sh", ...mbx, ref, "true"];
    case "floor":
      return ["sh", "-c", `${emptyCache} true`];
  }
}

async function runRounds(ref: string) {
  const tools = [...RUN_TOOLS, "floor"] as const;
  return hyperfineRounds(
    [...tools],
    ROUNDS,
    (order, name) =>
      hyperfineRound(order, (t) => runArgv(t, ref), {
        json: path.join(P.hyperfine, `${name}.json`),
        env: env(),
        round: name,
        track,
      }),
    { check: () => undefined, label: "run: ", show: ["filter", "unconfined", "uncached"] },
  );
}

/** Node time of the filter's two steps (`--trace`: profile, then program), cache hit and miss. */
function traceRounds(ref: string) {
  const out = { hit: [] as number[], miss: [] as number[] };
  // The run rounds' last command may have emptied the cache: fill it (untimed).
  must(LAUNCHER, ["--root", P.mbxRoot, "run", "--rm", "--network", "none", ref, "true"], env());
  for (let i = 0; i < TRACE_ROUNDS; i++) {
    for (const kind of rotate(["hit", "miss"] as const, i)) {
      if (kind === "miss")
        rmSync(path.join(P.mbxRoot, "seccomp"), { recursive: true, force: true });
      const r = spawnSync(
        LAUNCHER,
        ["--root", P.mbxRoot, "run", "--rm", "--network", "none", "--trace", ref, "true"],
        { env: env(), encoding: "utf8" },
      );
      if (r.status !== 0) throw new Error(`traced run failed: ${r.stderr}`);
      const steps = parseTrace(r.stderr).filter((l) =>
        /^seccomp (profile|filter) (from|resolved|compiled)/.test(l.text),
      );
      const said = kind === "hit" ? /from the store's cache/ : /resolved|compiled/;
      if (steps.length !== 2 || !steps.every((s) => said.test(s.text)))
        throw new Error(
          `${kind}: unexpected seccomp trace lines: ${steps.map((s) => s.text).join("; ")}`,
        );
      out[kind].push(steps.reduce((sum, s) => sum + (s.took ?? 0), 0));
    }
  }
  return out;
}

// ---- the getppid loop ---------------------------------------------------------------

const LOOP_C = `/* ${LOOP_CALLS} getppid() calls; prints the loop's wall time in ms. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : ${LOOP_CALLS};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) syscall(SYS_getppid);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.3f\\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
  return 0;
}
`;

type LoopTool = "host" | "filter" | "allowAll" | "unconfined" | "podman" | "podmanUnconfined";
const LOOP_LABELS: Record<LoopTool, string> = {
  host: "on the host, no container, no filter",
  filter: "**minibox**, the default filter",
  allowAll: 'minibox, a filter that allows everything (`{"defaultAction": "SCMP_ACT_ALLOW"}`)',
  unconfined: "minibox, `--security-opt seccomp=unconfined`",
  podman: "**podman**, its default filter",
  podmanUnconfined: "podman, `--security-opt seccomp=unconfined`",
};

function buildLoop(): string {
  mkdirSync(P.loopDir, { recursive: true });
  chmodSync(P.loopDir, 0o755);
  const source = path.join(WORK, "getppid-loop.c");
  writeFileSync(source, LOOP_C);
  const binary = path.join(P.loopDir, "getppid-loop");
  must("gcc", ["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, source]);
  return binary;
}

/**
 * The cheapest filter there is: what any filter costs a syscall, whatever
 * its program (the kernel's seccomp entry path; its per-arch action cache
 * skips the program for syscalls always allowed, as getppid is).
 */
function allowAllProfile(): string {
  const file = path.join(WORK, "allow-all.json");
  writeFileSync(file, '{"defaultAction": "SCMP_ACT_ALLOW"}\n');
  return file;
}

function loopArgv(tool: LoopTool, ref: string, binary: string): string[] {
  const inner = ["/loop/getppid-loop", String(LOOP_CALLS)];
  const vol = ["-v", `${P.loopDir}:/loop:ro`];
  const mbx = [LAUNCHER, "--root", P.mbxRoot, "run", "--rm", "--network", "none", ...vol];
  const pod = (...flags: string[]) => [
    "podman",
    ...PODMAN.args(
      ...podmanRun({
        // runc, as bench/run.ts: crun refuses this host's hybrid cgroup layout.
        runtime: "runc",
        cgroupParent: PODMAN_CGROUP_PARENT,
        options: ["--rm", ...vol, ...flags],
        image: ref,
        command: inner,
      }),
    ),
  ];
  switch (tool) {
    case "host":
      return [binary, String(LOOP_CALLS)];
    case "filter":
      return [...mbx, ref, ...inner];
    case "allowAll":
      return [...mbx, "--security-opt", `seccomp=${allowAllProfile()}`, ref, ...inner];
    case "unconfined":
      return [...mbx, "--security-opt", "seccomp=unconfined", ref, ...inner];
    case "podman":
      return pod();
    case "podmanUnconfined":
      return pod("--security-opt", "seccomp=unconfined");
  }
}

function loopRounds(tools: LoopTool[], ref: string, binary: string) {
  const times = new Map<LoopTool, number[]>(tools.map((t) => [t, []]));
  for (let r = 0; r <= LOOP_ROUNDS; r++) {
    const shown: string[] = [];
    for (const tool of rotate(tools, r)) {
      const [file, ...args] = loopArgv(tool, ref, binary);
      const out = must(file as string, args, env()).trim();
      const msLoop = Number(out.split("\n").pop());
      if (!Number.isFinite(msLoop)) throw new Error(`${tool}: the loop printed "${out}"`);
      if (r > 0) times.get(tool)?.push(msLoop); // round 0 warms up
      shown.push(`${tool} ${ms1(msLoop)}`);
    }
    process.stderr.write(
      `loop: round ${r}/${LOOP_ROUNDS}${r === 0 ? " (warm-up)" : ""}: ${shown.join(", ")} ms\n`,
    );
  }
  return times;
}

// ---- the report -------------------------------------------------------------------

async function main() {
  running = await startRegistry(WORK, [BUNDLE, LAUNCHER]);
  const ref = `${running.env.registries.anon}/fixtures/base`;
  mkdirSync(P.mbxConfig, { recursive: true });
  mkdirSync(P.hyperfine, { recursive: true });
  must(LAUNCHER, ["--root", P.mbxRoot, "pull", "-q", ref], env());
  if (HAS_PODMAN) {
    PODMAN.writeConfig();
    podmanReady = true;
    must("podman", PODMAN.args("pull", "--tls-verify=false", "-q", ref), env());
  }
  const binary = buildLoop();

  const run = await runRounds(ref);
  const traced = traceRounds(ref);
  const loopTools: LoopTool[] = ["host", "filter", "allowAll", "unconfined"];
  if (HAS_PODMAN) loopTools.push("podman", "podmanUnconfined");
  const loop = loopRounds(loopTools, ref, binary);
  const loopMedian = (t: LoopTool) => median(loop.get(t) ?? []);

  const added = run.filter.median - run.unconfined.median;
  const lines = [
    "## seccomp: results",
    "",
    cpuLine(),
    commitLine("src", "native"),
    `- node ${firstLine("node", ["--version"])}; ${HAS_PODMAN ? firstLine("podman", ["--version"]) : "podman not installed"}; ${firstLine("hyperfine", ["--version"])}`,
    loadLine(before.load),
    "",
    `### \`run … true\`: ${ROUNDS} rounds (ms)`,
    "",
    ...timesTable(
      [...RUN_TOOLS, "floor"],
      (t) => (t === "floor" ? UNCACHED_FLOOR : RUN_LABELS[t]),
      run,
    ),
    "",
    `- the filter adds **${ms1(added)} ms** to the median run (target ≤ 2 ms); filter/unconfined = ${ratio(run.filter.median, run.unconfined.median)}`,
    `- without the cache: +${ms1(run.uncached.median - run.floor.median - run.unconfined.median)} ms over unconfined (the emptying's own cost taken off)`,
    "",
    `### Node time of the filter's two steps (\`--trace\`: the profile, then the program), ${TRACE_ROUNDS} runs each (ms)`,
    "",
    row(["store's cache", "median", "min", "max"]),
    "| --- | ---: | ---: | ---: |",
    ...(["hit", "miss"] as const).map((k) =>
      row([k, ms1(median(traced[k])), ms1(Math.min(...traced[k])), ms1(Math.max(...traced[k]))]),
    ),
    "",
    `### ${LOOP_CALLS.toLocaleString("en")} getppid() in a static C program: ${LOOP_ROUNDS} rounds, the loop's own time (ms)`,
    "",
    row(["where", "median", "min", "max", "/ unconfined"]),
    "| --- | ---: | ---: | ---: | ---: |",
    ...loopTools.map((t) => {
      const all = loop.get(t) ?? [];
      const base = t.startsWith("podman")
        ? loopMedian("podmanUnconfined")
        : loopMedian("unconfined");
      return row([
        LOOP_LABELS[t],
        ms1(median(all)),
        ms1(Math.min(...all)),
        ms1(Math.max(...all)),
        ratio(median(all), base),
      ]);
    }),
    "",
    `- minibox's filter: **${ratio(loopMedian("filter"), loopMedian("unconfined"))}×** unconfined (target ≤ 1.3×), a filter that allows everything ${ratio(loopMedian("allowAll"), loopMedian("unconfined"))}×` +
      (HAS_PODMAN
        ? `; podman's: ${ratio(loopMedian("podman"), loopMedian("podmanUnconfined"))}×`
        : ""),
    "",
  ];
  const text = `${lines.join("\n")}\n`;
  process.stdout.write(text);
  if (OUT) writeFileSync(OUT, text);
}

await runBench(main, {
  cleanup,
  anomalies,
  leftovers,
  clean: "Cleanup check: nothing left (mounts, cgroups, processes, work dir).",
  out: OUT,
  kept: KEEP ? WORK : undefined,
});
