/**
 * A service's `healthcheck:` (Compose Specification) turned into `run`'s
 * --health-* flags, which the container's monitor runs (docs/internals.md
 * "Health checks"); `depends_on: {condition: service_healthy}` waits on it.
 */
import type { Checker } from "./model.js";

export interface Healthcheck {
  /** `disable: true` or `test: ["NONE"]`: the image's HEALTHCHECK is turned off too. */
  disable: boolean;
  /** What --health-cmd runs through /bin/sh -c. */
  cmd?: string;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
  start_interval?: string;
}

const KEYS = [
  "test",
  "interval",
  "timeout",
  "retries",
  "start_period",
  "start_interval",
  "disable",
];

/** One word for sh -c, quoted only if it needs to be. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** test: "CMD-SHELL" form as a string, or ["CMD", argv…], ["CMD-SHELL", "line"], ["NONE"]. */
function testCommand(ck: Checker, v: unknown, at: string): { disable: boolean; cmd?: string } {
  if (typeof v === "string") return { disable: false, cmd: v };
  const words = ck.strings(v, at);
  const [kind, ...rest] = words;
  if (kind === "NONE") return { disable: true };
  if (kind === "CMD" && rest.length) return { disable: false, cmd: rest.map(shellWord).join(" ") };
  if (kind === "CMD-SHELL" && rest.length === 1) return { disable: false, cmd: rest[0] };
  return ck.fail(at, 'must be a string, or a list starting with "CMD", "CMD-SHELL" or "NONE"');
}

export function parseHealthcheck(ck: Checker, v: unknown, at: string): Healthcheck | undefined {
  if (v === undefined || v === null) return undefined;
  const h = ck.map(v, at);
  for (const k of Object.keys(h)) if (!KEYS.includes(k)) ck.fail(`${at}.${k}`, "unknown key");
  const out: Healthcheck = {
    disable: h.disable === undefined ? false : ck.bool(h.disable, `${at}.disable`),
  };
  if (h.test !== undefined && !out.disable)
    Object.assign(out, testCommand(ck, h.test, `${at}.test`));
  for (const k of ["interval", "timeout", "start_period", "start_interval"] as const) {
    if (h[k] !== undefined) out[k] = ck.str(h[k], `${at}.${k}`);
  }
  if (h.retries !== undefined) {
    if (typeof h.retries !== "number" || !Number.isInteger(h.retries) || h.retries < 0)
      ck.fail(`${at}.retries`, "must be a whole number");
    out.retries = h.retries;
  }
  return out;
}

/** The --health-* flags of `run` for it. */
export function healthArgs(h: Healthcheck | undefined): string[] {
  if (!h) return [];
  if (h.disable) return ["--no-healthcheck"];
  const args: string[] = [];
  if (h.cmd) args.push("--health-cmd", h.cmd);
  if (h.interval) args.push("--health-interval", h.interval);
  if (h.timeout) args.push("--health-timeout", h.timeout);
  if (h.retries !== undefined) args.push("--health-retries", String(h.retries));
  if (h.start_period) args.push("--health-start-period", h.start_period);
  if (h.start_interval) args.push("--health-start-interval", h.start_interval);
  return args;
}
