// wrk (Debian's, the HTTP load generator of bench/network.ts): running it
// and reading its report. Pure parsing, unit-tested (test/unit/bench-wrk.test.ts).
import { type ChildProcess, spawn } from "node:child_process";

export interface WrkResult {
  /** Requests per second. */
  rps: number;
  /** Latency percentiles, ms. */
  p50: number;
  p99: number;
  /** MB/s (wrk's MB: 2^20 bytes). */
  transfer: number;
  requests: number;
  /** Socket errors and non-2xx responses, as wrk reports them (empty: none). */
  errors: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60000 };
const UNIT_MB: Record<string, number> = { B: 2 ** -20, KB: 2 ** -10, MB: 1, GB: 1024 };

/** wrk's report with --latency: requests/s, p50, p99 (ms), transfer/s, errors. */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk printed no ${re}:\n${out}`);
    return m;
  };
  const lat = (p: string) => {
    const m = num(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)$`, "m"));
    return Number(m[1]) * (UNIT_MS[m[2] as string] ?? Number.NaN);
  };
  const tr = num(/^Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)$/m);
  const errors = [/^\s+Socket errors: .*$/m, /^\s+Non-2xx or 3xx responses: .*$/m]
    .map((re) => re.exec(out)?.[0].trim())
    .filter((e): e is string => e !== undefined)
    .join("; ");
  return {
    rps: Number(num(/^Requests\/sec:\s+([\d.]+)$/m)[1]),
    p50: lat("50"),
    p99: lat("99"),
    transfer: Number(tr[1]) * (UNIT_MB[tr[2] as string] ?? Number.NaN),
    requests: Number(num(/^\s+(\d+) requests in /m)[1]),
    errors,
  };
}

/** Runs `wrk ARGS` (with --latency among them) and parses its report; `track` sees the child. */
export function runWrk(args: string[], track?: (c?: ChildProcess) => void): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    track?.(child);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      track?.(undefined);
      if (code !== 0) reject(new Error(`wrk ${args.join(" ")} exited with ${code}:\n${out}`));
      else resolve(parseWrk(out));
    });
  });
}
