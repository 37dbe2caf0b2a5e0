// Every table of issue 15 in one run: start-up, `run`, where `run`'s time
// goes (--trace), `pull` of both fixtures, memory of N detached containers,
// and the scale rows (bench/scale.ts); then one Markdown
// report that opens with a summary of the targets. See bench/README.md.
//
//   npm run bench [-- --rounds N --write]          (builds first if dist/ is stale)
//   npx vite-node bench/all.ts [-- --only start,run,trace,pull,mem,scale]
//
// Options (after "--"):
//   --rounds N          the base number of rounds (default 20): start-up and run
//                       run 2N (their differences are a few to tens of ms),
//                       pull ceil(N/2) per image (hundreds of ms), the traced
//                       runs ceil(N/4). The default run took 5 min on this
//                       2-core machine under a load average of ~12 (other
//                       sessions' tests), bench/scale.ts's time (~5 min more,
//                       its ceil(N/2) rounds) not included
//   --only LIST         the parts to run, comma-separated (default: all of
//                       start,run,trace,pull,mem,scale)
//   --mem-containers N  detached containers per tool in the memory part (default 20)
//   --write             also replace the region between <!-- all:begin --> and
//                       <!-- all:end --> in bench/README.md with the report
//   --out FILE          also write the report to FILE
//   --keep              keep the work dirs
//
// The parts are the other benches' own code, imported (bench/run.ts,
// pull.ts, monitor.ts; bench/startup.ts), after setting
// common.ts's asPart so that importing one runs nothing by itself. Within a
// part, every round runs each tool once, in an order rotated from round to
// round, so drift in the machine's load is spread over all tools. One test
// registry serves all parts. A part that fails is reported and the others
// still run; the exit status is then 1. Each part cleans up what it made;
// the closing check (bench/common.ts's runBench) then looks for anything
// left: mounts, cgroups, processes, containers, work dirs.
//
// bench/scale.ts runs as a child process (it makes 600 containers in stores
// of its own, no registry needed, and removes them): its --out Markdown goes
// into the details, its --json medians into the summary rows.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { RunningTestEnv } from "../test/support/env.js";
import {
  asPart,
  BUNDLE,
  benchState,
  CLI,
  cleanUpBench,
  cleanupOnce,
  commitLine,
  cpuLine,
  EXECUTOR,
  firstLine,
  flag,
  HERE,
  intOption,
  KEEP,
  kb,
  LAUNCHER,
  leftoversSince,
  loadLine,
  ms,
  OUT,
  option,
  PROJECT,
  processesNaming,
  ratio,
  row,
  runBench,
  type Stats,
  type SummaryRow,
  startRegistry,
  timesTable,
} from "./common.js";
import { startupBench, startupReport, startupSummary } from "./startup.js";

// Before any part is imported: importing one must run nothing by itself.
asPart.value = true;

const PARTS = ["start", "run", "trace", "pull", "mem", "scale"] as const;
type Part = (typeof PARTS)[number];

const ROUNDS = intOption("--rounds", 20, 1);
const MEM_CONTAINERS = intOption("--mem-containers", 20, 1);
const WRITE = flag("--write");
const ONLY = new Set((option("--only") ?? PARTS.join(",")).split(",").filter(Boolean));
for (const p of ONLY)
  if (!(PARTS as readonly string[]).includes(p))
    throw new Error(`--only: "${p}" is not one of ${PARTS.join(",")}`);
const has = (p: Part) => ONLY.has(p);

const README = path.join(HERE, "README.md");
const BEGIN = "<!-- all:begin -->";
const END = "<!-- all:end -->";

const BENCH = benchState("mbx-all");
const { token: TOKEN, work: WORK, anomalies, before } = BENCH;
const MINIBOX_CONFIG = path.join(WORK, "minibox-config");

let running: RunningTestEnv | undefined;

// ---- the parts, imported on demand ------------------------------------------------

type RunModule = typeof import("./run.js");
type PullModule = typeof import("./pull.js");
type MonitorModule = typeof import("./monitor.js");
const imported: { run?: RunModule; pull?: PullModule; monitor?: MonitorModule } = {};

const runPart = async () => {
  imported.run ??= await import("./run.js");
  return imported.run;
};
const pullPart = async () => {
  imported.pull ??= await import("./pull.js");
  return imported.pull;
};
const monitorPart = async () => {
  imported.monitor ??= await import("./monitor.js");
  return imported.monitor;
};

// ---- building first, if dist/ is older than its sources ------------------------------

function newestUnder(dir: string, test: (name: string) => boolean): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "build" && e.name !== "node_modules")
        newest = Math.max(newest, newestUnder(full, test));
    } else if (test(e.name)) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** Runs `npm run build` when an output is missing or older than its sources. */
function buildIfStale(): void {
  const mtime = (f: string) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  // make rebuilds the executor only when native/ changed: each output against its own sources.
  const stale = [
    { outputs: [CLI, BUNDLE], dir: "src", source: (n: string) => n.endsWith(".ts") },
    { outputs: [EXECUTOR], dir: "native", source: (n: string) => /\.(c|h)$|^Makefile$/.test(n) },
  ].some(
    (o) => Math.min(...o.outputs.map(mtime)) < newestUnder(path.join(PROJECT, o.dir), o.source),
  );
  if (!stale) return;
  process.stderr.write(
    "dist/ or native/build/ is missing or older than its sources: npm run build…\n",
  );
  const r = spawnSync("npm", ["run", "-s", "build"], { cwd: PROJECT, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`npm run build failed (${r.status ?? r.signal})`);
}

// ---- the report -----------------------------------------------------------------------

const benchEnv = (): NodeJS.ProcessEnv => ({ ...process.env, MINIBOX_CONFIG });

/** The summary: one row per target of issue 15, with the raw medians and the ratio. */
function summaryTable(rows: SummaryRow[]): string[] {
  const value = (v: number, unit: SummaryRow["unit"]) =>
    unit === "kB" ? `${kb(v)} kB` : `${ms(v)} ms`;
  return [
    row(["work", "minibox median", "anchor", "anchor median", "ratio", "target", "met?"]),
    "| --- | ---: | --- | ---: | ---: | ---: | --- |",
    ...rows.map((r) => {
      const diff = r.kind === "difference";
      const got = diff ? r.minibox - r.anchor : r.minibox / r.anchor;
      return row([
        r.work,
        value(r.minibox, r.unit),
        r.anchorLabel,
        value(r.anchor, r.unit),
        diff ? `+${ms(got)} ms` : `${ratio(r.minibox, r.anchor)}×`,
        diff ? `≤ +${r.target} ms` : `≤ ${r.target}×`,
        got <= r.target ? "met" : "**missed**",
      ]);
    }),
  ];
}

const RUN_TOOLS = ["minibox", "podman", "runc", "node", "floor"] as const;
type RunTool = (typeof RUN_TOOLS)[number];

function runReport(run: RunModule, times: Record<RunTool, Stats>, rounds: number): string[] {
  const m = times.minibox;
  const node = times.node;
  return [
    `### \`run --rm --network none IMAGE true\` with a cached image, wall time (ms, ${rounds} rounds)`,
    "",
    ...timesTable(RUN_TOOLS, (t) => run.LABELS[t], times),
    "",
    `minibox / podman: ${ratio(m.median, times.podman.median)} of medians, ${ratio(m.min, times.podman.min)} of mins (target ≤ 0.5); ` +
      `(minibox − node -e 0) / runc: ${ratio(m.median - node.median, times.runc.median)} of medians, ` +
      `${ratio(m.min - node.min, times.runc.min)} of mins (target ≤ 1.5).`,
    "",
  ];
}

function runSummary(times: Record<RunTool, Stats>): SummaryRow[] {
  const m = times.minibox.median;
  const node = times.node.median;
  return [
    {
      work: "`run --rm --network none IMAGE true`",
      minibox: m,
      anchorLabel: "podman+runc, `--network none`",
      anchor: times.podman.median,
      kind: "ratio",
      target: 0.5,
      unit: "ms",
    },
    {
      work: "same, minus `node -e 0`",
      minibox: m - node,
      anchorLabel: "`runc run` on a bundle",
      anchor: times.runc.median,
      kind: "ratio",
      target: 1.5,
      unit: "ms",
    },
  ];
}

function memSummary(
  mon: MonitorModule,
  mem: Awaited<ReturnType<MonitorModule["memoryAtScale"]>>,
): SummaryRow {
  return {
    work: `\`run -d\` ${mem.n} containers: Rss of minibox's processes per container`,
    minibox: mon.perContainer(mem.minibox).rss,
    anchorLabel: "conmon's per container (`podman run -d`)",
    anchor: mon.perContainer(mem.podman).rss,
    kind: "ratio",
    target: 1,
    unit: "kB",
  };
}

/**
 * bench/scale.ts's part, run as its own process (it makes its own stores and
 * cleans them up): its Markdown, and summary rows from its medians (--json).
 */
async function scalePart(notes: string[]): Promise<{ markdown: string; summary: SummaryRow[] }> {
  const out = path.join(WORK, "scale.md");
  const json = path.join(WORK, "scale.json");
  const rounds = String(Math.max(3, Math.round(ROUNDS / 2)));
  const r = spawnSync(
    "npx",
    [
      "vite-node",
      path.join(HERE, "scale.ts"),
      "--",
      "--rounds",
      rounds,
      "--out",
      out,
      "--json",
      json,
    ],
    { cwd: PROJECT, stdio: ["ignore", "ignore", "inherit"] },
  );
  if (r.status !== 0 || !existsSync(json)) {
    notes.push(`bench/scale.ts failed (exit ${r.status}): no scale rows`);
    return { markdown: existsSync(out) ? readFileSync(out, "utf8") : "", summary: [] };
  }
  const { running, stopped, medians } = JSON.parse(readFileSync(json, "utf8")) as {
    running: number;
    stopped: number;
    medians: Record<string, number>;
  };
  const summary: SummaryRow[] = [];
  for (const c of ["ps", "ps -a", "inspect C", "stats --no-stream", "run --rm IMAGE true"]) {
    const one = medians[`minibox|one|${c}`];
    const many = medians[`minibox|many|${c}`];
    if (one === undefined || many === undefined) continue;
    summary.push({
      work: `\`${c}\` with ${running} containers running`,
      minibox: many,
      anchorLabel: "the same with 1 running",
      anchor: one,
      kind: "ratio",
      target: 1.3,
      unit: "ms",
    });
  }
  const mine = medians["minibox|stopped|ps -a"];
  const podman = medians["podman|stopped|ps -a"];
  if (mine !== undefined && podman !== undefined) {
    summary.push({
      work: `\`ps -a\` with ${stopped} stopped containers`,
      minibox: mine,
      anchorLabel: `\`podman ps -a\` with ${stopped}`,
      anchor: podman,
      kind: "ratio",
      target: 1,
      unit: "ms",
    });
  }
  return { markdown: readFileSync(out, "utf8"), summary };
}

/** Replaces the marked region of bench/README.md with `text`. */
function writeReadme(text: string): void {
  const readme = readFileSync(README, "utf8");
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${README} has no ${BEGIN} … ${END} region`);
  writeFileSync(README, `${readme.slice(0, a + BEGIN.length)}\n${text}\n${readme.slice(b)}`);
  process.stderr.write(`wrote the report into ${README}\n`);
}

// ---- main --------------------------------------------------------------------------

/** Parts that failed: reported, the others still run, the exit status is 1. */
const failures: string[] = [];

async function part<T>(name: Part, body: () => Promise<T>, took: string[]): Promise<T | undefined> {
  if (!has(name)) return undefined;
  const t0 = performance.now();
  process.stderr.write(`== ${name}\n`);
  try {
    return await body();
  } catch (e) {
    failures.push(`${name}: ${(e as Error).message.split("\n")[0]}`);
    process.stderr.write(`part ${name} failed: ${(e as Error).stack ?? e}\n`);
    return undefined;
  } finally {
    took.push(`${name} ${Math.round((performance.now() - t0) / 1000)} s`);
  }
}

async function main(): Promise<void> {
  buildIfStale();
  const t0 = performance.now();
  mkdirSync(MINIBOX_CONFIG, { recursive: true });
  running = await startRegistry(WORK, [CLI, BUNDLE, LAUNCHER, EXECUTOR]);
  const { env } = running;
  const ref = (repo: string) => `${env.registries.anon}/${repo}:latest`;
  const base = ref(env.fixtures.base.repo);
  const summary: SummaryRow[] = [];
  const details: string[] = [];
  const notes: string[] = [];
  const took: string[] = [];

  const startRounds = 2 * ROUNDS;
  await part(
    "start",
    async () => {
      const times = await startupBench({ rounds: startRounds, work: WORK, env: benchEnv() });
      details.push(...startupReport(times, startRounds));
      summary.push(...startupSummary(times));
    },
    took,
  );

  const runRounds = 2 * ROUNDS;
  const traceRounds = Math.ceil(ROUNDS / 4);
  const pullRounds = Math.ceil(ROUNDS / 2);
  if (has("run") || has("trace")) {
    const run = await runPart();
    let prepared = false;
    const prepare = async () => {
      if (!prepared) await run.prepare(base, env.fixtures.base, RUN_TOOLS);
      prepared = true;
    };
    await part(
      "run",
      async () => {
        await prepare();
        const times = await run.timedRounds(base, {
          rounds: runRounds,
          tools: RUN_TOOLS,
          label: "run ",
        });
        details.push(...runReport(run, times, runRounds));
        summary.push(...runSummary(times));
      },
      took,
    );
    await part(
      "trace",
      async () => {
        await prepare();
        details.push(...run.traceReport(await run.traceRuns(base, traceRounds), traceRounds));
      },
      took,
    );
    run.checkNoContainersLeft();
  }

  await part(
    "pull",
    async () => {
      const pull = await pullPart();
      await pull.makeWorkDirs();
      const images = [
        { fixture: env.fixtures.base, target: 0.6, what: "1 layer, busybox" },
        { fixture: env.fixtures.layered, target: 0.7, what: "3 layers, ~21 MiB, whiteouts" },
      ];
      for (const { fixture, target, what } of images) {
        const name = fixture.repo.split("/").pop() ?? fixture.repo;
        const res = await pull.pullBenchmark(ref(fixture.repo), fixture, {
          rounds: pullRounds,
          tag: `${name}-`,
        });
        details.push(...pull.pullSection(fixture.repo, res, target));
        summary.push({
          work: `\`pull\` ${fixture.repo} (${what}) into an empty store`,
          minibox: res.times.minibox.median,
          anchorLabel: `podman pull; skopeo copy ${ms(res.times.skopeo.median)} ms`,
          anchor: res.times.podman.median,
          kind: "ratio",
          target,
          unit: "ms",
        });
      }
    },
    took,
  );

  await part(
    "mem",
    async () => {
      const mon = await monitorPart();
      await mon.prepare(base, env.fixtures.base);
      const mem = await mon.memoryAtScale(base, MEM_CONTAINERS);
      details.push(...mon.scaleMemoryReport(mem));
      summary.push(memSummary(mon, mem));
    },
    took,
  );

  await part(
    "scale",
    async () => {
      const scale = await scalePart(notes);
      if (scale.markdown) details.push(scale.markdown, "");
      summary.push(...scale.summary);
    },
    took,
  );

  const minutes = ((performance.now() - t0) / 60_000).toFixed(1);
  // The command that reproduces the run: its options, less those that only say where output goes.
  const args = process.argv
    .slice(2)
    .filter((a, i, all) => !["--write", "--keep", "--out"].includes(a) && all[i - 1] !== "--out");
  const text = [
    `## Summary: issue 15's targets (${new Date().toISOString().slice(0, 16)}Z)`,
    "",
    `\`npm run bench -- ${[...args, "--write"].join(" ")}\` (${minutes} min; ${took.join(", ")}). ` +
      "Medians, each part alternating its tools round by round; the tables of this run are below the summary.",
    "",
    cpuLine(),
    commitLine("src", "native"),
    `- node ${process.version}; ${firstLine("podman", ["--version"])}; ${firstLine("runc", ["--version"])}; ${firstLine("skopeo", ["--version"])}; ${firstLine("hyperfine", ["--version"])}`,
    loadLine(before.load),
    "",
    ...summaryTable(summary),
    "",
    ...failures.map((f) => `- **part failed**: ${f}`),
    ...notes.map((n) => `- note: ${n}`),
    ...(failures.length + notes.length > 0 ? [""] : []),
    "<details><summary>All tables of this run</summary>",
    "",
    ...details,
    "</details>",
  ].join("\n");
  process.stdout.write(`${text}\n`);
  if (OUT) writeFileSync(OUT, `${text}\n`);
  if (WRITE) writeReadme(text);
  if (failures.length > 0) throw new Error(`parts failed: ${failures.join("; ")}`);
}

// ---- cleanup: each part's own, then the registry and our work dir ------------------------

const cleanup = cleanupOnce(async () => {
  const { run, pull, monitor } = imported;
  // Each part's cleanup removes its containers and work dir; ours then stops the registry.
  await run?.cleanup();
  await pull?.cleanup();
  await monitor?.cleanup();
  await cleanUpBench(BENCH, {
    running,
    podmanCgroupParent: `/${TOKEN}-podman`,
    mounts: () => [],
    processes: () => processesNaming(WORK, TOKEN),
  });
  anomalies.push(
    ...(run?.RUN_BENCH.anomalies ?? []),
    ...(pull?.strayMountsFound().map((m) => `pull: stray mount ${m}`) ?? []),
    ...(monitor?.MONITOR_BENCH.anomalies ?? []),
  );
});

function leftovers(): string[] {
  const { run, pull, monitor } = imported;
  const pullDirs = KEEP ? [] : (pull?.pullWorkDirs().filter((d) => existsSync(d)) ?? []);
  return [
    ...(run?.leftovers() ?? []),
    ...(monitor?.leftovers() ?? []),
    ...pullDirs.map((d) => `directory ${d}`),
    ...leftoversSince(before, {
      mountDirs: [WORK],
      ours: (dir) => dir.includes(TOKEN),
      processes: processesNaming(WORK, TOKEN),
      workDir: KEEP ? undefined : WORK,
    }),
  ];
}

await runBench(main, {
  cleanup,
  anomalies,
  leftovers,
  notes: () => [
    ...new Set([
      ...(imported.monitor?.MONITOR_BENCH.notes() ?? imported.run?.RUN_BENCH.notes() ?? []),
    ]),
  ],
  clean:
    "Cleanup check: no mounts, cgroups, processes, containers or work dirs of this run are left.",
  out: OUT,
  kept: KEEP ? WORK : undefined,
});
