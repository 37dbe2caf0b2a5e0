// Scale: does a command about one container, or a listing, stay as fast with
// 100 containers running as with 1? And `ps -a` over 500 stopped containers
// against `podman ps -a` over 500. Side by side in one run: each round runs
// every command once (hyperfine -N), the order rotated. See bench/README.md.
//
//   npm run build && npx vite-node bench/scale.ts [-- --rounds N]
//
// Options (after "--"):
//   --rounds N      timed rounds, after one warm-up (default 10)
//   --running N     running containers in the big store (default 100)
//   --stopped N     stopped containers for the ps -a comparison (default 500)
//   --jobs N        containers made at once while setting up (default 4)
//   --no-podman     leave podman out (no ps -a comparison)
//   --baseline F    also time another build's bundle (F = …/dist/minibox.mjs,
//                   its native/build next to it) on the same stores: an A/B
//   --out FILE      also write the Markdown results to FILE
//   --json FILE     also write the medians (wall ms, per tool key) to FILE,
//                   for bench/all.ts's summary table
//   --keep          keep the work dir (default: removed at the end)
//
// The image is busybox-static (/bin/busybox) imported from a tarball into
// each store (`import`, `podman import`): no registry is needed. Stores:
// `one` (1 container running `sleep 600`), `many` (--running of them),
// `stopped` (--stopped containers that ran `true`), each a --root of its own
// in one work dir (mkdtemp under /tmp, 0711); podman's store is isolated as
// every bench's is (bench/common.ts: its own --root/--runroot, cgroupfs,
// events none) and its containers are made with `podman create`. Every
// container is named after this run's token (`mbx-scale-PID`); all are
// removed at the end (rm -f, podman system reset) and the cleanup check
// looks for mounts, cgroups and processes left.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  BUNDLE,
  benchState,
  cleanUpBench,
  cleanupOnce,
  commitLine,
  cpuLine,
  flag,
  hyperfineRound,
  hyperfineRounds,
  intOption,
  KEEP,
  LAUNCHER,
  leftoversSince,
  loadLine,
  mountsUnder,
  ms,
  must,
  OUT,
  option,
  podmanRunLimits,
  podmanStore,
  processesNaming,
  ratio,
  row,
  runBench,
  type Stats,
} from "./common.js";

const ROUNDS = intOption("--rounds", 10, 1);
const RUNNING = intOption("--running", 100, 2);
const STOPPED = intOption("--stopped", 500, 1);
const JOBS = intOption("--jobs", 4, 1);
const PODMAN_ON = !flag("--no-podman");
const BASELINE = option("--baseline");
const JSON_OUT = option("--json");

const BENCH = benchState("mbx-scale");
const { token: TOKEN, work: WORK, anomalies, before } = BENCH;
const P = {
  rootfs: path.join(WORK, "rootfs"),
  tarball: path.join(WORK, "busybox.tar"),
  one: path.join(WORK, "one"),
  many: path.join(WORK, "many"),
  stopped: path.join(WORK, "stopped"),
  podman: path.join(WORK, "podman"),
  /** Short on purpose (podman's overlay driver: runroot ≤ 50 characters). */
  podmanRunroot: path.join(WORK, "prun"),
  containersConfig: path.join(WORK, "containers-config"),
  hyperfine: path.join(WORK, "hyperfine.json"),
};
const IMAGE = "scale-busybox:1";
const PODMAN_IMAGE = `localhost/${IMAGE}`;
const PODMAN_CGROUP_PARENT = `/${TOKEN}-podman`;
const PODMAN = podmanStore(P.podman, P.podmanRunroot, P.containersConfig);
let podmanReady = false;
/** Every minibox container ID made, to recognise their cgroups at the end. */
const ourIds = new Set<string>();

// ---- setup ---------------------------------------------------------------------

/** busybox-static and a few links, as a tarball both tools import. */
function makeTarball(): void {
  if (!existsSync("/bin/busybox"))
    throw new Error("/bin/busybox is missing (apt-get install busybox-static)");
  mkdirSync(path.join(P.rootfs, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", path.join(P.rootfs, "bin", "busybox"));
  for (const app of ["sh", "sleep", "true"])
    symlinkSync("busybox", path.join(P.rootfs, "bin", app));
  must("tar", ["-C", P.rootfs, "-cf", P.tarball, "."]);
}

/** minibox's argv on store `root`: the launcher (bench/run.ts times it the same way). */
const mbx = (root: string, ...args: string[]) => [LAUNCHER, "--root", root, ...args];
/** Runs minibox on `root` (untimed); its stdout. */
const mbxMust = (root: string, ...args: string[]) => must(LAUNCHER, ["--root", root, ...args]);

/** Runs `count` commands, `JOBS` at a time; resolves with each one's stdout. */
async function pool(count: number, argvOf: (i: number) => string[], env = process.env) {
  const out: string[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const [file, ...args] = argvOf(i) as [string, ...string[]];
      out[i] = await new Promise<string>((resolve, reject) => {
        const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => {
          stdout += d;
        });
        child.stderr.on("data", (d) => {
          stderr += d;
        });
        child.on("error", reject);
        child.on("close", (code) =>
          code === 0
            ? resolve(stdout.trim())
            : reject(new Error(`${file} ${args.join(" ")} failed (${code}): ${stderr.trim()}`)),
        );
      });
    }
  };
  await Promise.all(Array.from({ length: JOBS }, worker));
  return out;
}

/** Runs `fn`, then says on stderr how long `what` took. */
async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  process.stderr.write(`set up ${what} in ${ms((performance.now() - t0) / 1000)} s\n`);
  return result;
}

/**
 * The stores. minibox's and podman's containers are made at the same time
 * (independent stores): the setup is most of this bench's run time. The
 * running ones sleep an hour, not 600 s: on a busy machine the setup and
 * rounds can outlast ten minutes, and a container that ends mid-round
 * changes what is measured.
 */
async function setUp(): Promise<void> {
  makeTarball();
  for (const root of [P.one, P.many, P.stopped]) mbxMust(root, "import", P.tarball, IMAGE);
  if (PODMAN_ON) {
    PODMAN.writeConfig();
    podmanReady = true;
    must("podman", PODMAN.args("import", "-q", P.tarball, PODMAN_IMAGE), PODMAN.env());
  }
  process.stderr.write(
    `setting up: 1 + ${RUNNING} running, ${STOPPED} stopped containers${PODMAN_ON ? `, ${STOPPED} podman containers (podman create)` : ""}…\n`,
  );
  await Promise.all([
    timed("minibox's containers", miniboxContainers),
    PODMAN_ON && timed("podman's containers", podmanContainers),
  ]);
}

async function miniboxContainers(): Promise<void> {
  const detached = (root: string) => (i: number) =>
    mbx(root, "run", "-d", "--network", "none", "--name", `${TOKEN}-${i}`, IMAGE, "sleep", "3600");
  for (const id of await pool(1, detached(P.one))) ourIds.add(id);
  for (const id of await pool(RUNNING, detached(P.many))) ourIds.add(id);
  await pool(STOPPED, (i) =>
    mbx(P.stopped, "run", "--network", "none", "--name", `${TOKEN}-${i}`, IMAGE, "true"),
  );
  for (const id of mbxMust(P.stopped, "ps", "-aq", "--no-trunc").split("\n"))
    if (id) ourIds.add(id);
}

async function podmanContainers(): Promise<void> {
  await pool(
    STOPPED,
    (i) => [
      "podman",
      ...PODMAN.args(
        "create",
        "--network",
        "none",
        ...podmanRunLimits(PODMAN_CGROUP_PARENT),
        "--name",
        `${TOKEN}-${i}`,
        PODMAN_IMAGE,
        "true",
      ),
    ],
    PODMAN.env(),
  );
}

// ---- what is timed -------------------------------------------------------------

/** Each command, run on the store with 1 running container and on the one with many. */
const COMMANDS = {
  ps: ["ps"],
  "ps -a": ["ps", "-a"],
  "inspect C": ["inspect", `${TOKEN}-0`],
  "stats --no-stream": ["stats", "--no-stream"],
  "run --rm IMAGE true": ["run", "--rm", "--network", "none", IMAGE, "true"],
} as const;
type Command = keyof typeof COMMANDS;
const COMMAND_NAMES = Object.keys(COMMANDS) as Command[];

/** A build: this checkout's launcher, or --baseline's bundle. */
interface Build {
  name: string;
  argv: (root: string, args: readonly string[]) => string[];
}
const BUILDS: Build[] = [
  { name: "minibox", argv: (root, args) => [LAUNCHER, "--root", root, ...args] },
  ...(BASELINE
    ? [
        {
          name: "baseline",
          argv: (root: string, args: readonly string[]) => [
            "node",
            BASELINE,
            "--root",
            root,
            ...args,
          ],
        },
      ]
    : []),
];

/** Tool keys: `BUILD|STORE|COMMAND`, and `podman|stopped|ps -a`. */
function tools(): string[] {
  const out: string[] = [];
  for (const b of BUILDS) {
    for (const c of COMMAND_NAMES) out.push(`${b.name}|one|${c}`, `${b.name}|many|${c}`);
    out.push(`${b.name}|stopped|ps -a`);
  }
  if (PODMAN_ON) out.push("podman|stopped|ps -a");
  return out;
}

function argvOf(tool: string): string[] {
  const [build, store, command] = tool.split("|") as [string, "one" | "many" | "stopped", Command];
  if (build === "podman") return ["podman", ...PODMAN.args("ps", "-a")];
  const b = BUILDS.find((x) => x.name === build) as Build;
  return b.argv(P[store], COMMANDS[command]);
}

/** After each round: every store still has what it had (a run --rm left nothing, nothing died). */
function check(round: string): void {
  const count = (root: string, all: boolean) =>
    mbxMust(root, "ps", "-q", ...(all ? ["-a"] : []))
      .split("\n")
      .filter(Boolean).length;
  const want: Array<[string, boolean, number]> = [
    [P.one, true, 1],
    [P.many, true, RUNNING],
    [P.many, false, RUNNING],
    [P.stopped, true, STOPPED],
  ];
  for (const [root, all, n] of want) {
    const got = count(root, all);
    if (got !== n)
      anomalies.push(`round ${round}: ${path.basename(root)} has ${got} containers, not ${n}`);
  }
}

// ---- report --------------------------------------------------------------------

/** "median (min) / CPU": CPU time (user + sys) moves less than wall time on a busy machine. */
const cell = (s: Stats) => `${ms(s.median)} (${ms(s.min)}) / ${ms(s.cpu ?? Number.NaN)}`;

function report(times: Record<string, Stats>): string[] {
  const lines = [
    `## Results (${new Date().toISOString().slice(0, 16)}Z, ${ROUNDS} rounds)`,
    "",
    cpuLine(),
    commitLine("src", "native"),
    loadLine(before.load),
    "",
    `### 1 running container against ${RUNNING} (ms: wall median (min) / CPU median)`,
    "",
  ];
  for (const b of BUILDS) {
    if (BUILDS.length > 1)
      lines.push(`**${b.name}**${b.name === "baseline" ? ` (${BASELINE})` : ""}`, "");
    lines.push(
      row(["command", "1 running", `${RUNNING} running`, "ratio (medians)", "target"]),
      "| --- | ---: | ---: | ---: | ---: |",
    );
    for (const c of COMMAND_NAMES) {
      const one = times[`${b.name}|one|${c}`] as Stats;
      const many = times[`${b.name}|many|${c}`] as Stats;
      lines.push(
        row([`\`${c}\``, cell(one), cell(many), `${ratio(many.median, one.median)}×`, "≤ 1.3×"]),
      );
    }
    lines.push("");
  }
  lines.push(
    `### \`ps -a\` with ${STOPPED} stopped containers (ms: wall median (min) / CPU median)`,
    "",
  );
  lines.push(
    row(["tool", "median (min)", "ratio to podman (medians)", "target"]),
    "| --- | ---: | ---: | ---: |",
  );
  const podman = times["podman|stopped|ps -a"];
  for (const b of BUILDS) {
    const s = times[`${b.name}|stopped|ps -a`] as Stats;
    lines.push(row([b.name, cell(s), podman ? `${ratio(s.median, podman.median)}×` : "", "≤ 1×"]));
  }
  if (podman)
    lines.push(
      row([
        `${spawnSync("podman", ["--version"], { encoding: "utf8" }).stdout.trim()}`,
        cell(podman),
        "1×",
        "",
      ]),
    );
  lines.push("");
  return lines;
}

// ---- main, cleanup -------------------------------------------------------------

async function main(): Promise<void> {
  for (const file of [BUNDLE, ...(BASELINE ? [BASELINE] : [])])
    if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  await timed("everything", setUp);
  const all = tools();
  const times = await hyperfineRounds(
    all,
    ROUNDS,
    (order, round) =>
      hyperfineRound(order, argvOf, {
        json: P.hyperfine,
        env: PODMAN.env(),
        round,
        track: BENCH.track,
      }),
    { check, label: "", show: ["minibox|one|ps", "minibox|many|ps", "minibox|stopped|ps -a"] },
  );
  const text = report(times).join("\n");
  process.stdout.write(`${text}\n`);
  if (OUT) writeFileSync(OUT, `${text}\n`);
  if (JSON_OUT) {
    const medians = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.median]));
    writeFileSync(JSON_OUT, JSON.stringify({ running: RUNNING, stopped: STOPPED, medians }));
  }
}

async function removeAll(): Promise<void> {
  for (const root of [P.one, P.many, P.stopped]) {
    if (!existsSync(root)) continue;
    const ids = spawnSync(LAUNCHER, ["--root", root, "ps", "-aq", "--no-trunc"], {
      encoding: "utf8",
    })
      .stdout.split("\n")
      .filter(Boolean);
    for (const id of ids) ourIds.add(id);
    // In batches: one rm -f per 50 containers.
    for (let i = 0; i < ids.length; i += 50) {
      const r = spawnSync(LAUNCHER, ["--root", root, "rm", "-f", ...ids.slice(i, i + 50)], {
        encoding: "utf8",
      });
      if (r.status !== 0) anomalies.push(`rm -f in ${root} failed: ${r.stderr.trim()}`);
    }
  }
}

const ourMounts = () => mountsUnder(WORK);
const ourProcesses = () => processesNaming(WORK, TOKEN);
const ourCgroup = (dir: string) => dir.includes(TOKEN) || ourIds.has(path.basename(dir));

const cleanup = cleanupOnce(async () => {
  await removeAll();
  await cleanUpBench(BENCH, {
    running: undefined,
    podman: podmanReady ? PODMAN : undefined,
    podmanCgroupParent: PODMAN_CGROUP_PARENT,
    mounts: ourMounts,
    processes: ourProcesses,
    ourCgroup,
  });
});

await runBench(main, {
  cleanup,
  anomalies,
  leftovers: () =>
    leftoversSince(before, {
      mountDirs: [WORK],
      ours: ourCgroup,
      processes: ourProcesses(),
      workDir: KEEP ? undefined : WORK,
    }),
  clean: "Cleanup check: nothing left (containers, mounts, cgroups, processes, work dir).",
  out: OUT,
  kept: KEEP ? WORK : undefined,
});
