// Boot a kernel + initramfs under QEMU (software emulation: /dev/kvm exists
// on this project's machines but a stock kernel hangs under it), with no
// network device at all, and collect the serial console. The payload reports
// through marker lines (see parseMarker). QEMU is killed by its PID when the
// deadline passes or the caller aborts.
import { spawn } from "node:child_process";

export const QEMU = "qemu-system-x86_64";

export interface BootOptions {
  /** A bzImage, or an uncompressed vmlinux with a PVH entry point (boots faster under TCG). */
  kernel: string;
  initrd: string;
  /** Guest memory in MiB (the initramfs alone takes ~2 × its size while unpacking). */
  memoryMb?: number;
  /** Extra kernel command-line arguments. */
  append?: string;
  timeoutMs: number;
  /** Aborting kills QEMU (e.g. from afterAll when a hook timed out). */
  signal?: AbortSignal;
}

export interface BootResult {
  /** Everything the guest wrote on its serial console (then QEMU's stderr, if any). */
  console: string;
  ms: number;
  /** QEMU's exit: 0 after the guest's `poweroff -f` (or a panic, with -no-reboot). */
  code: number | null;
  /** True when QEMU was killed at the deadline (or by the abort signal). */
  killed: boolean;
}

export function qemuArgs(opts: BootOptions): string[] {
  return [
    "-accel",
    "tcg",
    "-cpu",
    "max",
    "-smp",
    "1",
    "-m",
    String(opts.memoryMb ?? 1024),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-serial",
    "stdio",
    "-monitor",
    "none",
    // No network device at all: the guest cannot reach anything.
    "-nic",
    "none",
    "-no-reboot",
    "-kernel",
    opts.kernel,
    "-initrd",
    opts.initrd,
    "-append",
    `console=ttyS0 quiet panic=-1 rdinit=/init ${opts.append ?? ""}`.trim(),
  ];
}

/** The JSON after the last `marker` on the console; undefined when the line is missing. */
export function parseMarker<T>(consoleText: string, marker: string): T | undefined {
  const lines = consoleText.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const at = line.indexOf(marker);
    if (at >= 0) return JSON.parse(line.slice(at + marker.length).trim()) as T;
  }
  return undefined;
}

/** Boot and wait until QEMU exits or is killed at the deadline. Throws only when QEMU cannot start. */
export async function bootAndRun(opts: BootOptions): Promise<BootResult> {
  const t0 = Date.now();
  const qemu = spawn(QEMU, qemuArgs(opts), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  qemu.stdout.on("data", (d: Buffer) => {
    out += d.toString("utf8");
  });
  qemu.stderr.on("data", (d: Buffer) => {
    err += d.toString("utf8");
  });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    qemu.on("error", (error) => resolve({ code: null, error }));
    qemu.on("close", (code) => resolve({ code }));
  });
  let killed = false;
  const kill = () => {
    // Ours, by PID, and only while it runs.
    if (qemu.pid === undefined || qemu.exitCode !== null || qemu.signalCode !== null) return;
    killed = true;
    try {
      process.kill(qemu.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(kill, opts.timeoutMs);
  opts.signal?.addEventListener("abort", kill, { once: true });
  if (opts.signal?.aborted) kill();
  let outcome: Awaited<typeof exited>;
  try {
    outcome = await exited;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", kill);
    kill();
  }
  if (outcome.error) throw new Error(`cannot start ${QEMU}: ${outcome.error.message}`);
  return {
    console: out + (err ? `\n[qemu stderr]\n${err}` : ""),
    ms: Date.now() - t0,
    code: outcome.code,
    killed,
  };
}
