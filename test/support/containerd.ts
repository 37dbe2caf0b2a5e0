// A private containerd 1.6 (Debian's) for tests that drive an OCI runtime the
// way containerd does: its own config.toml, root, state, sockets and runc
// root under one temp dir, so nothing of the host's containerd (if any) is
// read or changed. Tasks go to the cgroup `/minibox-ctr-<pid>/<id>` (ctr's
// --cgroup), removed again by stop() with everything else.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildTar, busyboxRootfsEntries, sortEntries } from "./fixtures.js";
import type { Result } from "./minibox.js";
import { sha256, sleep } from "./util.js";

export const CONTAINERD = "/usr/bin/containerd";
export const CTR = "/usr/bin/ctr";
const CGROUP_ROOT = "/sys/fs/cgroup";

/** Plugins a ctr-driven runc.v2 test does not need (CRI, other snapshotters, tracing). */
const DISABLED_PLUGINS = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.native",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
];

/** The containerd config.toml: everything under DIR, only what ctr + runc.v2 need. */
export function containerdConfig(dir: string): string {
  const list = DISABLED_PLUGINS.map((p) => JSON.stringify(p)).join(", ");
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = [${list}]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"
`;
}

export interface Containerd {
  dir: string;
  socket: string;
  /** The containerd namespace of this test file (minibox-test-<pid>). */
  namespace: string;
  /** The runc --root the shim passes (kept under dir, not /run/containerd/runc). */
  runcRoot: string;
  /** ctr's --cgroup for task ID: under this file's own parent cgroup. */
  cgroup(id: string): string;
  /** `ctr -a SOCKET -n NAMESPACE ARGS`. */
  ctr(args: string[]): Promise<Result>;
  /** SIGTERM to containerd, wait, unmount and remove what is left under dir, remove the cgroups. */
  stop(): Promise<void>;
  /** After stop(): what is still there (the dir, a mount under it, a cgroup, a process naming it). */
  leftovers(): string[];
}

/** Spawn a program, collect its output, resolve when it exits. */
export function exec(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The cgroup hierarchies mounted at /sys/fs/cgroup/* (v1 controllers, v2's "unified"). */
function hierarchies(): string[] {
  return readdirSync(CGROUP_ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => path.join(CGROUP_ROOT, d.name));
}

/** rmdir a cgroup tree, children first (cgroupfs refuses rmdir of a non-empty parent). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory()) removeCgroupTree(path.join(dir, d.name));
  }
  rmdirSync(dir);
}

/** Mount points under dir, deepest first (the overlay rootfs of a task killed mid-run, shm). */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Live processes whose command line contains TEXT (containerd, its shims), as "PID CMDLINE". */
function processesNaming(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(text)) found.push(`${pid} ${cmdline}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

async function waitForSocket(socket: string, child: ChildProcess, log: () => string) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`containerd exited:\n${log()}`);
    if (existsSync(socket)) return;
    await sleep(50);
  }
  throw new Error(`containerd did not listen on ${socket}:\n${log()}`);
}

/** Kill and delete every task and container of the namespace. */
async function removeTasks(ctr: (args: string[]) => Promise<Result>): Promise<void> {
  const tasks = (await ctr(["task", "ls", "-q"])).stdout.split("\n").filter(Boolean);
  for (const t of tasks) {
    await ctr(["task", "kill", "-s", "SIGKILL", t]);
    await ctr(["task", "delete", "--force", t]);
  }
  const containers = (await ctr(["container", "ls", "-q"])).stdout.split("\n").filter(Boolean);
  for (const c of containers) await ctr(["container", "delete", c]);
}

/**
 * A stand-in for the runtime binary that appends its argv and where its
 * stdin/stdout/stderr point to LOG, then execs RUNTIME: it shows which runc
 * calls the shim makes, and that the binary the test names is the one called.
 */
export async function writeArgvLogger(file: string, runtime: string, log: string): Promise<void> {
  await writeFile(
    file,
    `#!/bin/sh
fds="0=$(readlink /proc/$$/fd/0) 1=$(readlink /proc/$$/fd/1) 2=$(readlink /proc/$$/fd/2)"
{ printf 'argv:'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n  fds: %s\\n' "$fds"; } >> '${log}'
exec '${runtime}' "$@"
`,
    { mode: 0o755 },
  );
}

/** Start a containerd of its own; the caller stops it in afterAll. */
export async function startContainerd(): Promise<Containerd> {
  const dir = mkdtempSync(path.join(tmpdir(), "minibox-ctrd-"));
  const socket = path.join(dir, "containerd.sock");
  const namespace = `minibox-test-${process.pid}`;
  const parent = `minibox-ctr-${process.pid}`;
  // Only cgroups that did not exist before are ours to remove.
  const ours = hierarchies()
    .map((h) => path.join(h, parent))
    .filter((c) => !existsSync(c));
  const config = path.join(dir, "config.toml");
  await writeFile(config, containerdConfig(dir));
  const child = spawn(CONTAINERD, ["--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (d) => {
    log += d;
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await waitForSocket(socket, child, () => log);
  return {
    dir,
    socket,
    namespace,
    runcRoot: path.join(dir, "runc"),
    cgroup: (id) => `/${parent}/${id}`,
    ctr: (args) => exec(CTR, ["-a", socket, "-n", namespace, ...args]),
    async stop() {
      // A test that failed half-way leaves a task: its shim would outlive containerd.
      await removeTasks((args) => exec(CTR, ["-a", socket, "-n", namespace, ...args]));
      if (child.exitCode === null && child.pid !== undefined) {
        process.kill(child.pid, "SIGTERM");
        await exited;
      }
      for (const m of mountsUnder(dir)) await exec("umount", ["-l", m]);
      rmSync(dir, { recursive: true, force: true });
      for (const c of ours) removeCgroupTree(c);
    },
    leftovers: () => [
      ...(existsSync(dir) ? [dir] : []),
      ...mountsUnder(dir).map((m) => `mount ${m}`),
      ...ours.filter((c) => existsSync(c)),
      ...processesNaming(dir).map((p) => `process ${p}`),
    ],
  };
}

/**
 * A docker archive (what `docker save` writes, `ctr image import` reads) of
 * the busybox-static rootfs, tagged NAME: built here, never downloaded.
 */
export async function writeBusyboxArchive(file: string, name: string): Promise<void> {
  const layer = await buildTar(sortEntries(await busyboxRootfsEntries()));
  const diffId = `sha256:${sha256(layer)}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture:
        process.arch === "x64" ? "amd64" : process.arch === "arm64" ? "arm64" : process.arch,
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      config: { Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["sh"] },
      rootfs: { type: "layers", diff_ids: [diffId] },
    }),
  );
  const configName = `${sha256(config)}.json`;
  const manifest = [{ Config: configName, RepoTags: [name], Layers: ["layer/layer.tar"] }];
  const archive = await buildTar([
    { name: "manifest.json", type: "file", content: JSON.stringify(manifest) },
    { name: configName, type: "file", content: config },
    { name: "layer/", type: "directory" },
    { name: "layer/layer.tar", type: "file", content: layer },
  ]);
  await writeFile(file, archive);
}
