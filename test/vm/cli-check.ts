// Runs inside the QEMU VM after v2-check (see test/vm/qemu.ts): the real
// minibox CLI (dist/minibox.mjs, its koffi and native/build/minibox-exec,
// copied into the initramfs under CLI_DIR) on a pure cgroup v2 kernel.
// Prints what each command did as one JSON line after CLI_CHECK_MARKER;
// test/integration/cgroups-v2-vm.test.ts judges it.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  CLI_CHECK_MARKER,
  CLI_DIR,
  type CliCheckResult,
  type CliRun,
  ROOTFS_TAR,
  STATE_DIR,
  VM_IMAGE,
} from "./cli-check-result.js";

const MINIBOX = path.join(CLI_DIR, "dist", "minibox.mjs");
const CGROUPS = "/sys/fs/cgroup/minibox";

function read(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * `minibox --root STATE_DIR ARGS`. With `whileRunning`, stdin is a pipe: the
 * callback runs once the container's cgroup has a process, and stdin is
 * closed after it (the container's command should wait on stdin).
 */
function minibox(
  args: string[],
  whileRunning?: () => Record<string, string | undefined>,
  timeoutMs = 40_000,
): Promise<CliRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MINIBOX, "--root", STATE_DIR, ...args], {
      stdio: [whileRunning ? "pipe" : "ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let observed: Record<string, string | undefined> | undefined;
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    let done = false;
    // Ours, by PID; the VM powers off afterwards in any case.
    const timer = setTimeout(() => {
      stderr += `\n[cli-check: killed after ${timeoutMs} ms]`;
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, timeoutMs);
    if (whileRunning) {
      const poll = () => {
        if (done) return;
        const leaf = running();
        if (leaf === undefined) {
          setTimeout(poll, 20);
          return;
        }
        observed = { leaf, ...whileRunning() };
        child.stdin?.end("go\n");
      };
      poll();
    }
    child.on("error", (err) => {
      stderr += `\n[cli-check: ${err.message}]`;
    });
    child.on("close", (code, signal) => {
      done = true;
      clearTimeout(timer);
      resolve({ args, code, signal, stdout, stderr, ms: Date.now() - t0, observed });
    });
  });
}

/** The container cgroup that has a process in it, if any. */
function running(): string | undefined {
  let names: string[] = [];
  try {
    names = readdirSync(CGROUPS);
  } catch {
    return undefined;
  }
  for (const n of names) {
    const dir = path.join(CGROUPS, n);
    if ((read(path.join(dir, "cgroup.procs")) ?? "") !== "") return dir;
  }
  return undefined;
}

// The VM checks cgroup v2; it carries minibox-exec but not the network
// helper nor libnftables, so its containers stay off the default bridge.
const RUN = ["run", "--rm", "--network", "none"];

async function main(): Promise<CliCheckResult> {
  const runs: Record<string, CliRun> = {};
  runs.import = await minibox(["import", ROOTFS_TAR, VM_IMAGE]);
  runs.cgroup = await minibox([...RUN, VM_IMAGE, "cat", "/proc/self/cgroup"]);
  runs.oom = await minibox([
    ...[...RUN, "-m", "20m", VM_IMAGE],
    ...["sh", "-c", "x=a; while :; do x=$x$x; done"],
  ]);
  // The limits as the kernel holds them, read from outside while the container waits on stdin.
  runs.limits = await minibox(
    [
      ...[...RUN, "-i", "-m", "64m", "--cpus", "0.5", "-c", "512", "--pids-limit", "10"],
      ...[VM_IMAGE, "sh", "-c", "read x; echo got $x; cat /proc/self/cgroup"],
    ],
    () => {
      const leaf = running() ?? "";
      const out: Record<string, string | undefined> = {};
      for (const f of ["memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max"]) {
        out[f] = read(path.join(leaf, f));
      }
      out.subtree_control = read(path.join(CGROUPS, "cgroup.subtree_control"));
      return out;
    },
  );
  const mounts = (read("/proc/self/mounts") ?? "").split("\n");
  return {
    runs,
    miniboxCgroupAfter: existsSync(CGROUPS),
    mountsAfter: mounts.filter(
      (l) => l.includes(STATE_DIR) && !l.startsWith(`tmpfs ${STATE_DIR} `),
    ),
  };
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
