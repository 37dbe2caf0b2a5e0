// One boot of a pure cgroup v2 machine: Debian's kernel under QEMU (TCG),
// an initramfs with node, busybox, v2-check (minibox's cgroup driver on the
// real cgroup2 filesystem) and cli-check (the built CLI end to end), and the
// two results parsed from the console. The build directory is removed before
// this returns; QEMU is gone too (see bootAndRun).
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildTar, busyboxRootfsEntries } from "../support/fixtures.js";
import { buildInitramfs } from "./build-initramfs.js";
import {
  CLI_CHECK_MARKER,
  type CliCheckResult,
  ROOTFS_TAR,
  STATE_DIR,
} from "./cli-check-result.js";
import { cliFiles } from "./cli-files.js";
import { ensureKernel, type Kernel, REPO_ROOT } from "./kernel.js";
import { bootAndRun, parseMarker } from "./qemu.js";
import { V2_CHECK_MARKER, type V2CheckResult } from "./v2-check-result.js";

export interface V2Vm {
  kernel: Kernel;
  /** The serial console, for failure messages. */
  console: string;
  /** ms: kernel (cache or download), initramfs build, boot + checks. */
  timings: { kernel: number; initramfs: number; vm: number };
  initramfsBytes: number;
  /** QEMU's exit status and whether it had to be killed. */
  qemu: { code: number | null; killed: boolean };
  v2?: V2CheckResult;
  cli?: CliCheckResult;
  /** A result line that was there but not JSON. */
  parseErrors: string[];
}

const here = path.dirname(fileURLToPath(import.meta.url));

export async function runV2Vm(
  opts: { timeoutMs?: number; signal?: AbortSignal; log?: (line: string) => void } = {},
): Promise<V2Vm> {
  let t = Date.now();
  const kernel = ensureKernel(opts.log);
  const timings = { kernel: Date.now() - t, initramfs: 0, vm: 0 };
  // minibox- prefix: the suite's leak check names it if it is ever left behind.
  const work = mkdtempSync(path.join(tmpdir(), "minibox-vm-"));
  try {
    t = Date.now();
    const initrd = await buildInitramfs({
      workDir: work,
      modules: kernel.overlayModule ? [kernel.overlayModule] : [],
      bundles: {
        [path.join(here, "v2-check.ts")]: "/check/v2-check.mjs",
        [path.join(here, "cli-check.ts")]: "/check/cli-check.mjs",
      },
      files: cliFiles(REPO_ROOT),
      contents: { [ROOTFS_TAR]: { data: await buildTar(await busyboxRootfsEntries()) } },
      payload: [
        "node /check/v2-check.mjs",
        `mkdir -p ${STATE_DIR} && mount -t tmpfs tmpfs ${STATE_DIR}`,
        "node /check/cli-check.mjs",
      ].join("\n"),
    });
    const initramfsBytes = statSync(initrd).size;
    timings.initramfs = Date.now() - t;
    const boot = await bootAndRun({
      kernel: kernel.vmlinux ?? kernel.vmlinuz,
      initrd,
      memoryMb: 1024,
      timeoutMs: opts.timeoutMs ?? 100_000,
      signal: opts.signal,
    });
    timings.vm = boot.ms;
    const parseErrors: string[] = [];
    const parse = <T>(marker: string): T | undefined => {
      try {
        return parseMarker<T>(boot.console, marker);
      } catch (err) {
        parseErrors.push(`${marker.trim()}: ${err}`);
        return undefined;
      }
    };
    return {
      kernel,
      console: boot.console,
      timings,
      initramfsBytes,
      qemu: { code: boot.code, killed: boot.killed },
      v2: parse<V2CheckResult>(V2_CHECK_MARKER),
      cli: parse<CliCheckResult>(CLI_CHECK_MARKER),
      parseErrors,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
