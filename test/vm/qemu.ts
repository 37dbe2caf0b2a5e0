// Boot a kernel + initramfs under QEMU (software emulation: /dev/kvm exists
// on this project's machines but a stock kernel hangs under it), with no
// network device at all, collect the serial console, and return the JSON
// the payload printed after its marker. QEMU is killed by its PID when the
// deadline passes or the caller gives up.
import { spawn } from "node:child_process";

export const QEMU = "qemu-system-x86_64";

export interface BootOptions {
  vmlinuz: string;
  initrd: string;
  /** Guest memory in MiB (the initramfs alone takes ~2 × its size while unpacking). */
  memoryMb?: number;
  /** Extra kernel command-line arguments. */
  append?: string;
  timeoutMs: number;
  /** The console line prefix that carries the JSON result. */
  marker: string;
}

export interface BootResult<T> {
  result: T;
  /** Everything the guest wrote on its serial console. */
  console: string;
  ms: number;
}

export class VmError extends Error {
  constructor(
    message: string,
    readonly console: string,
  ) {
    super(`${message}\n--- VM console (last 6000 chars) ---\n${console.slice(-6000)}`);
    this.name = "VmError";
  }
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
    "-nic",
    "none",
    "-no-reboot",
    "-kernel",
    opts.vmlinuz,
    "-initrd",
    opts.initrd,
    "-append",
    `console=ttyS0 quiet panic=-1 rdinit=/init ${opts.append ?? ""}`.trim(),
  ];
}

/** The JSON after the last `marker` on the console, or undefined. */
export function parseMarker<T>(consoleText: string, marker: string): T | undefined {
  const lines = consoleText.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const at = line.indexOf(marker);
    if (at >= 0) return JSON.parse(line.slice(at + marker.length).trim()) as T;
  }
  return undefined;
}

/**
 * Boot, wait for QEMU to exit (the guest's `poweroff -f`, or a panic with
 * -no-reboot), then parse the marker line. Throws VmError, with the console,
 * on timeout, on a QEMU failure, or when the marker is missing.
 */
export async function bootAndRun<T>(opts: BootOptions): Promise<BootResult<T>> {
  const t0 = Date.now();
  const qemu = spawn(QEMU, qemuArgs(opts), { stdio: ["ignore", "pipe", "pipe"] });
  const pid = qemu.pid;
  let out = "";
  let err = "";
  qemu.stdout.on("data", (d: Buffer) => {
    out += d.toString("utf8");
  });
  qemu.stderr.on("data", (d: Buffer) => {
    err += d.toString("utf8");
  });
  const exited = new Promise<{ code: number | null; signal: string | null; error?: Error }>(
    (resolve) => {
      qemu.on("error", (error) => resolve({ code: null, signal: null, error }));
      qemu.on("close", (code, signal) => resolve({ code, signal }));
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), opts.timeoutMs);
  });
  let outcome: Awaited<typeof exited> | "timeout";
  try {
    outcome = await Promise.race([exited, timedOut]);
  } finally {
    clearTimeout(timer);
    // Ours, by PID: still running only on timeout or when the caller is unwinding.
    if (pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
      await exited;
    }
  }
  const ms = Date.now() - t0;
  const consoleText = out + (err ? `\n[qemu stderr]\n${err}` : "");
  if (outcome === "timeout") {
    throw new VmError(
      `the VM did not power off within ${opts.timeoutMs} ms (QEMU killed)`,
      consoleText,
    );
  }
  if (outcome.error)
    throw new VmError(`cannot start ${QEMU}: ${outcome.error.message}`, consoleText);
  if (outcome.code !== 0) {
    throw new VmError(`${QEMU} exited with ${outcome.code ?? outcome.signal}`, consoleText);
  }
  let result: T | undefined;
  try {
    result = parseMarker<T>(out, opts.marker);
  } catch (e) {
    throw new VmError(`the result line is not JSON: ${e}`, consoleText);
  }
  if (result === undefined) throw new VmError("the VM printed no result line", consoleText);
  return { result, console: consoleText, ms };
}
