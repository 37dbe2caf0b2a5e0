/**
 * Go's time.Duration as Docker reads and prints it: "1m30s", "500ms",
 * "1.5h", "0". Health check timings are stored in nanoseconds, as Docker's
 * image config and inspect show them.
 */

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** A Go duration in nanoseconds; undefined when `text` is not one (time.ParseDuration's grammar). */
export function parseGoDuration(text: string): number | undefined {
  const m = /^([-+]?)(.*)$/.exec(text) as RegExpExecArray;
  const [, sign, body = ""] = m;
  if (body === "0") return 0;
  const parts = [...body.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join("") !== body) return undefined;
  const ns = parts.reduce((n, p) => n + Number(p[1]) * (UNIT_NS[p[2] as string] as number), 0);
  return Math.round(sign === "-" ? -ns : ns);
}

/** How Go prints a duration (time.Duration.String): "30s", "1m30s", "500ms", "1h0m0s". */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${sign}${abs}ns`;
  if (abs < 1e6) return `${sign}${trim(abs / 1e3)}µs`;
  if (abs < 1e9) return `${sign}${trim(abs / 1e6)}ms`;
  const h = Math.floor(abs / 3600e9);
  const m = Math.floor((abs % 3600e9) / 60e9);
  const s = trim((abs % 60e9) / 1e9);
  if (h > 0) return `${sign}${h}h${m}m${s}s`;
  if (m > 0) return `${sign}${m}m${s}s`;
  return `${sign}${s}s`;
}

/** A fraction without trailing zeros, to nanosecond precision (Go prints 1.5s, not 1.500s). */
function trim(n: number): string {
  return String(Number(n.toFixed(9)));
}
