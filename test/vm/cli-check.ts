// Runs inside the QEMU VM after v2-check (see test/vm/qemu.ts): the real
// minibox CLI (dist/minibox.mjs, its koffi and native/build/minibox-exec,
// copied into the initramfs under CLI_DIR) on a pure cgroup v2 kernel.
// Prints what each command did as one JSON line after CLI_CHECK_MARKER;
// test/integration/cgroups-v2-vm.test.ts judges it.
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  CLI_CHECK_MARKER,
  CLI_DIR,
  type CliCheckResult,
  type CliRun,
  ROOTFS_TAR,
  VM_IMAGE,
} from "./cli-check-result.js";

const MINIBOX = path.join(CLI_DIR, "dist", "minibox.mjs");
const STATE = "/var/lib/minibox";

function minibox(args: string[], timeoutMs = 60_000): Promise<CliRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MINIBOX, "--root", STATE, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    // Ours, by PID; the VM powers off afterwards in any case.
    const timer = setTimeout(() => {
      stderr += `\n[cli-check: killed after ${timeoutMs} ms]`;
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      stderr += `\n[cli-check: ${err.message}]`;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ args, code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

async function main(): Promise<CliCheckResult> {
  const runs: Record<string, CliRun> = {};
  runs.import = await minibox(["import", ROOTFS_TAR, VM_IMAGE]);
  runs.cgroup = await minibox(["run", "--rm", VM_IMAGE, "cat", "/proc/self/cgroup"]);
  runs.oom = await minibox([
    "run",
    "--rm",
    "-m",
    "20m",
    VM_IMAGE,
    "sh",
    "-c",
    "x=a; while :; do x=$x$x; done",
  ]);
  runs.limits = await minibox([
    "run",
    "--rm",
    "-m",
    "64m",
    "--cpus",
    "0.5",
    "--pids-limit",
    "10",
    VM_IMAGE,
    "sh",
    "-c",
    "cd /sys/fs/cgroup && cat memory.max cpu.max pids.max",
  ]);
  runs.ps = await minibox(["ps", "-a", "-q"]);
  return { runs, miniboxCgroupAfter: existsSync("/sys/fs/cgroup/minibox") };
}

main()
  .then(
    (result) => result,
    (err: unknown): CliCheckResult => ({
      runs: {},
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    }),
  )
  .then((result) => {
    writeFileSync(1, `\n${CLI_CHECK_MARKER}${JSON.stringify(result)}\n`);
    process.exit(0);
  });
