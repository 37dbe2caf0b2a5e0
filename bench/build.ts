// `minibox build` against `podman build` and `buildah bud`, side by side in
// one run: the hello Dockerfile (and a variant with a RUN step) built cold,
// i.e. into a store that holds only the base image, then rebuilt with every
// step cached. See bench/README.md for what is measured and why.
//
//   npm run build && npx vite-node bench/build.ts [-- --rounds N]
//
// Options (after "--"):
//   --rounds N        timed rounds per variant (default 5); each round gives
//                     every tool a fresh store holding only the base image
//   --trace-rounds N  minibox builds per variant and phase with each output
//                     line timestamped: where minibox's time goes (default 3; 0 = none)
//   --out FILE   also write the Markdown results to FILE
//   --keep       keep the work dir (default: removed at the end)
//
// Timing: as in bench/run.ts, one `hyperfine -N --runs 1` invocation per
// round runs every tool's command once, in an order rotated from round to
// round; one untimed warm-up round first. Cold round r builds in stores
// prepared (untimed) for round r; cached round r builds the same Dockerfile
// again in the same stores, so each cached build follows exactly one cold one.
//
// Everything lives in one work dir made by mkdtemp under /tmp (short: podman's
// and buildah's overlay driver refuse runroots over 50 characters), chmod
// 0711 for minibox's user namespace. Nothing is deleted before the end (see
// "No deletes between rounds" in bench/README.md).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import type { RunningTestEnv } from "../test/support/env.js";
import {
  BUNDLE,
  benchState,
  cgroupDirs,
  cleanupOnce,
  commitLine,
  cpuLine,
  filesystemOf,
  firstLine,
  hyperfineRound,
  hyperfineRounds,
  intOption,
  KEEP,
  killProcesses,
  LAUNCHER,
  leftoversSince,
  loadLine,
  mountsUnder,
  ms,
  ms1,
  must,
  newMiniboxCgroups,
  OUT,
  type PodmanStore,
  podmanArgs,
  processesNaming,
  ratio,
  removeCgroups,
  row,
  runBench,
  type Stats,
  settle,
  startRegistry,
  stats,
  stopChild,
  timesTable,
  unmount,
  writeContainersConfig,
} from "./common.js";

const ROUNDS = intOption("--rounds", 5, 1);
const TRACE_ROUNDS = intOption("--trace-rounds", 3, 0);

// ---- work dir, names, bookkeeping ---------------------------------------------

/** In podman's and buildah's cgroup parents: what is ours. */
const BENCH = benchState("mbx-bld");
const { token: TOKEN, work: WORK, anomalies, before, track } = BENCH;
const P = {
  mbxConfig: path.join(WORK, "minibox-config"),
  containersConfig: path.join(WORK, "containers-config"),
  tmp: path.join(WORK, "tmp"),
  /** One directory per store: `s/VARIANT-ROUND-TOOL`. */
  stores: path.join(WORK, "s"),
  /** Runroots, short on purpose: `r/VARIANT-ROUND-TOOL`. */
  runroots: path.join(WORK, "r"),
  hyperfine: path.join(WORK, "hyperfine"),
};
const CGROUP_PARENT = { podman: `/${TOKEN}-podman`, buildah: `/${TOKEN}-buildah` };

let running: RunningTestEnv | undefined;
/** Set by prepareConfig(): podman's and buildah's isolated configuration. */
let containersEnv: NodeJS.ProcessEnv = process.env;
const benchEnv = () => ({ ...containersEnv, MINIBOX_CONFIG: P.mbxConfig });

/** Our mounts: anything under the work dir. */
const ourMounts = () => mountsUnder(WORK);
/**
 * c/storage's overlay driver bind-mounts its home (`ROOT/overlay`) onto itself
 * and leaves it there after each command: expected, unmounted at the end.
 */
const isDriverHome = (mp: string) => /\/s\/[^/]+\/root\/overlay$/.test(mp);
const ourProcesses = () => processesNaming(WORK, TOKEN);

// ---- the Dockerfiles -------------------------------------------------------------

type Variant = "hello" | "run";
const VARIANTS: Variant[] = ["hello", "run"];
/** The hello Dockerfile of test/integration/build.test.ts; "run" adds a RUN step. */
function dockerfile(variant: Variant, base: string): string {
  return [
    `FROM ${base}`,
    "COPY greeting.txt ./",
    ...(variant === "run" ? ["RUN echo hi > /x"] : []),
    "USER nobody",
    'CMD ["cat", "greeting.txt"]',
    "",
  ].join("\n");
}
/** Layers of the built image: the base's one, COPY's, and RUN's. */
const LAYERS: Record<Variant, number> = { hello: 2, run: 3 };
const contextDir = (v: Variant) => path.join(WORK, `ctx-${v}`);

// ---- the tools and their stores ----------------------------------------------------

type Builder = "minibox" | "podman" | "buildah";
const BUILDERS: Builder[] = ["minibox", "podman", "buildah"];
type Tool = Builder | "floor" | "node";
const TOOLS: Tool[] = [...BUILDERS, "floor", "node"];
const TAG = "mbx-bench-hello";

const LABELS: Record<Tool, string> = {
  minibox: "**minibox** `./minibox --root R build -t T CTX`",
  podman:
    "**podman** `podman --root R --runroot RR … --storage-driver overlay build --runtime runc --network none --pull=never --cgroup-parent … -t T CTX`",
  buildah:
    "**buildah** `buildah --root R --runroot RR --storage-driver overlay bud --layers --runtime runc --network none --pull=never --cgroup-parent … -t T CTX`",
  floor:
    "`./minibox --root R images -q` (minibox's start-up and one store read: the floor of any minibox command)",
  node: "`node -e 0` (node's own start and exit)",
};

const storeName = (v: Variant, round: string, b: Builder) => `${v}-${round}-${b}`;
const storeDir = (v: Variant, round: string, b: Builder) =>
  path.join(P.stores, storeName(v, round, b));

function cStore(v: Variant, round: string, b: "podman" | "buildah"): PodmanStore {
  const dir = storeDir(v, round, b);
  return {
    root: path.join(dir, "root"),
    runroot: path.join(P.runroots, storeName(v, round, b)),
    tmpdir: path.join(dir, "tmp"),
    driver: "overlay",
  };
}

/** buildah's global storage options (it has no --tmpdir, --cgroup-manager, --events-backend). */
const buildahArgs = (s: PodmanStore, ...command: string[]) => [
  "--root",
  s.root,
  "--runroot",
  s.runroot,
  "--storage-driver",
  s.driver,
  ...command,
];

/** Flags for podman build and buildah bud that make them do what minibox's build does. */
const BUILD_FLAGS = ["--runtime", "runc", "--network", "none", "--pull=never"];

function argv(tool: Tool, v: Variant, round: string): string[] {
  const ctx = contextDir(v);
  switch (tool) {
    case "minibox":
      return [LAUNCHER, "--root", storeDir(v, round, "minibox"), "build", "-t", TAG, ctx];
    case "podman":
      return [
        "podman",
        ...podmanArgs(cStore(v, round, "podman"), "build", ...BUILD_FLAGS),
        ...["--cgroup-parent", CGROUP_PARENT.podman, "-t", TAG, ctx],
      ];
    case "buildah":
      return [
        "buildah",
        ...buildahArgs(cStore(v, round, "buildah"), "bud", "--layers", ...BUILD_FLAGS),
        ...["--cgroup-parent", CGROUP_PARENT.buildah, "-t", TAG, ctx],
      ];
    case "floor":
      return [LAUNCHER, "--root", storeDir(v, round, "minibox"), "images", "-q"];
    case "node":
      return ["node", "-e", "0"];
  }
}

// ---- stores: prepare, inspect (untimed) -------------------------------------------

/** A fresh store for each builder holding only the base image, pulled from the test registry. */
function prepareStores(v: Variant, round: string, base: string): void {
  const env = benchEnv();
  must(LAUNCHER, ["--root", storeDir(v, round, "minibox"), "pull", "-q", base], env);
  const pod = cStore(v, round, "podman");
  mkdirSync(pod.tmpdir, { recursive: true });
  must("podman", podmanArgs(pod, "pull", "--tls-verify=false", "-q", base), env);
  const bah = cStore(v, round, "buildah");
  must("buildah", buildahArgs(bah, "pull", "--tls-verify=false", "-q", base), env);
  checkMounts(`store ${v}-${round}`);
}

/** The image tagged TAG in each builder's store: its ID and its number of layers. */
function builtImage(b: Builder, v: Variant, round: string): { id: string; layers: number } {
  const env = benchEnv();
  if (b === "minibox") {
    const index = JSON.parse(
      readFileSync(path.join(storeDir(v, round, b), "images.json"), "utf8"),
    ) as { tags: Record<string, string>; images: Record<string, { layers: unknown[] }> };
    const tag = Object.keys(index.tags).find((t) => t.endsWith(`${TAG}:latest`));
    const id = tag ? index.tags[tag] : undefined;
    const record = id ? index.images[id] : undefined;
    if (!id || !record) throw new Error(`minibox store ${v}-${round}: no image ${TAG}`);
    return { id: id.replace(/^sha256:/, ""), layers: record.layers.length };
  }
  const out =
    b === "podman"
      ? must(
          "podman",
          podmanArgs(cStore(v, round, b), "image", "inspect", "--format", FORMAT.podman, TAG),
          env,
        )
      : must(
          "buildah",
          buildahArgs(cStore(v, round, b), "inspect", "--type", "image", "-f", FORMAT.buildah, TAG),
          env,
        );
  const [id, layers] = out.trim().split(" ");
  return { id: (id ?? "").replace(/^sha256:/, ""), layers: Number(layers) };
}
const FORMAT = {
  podman: "{{.Id}} {{len .RootFS.Layers}}",
  buildah: "{{.FromImageID}} {{len .OCIv1.RootFS.DiffIDs}}",
};

/** After a round: mounts under the work dir other than the drivers' homes are anomalies. */
function checkMounts(when: string): void {
  for (const mp of ourMounts()) if (!isDriverHome(mp)) anomalies.push(`${when}: mount ${mp} left`);
}

/** minibox's build containers (RUN) must be gone once the build is done. */
function checkMiniboxContainers(v: Variant, round: string): void {
  const dir = path.join(storeDir(v, round, "minibox"), "containers");
  const left = existsSync(dir) ? readdirSync(dir) : [];
  if (left.length > 0)
    anomalies.push(`minibox store ${v}-${round} kept containers: ${left.join(", ")}`);
}

// ---- timed rounds --------------------------------------------------------------------

interface VariantResult {
  cold: Record<Tool, Stats>;
  cached: Record<Tool, Stats>;
}

async function variantRounds(v: Variant, base: string): Promise<VariantResult> {
  const ids = new Map<string, string>();
  const round = (phase: "cold" | "cached") => (order: Tool[], name: string) =>
    hyperfineRound(order, (t) => argv(t, v, name), {
      json: path.join(P.hyperfine, `${v}-${phase}-${name}.json`),
      env: benchEnv(),
      round: `${v} ${phase} ${name}`,
      track,
    });
  const cold = await hyperfineRounds(
    TOOLS,
    ROUNDS,
    (order, name) => {
      prepareStores(v, name, base);
      return round("cold")(order, name);
    },
    {
      check: (name) => {
        checkMounts(`${v} cold ${name}`);
        for (const b of BUILDERS) {
          const img = builtImage(b, v, name);
          if (img.layers !== LAYERS[v])
            throw new Error(`${b} ${v}-${name}: ${img.layers} layers, want ${LAYERS[v]}`);
          ids.set(`${b} ${name}`, img.id);
        }
        checkMiniboxContainers(v, name);
      },
      label: `${v} cold: `,
      show: ["minibox", "podman", "buildah"],
    },
  );
  const cached = await hyperfineRounds(TOOLS, ROUNDS, round("cached"), {
    check: (name) => {
      checkMounts(`${v} cached ${name}`);
      // Every step came from the cache: the same image as the cold build's.
      for (const b of BUILDERS) {
        const { id } = builtImage(b, v, name);
        if (id !== ids.get(`${b} ${name}`))
          throw new Error(`${b} ${v}-${name}: the rebuild made ${id}, not the cached image`);
      }
      checkMiniboxContainers(v, name);
    },
    label: `${v} cached: `,
    show: ["minibox", "podman", "buildah"],
  });
  return { cold, cached };
}

// ---- preparation (untimed) -------------------------------------------------------

function prepare(base: string): void {
  for (const dir of Object.values(P)) mkdirSync(dir, { recursive: true });
  containersEnv = writeContainersConfig({
    dir: P.containersConfig,
    tmp: P.tmp,
    driver: "overlay",
    graphroot: path.join(WORK, "default-root"),
    runroot: path.join(P.runroots, "default"),
  });
  for (const v of VARIANTS) {
    const ctx = contextDir(v);
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, "Dockerfile"), dockerfile(v, base));
    writeFileSync(path.join(ctx, "greeting.txt"), "Hello from minibox!\n");
  }
}

// ---- traced minibox builds: where the time goes -------------------------------------

/** A stage of a traced build: its label and its duration in ms. */
type Stage = [string, number];

/**
 * Runs `node dist/minibox.mjs …` (what ./minibox runs, without its sh) and
 * stamps each line of its output with the ms since spawn; the exit too.
 */
function spawnLines(args: string[]): Promise<{ lines: [number, string][]; exit: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("node", [BUNDLE, ...args], {
      env: benchEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    const lines: [number, string][] = [];
    let partial = "";
    let stderr = "";
    let exit = 0;
    child.stdout.on("data", (d: Buffer) => {
      const t = performance.now() - t0;
      const parts = (partial + d.toString()).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) lines.push([t, line]);
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", () => {
      exit = performance.now() - t0;
    });
    child.on("close", (code) => {
      track(undefined);
      if (code !== 0) reject(new Error(`minibox ${args.join(" ")} failed (${code}):\n${stderr}`));
      else resolve({ lines, exit });
    });
  });
}

/** The stages of one build from its timestamped output (a step's line is printed as it starts). */
function stagesOf(lines: [number, string][], exit: number): Stage[] {
  const at = (test: (l: string) => boolean, what: string, from = 0): number => {
    const i = lines.findIndex(([, l], k) => k >= from && test(l));
    if (i < 0)
      throw new Error(`traced build printed no ${what}:\n${lines.map((l) => l[1]).join("\n")}`);
    return i;
  };
  const t = (i: number) => (lines[i] as [number, string])[0];
  const text = (i: number) => (lines[i] as [number, string])[1];
  const out: Stage[] = [];
  const sending = at((l) => l.startsWith("Sending build context"), "context line");
  out.push([
    "process start → `Sending build context` (node bootstrap, module loading, CLI parsing, store init, Dockerfile, context read)",
    t(sending),
  ]);
  const steps: number[] = [];
  for (let i = 0; i < lines.length; i++) if (/^Step \d+\/\d+ : /.test(text(i))) steps.push(i);
  const built = at((l) => l.startsWith("Successfully built"), "`Successfully built`");
  out.push(["`Sending build context` → Step 1", t(steps[0] as number) - t(sending)]);
  for (const [k, i] of steps.entries()) {
    const next = steps[k + 1] ?? built;
    const step = text(i)
      .replace(/^Step \d+\/\d+ : /, "")
      .replace(/ \S+\/fixtures\/base$/, " BASE");
    const cached = lines.slice(i, next).some(([, l]) => l.includes("Using cache"));
    const running = lines.findIndex(
      ([, l], j) => j > i && j < next && l.startsWith(" ---> Running in"),
    );
    if (running < 0) {
      out.push([`\`${step}\`${cached ? " (from the cache)" : ""}`, t(next) - t(i)]);
      continue;
    }
    const removing = at((l) => l.startsWith("Removing intermediate"), "`Removing…` line", running);
    out.push(
      [
        `\`${step}\`: cache key, then the container runs (set-up, command, exit)`,
        t(running) - t(i),
      ],
      [
        `\`${step}\`: its upper dir → layer tar + gzip (\`Running in\` → \`Removing…\`)`,
        t(removing) - t(running),
      ],
      [
        `\`${step}\`: container removal, layer unpack and image commit, cache saved`,
        t(next) - t(removing),
      ],
    );
  }
  const tagged = at((l) => l.startsWith("Successfully tagged"), "`Successfully tagged`", built);
  out.push(
    [
      "`Successfully built` → `Successfully tagged` (the tag into images.json)",
      t(tagged) - t(built),
    ],
    ["last line → process exit (node's teardown)", exit - t(tagged)],
    ["**wall time of the traced build**", exit],
  );
  return out;
}

/** Per variant and phase, the stage table over TRACE_ROUNDS builds (medians). */
type Traces = Record<Variant, Record<"cold" | "cached", { label: string; stats: Stats }[]>>;

async function traceRuns(base: string): Promise<Traces> {
  const out = {} as Traces;
  for (const v of VARIANTS) {
    const rows: Record<"cold" | "cached", Stage[][]> = { cold: [], cached: [] };
    for (let r = 1; r <= TRACE_ROUNDS; r++) {
      const root = path.join(P.stores, `trace-${v}-${r}-minibox`);
      must(LAUNCHER, ["--root", root, "pull", "-q", base], benchEnv());
      for (const phase of ["cold", "cached"] as const) {
        settle();
        const { lines, exit } = await spawnLines([
          "--root",
          root,
          "build",
          "-t",
          TAG,
          contextDir(v),
        ]);
        rows[phase].push(stagesOf(lines, exit));
      }
      const show = (ph: "cold" | "cached") => ms(rows[ph].at(-1)?.at(-1)?.[1] ?? Number.NaN);
      process.stderr.write(
        `trace ${v} round ${r}/${TRACE_ROUNDS}: cold ${show("cold")} ms, cached ${show("cached")} ms\n`,
      );
    }
    const collect = (list: Stage[][]) =>
      (list[0] ?? []).map(([label], i) => ({
        label,
        stats: stats(list.map((stages) => stages[i]?.[1] ?? Number.NaN)),
      }));
    out[v] = { cold: collect(rows.cold), cached: collect(rows.cached) };
  }
  return out;
}

// ---- report --------------------------------------------------------------------

function machineFacts(): string[] {
  return [
    cpuLine(),
    `- work dir ${path.dirname(WORK)}/mbx-bld-*: ${filesystemOf(WORK)}`,
    `- node ${process.version}; ${firstLine("podman", ["--version"])}; ${firstLine("buildah", ["--version"])}; ${firstLine("runc", ["--version"])}; ${firstLine("hyperfine", ["--version"])}`,
    commitLine("src", "native"),
    loadLine(before.load),
  ];
}

function report(
  results: Record<Variant, VariantResult>,
  traces: Traces | undefined,
  base: string,
): string {
  const out: string[] = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z, ${ROUNDS} rounds)`,
    "",
    ...machineFacts(),
    "",
  ];
  const met = (v: number, limit: number) => (v <= limit ? "met" : "**missed**");
  for (const v of VARIANTS) {
    const r = results[v];
    out.push(
      `### ${v === "hello" ? "The hello Dockerfile" : "The hello Dockerfile with `RUN echo hi > /x`"} (wall time, ms)`,
      "",
      "```dockerfile",
      dockerfile(v, base).trimEnd(),
      "```",
      "",
      `**Cold**: a fresh store holding only the base image (${ROUNDS} rounds):`,
      "",
      ...timesTable(TOOLS, (t) => LABELS[t], r.cold),
      "",
      "**Cached**: the same build again in the same store, every step from the cache:",
      "",
      ...timesTable(TOOLS, (t) => LABELS[t], r.cached),
      "",
      row(["ratio", "of medians", "of mins", "of CPU medians", "target", ""]),
      "| --- | ---: | ---: | ---: | ---: | --- |",
    );
    for (const [phase, limit] of [
      ["cold", 0.8],
      ["cached", 0.5],
    ] as const) {
      const t = r[phase];
      const m = t.minibox;
      for (const peer of ["podman", "buildah"] as const) {
        const p = t[peer];
        const bold = peer === "podman" ? "**" : "";
        out.push(
          row([
            `${bold}${phase}: minibox / ${peer}${bold}`,
            ratio(m.median, p.median),
            ratio(m.min, p.min),
            ratio(m.cpu ?? 0, p.cpu ?? 0),
            peer === "podman" ? `≤ ${limit}` : "—",
            peer === "podman" ? met(m.median / p.median, limit) : "",
          ]),
        );
      }
    }
    out.push("");
  }
  if (traces) {
    out.push(
      `### Where \`minibox build\` spends its time (${TRACE_ROUNDS} traced builds per variant and phase, ms)`,
      "",
      "`node dist/minibox.mjs --root R build -t T CTX` (the launcher's bundle, without its `sh`), spawned from",
      "node with each line of its output stamped as it arrives; a step's line is printed as the step starts.",
      "Cold: a fresh store holding only the base image; cached: the same build again right after.",
      "",
    );
    for (const v of VARIANTS) {
      const t = traces[v];
      out.push(
        row([`${v}: stage`, "cold median", "cold min", "cached median", "cached min"]),
        "| --- | ---: | ---: | ---: | ---: |",
      );
      // The same steps, but a cached RUN has no container lines: its one row
      // goes after the cold build's three rows of that step.
      const key = (label: string) => label.replace(" (from the cache)", "");
      const merged: { label: string; cold?: Stats; cached?: Stats }[] = t.cold.map((s) => ({
        label: s.label,
        cold: s.stats,
      }));
      for (const c of t.cached) {
        const same = merged.find((m) => key(m.label) === key(c.label));
        if (same) {
          same.cached = c.stats;
          continue;
        }
        const last = merged.findLastIndex((m) => m.label.startsWith(`${key(c.label)}:`));
        merged.splice(last + 1, 0, { label: c.label, cached: c.stats });
      }
      const cell = (x?: Stats) => (x ? [ms1(x.median), ms1(x.min)] : ["", ""]);
      for (const m of merged) out.push(row([m.label, ...cell(m.cold), ...cell(m.cached)]));
      out.push("");
    }
  }
  return out.join("\n");
}

// ---- cleanup --------------------------------------------------------------------

const cleanup = cleanupOnce(async () => {
  await stopChild(BENCH.child);
  // c/storage's driver homes are expected; anything else mounted is not.
  for (const mp of ourMounts()) {
    if (!isDriverHome(mp)) anomalies.push(`mount ${mp} was left; unmounted`);
    unmount(mp);
  }
  // The cgroups of podman's and buildah's RUN containers, under our parents
  // (new since the start; empty ones only).
  const ours = cgroupDirs().filter((d) => d.includes(TOKEN) && !before.cgroups.has(d));
  removeCgroups(ours);
  const procs = ourProcesses();
  for (const p of procs) anomalies.push(`process ${p} was left; sent SIGKILL`);
  killProcesses(procs);
  await running?.stop().catch((e) => anomalies.push(`stopping the test env: ${e}`));
  if (!KEEP) await rm(WORK, { recursive: true, force: true });
});

const leftovers = () =>
  leftoversSince(before, {
    mountDirs: [WORK],
    ours: (dir) => dir.includes(TOKEN),
    processes: ourProcesses(),
    workDir: KEEP ? undefined : WORK,
  });

// ---- main ----------------------------------------------------------------------

async function main(): Promise<void> {
  running = await startRegistry(WORK, [BUNDLE, LAUNCHER]);
  const { env } = running;
  const base = `${env.registries.anon}/${env.fixtures.base.repo}`;
  process.stderr.write(`test env ready in ${env.setupMs} ms; base image ${base}\n`);
  prepare(base);
  const results = {} as Record<Variant, VariantResult>;
  for (const v of VARIANTS) results[v] = await variantRounds(v, base);
  const traces = TRACE_ROUNDS > 0 ? await traceRuns(base) : undefined;
  const text = report(results, traces, base);
  process.stdout.write(`${text}\n`);
  if (OUT) writeFileSync(OUT, `${text}\n`);
}

await runBench(main, {
  cleanup,
  anomalies,
  leftovers,
  notes: () =>
    newMiniboxCgroups(before).map(
      (s) => `new minibox cgroup (ours or a concurrent run's; not touched): ${s}`,
    ),
  clean: "Cleanup check: no mounts, cgroups, processes or work dirs of this run are left.",
  out: OUT,
  kept: KEEP ? WORK : undefined,
});
