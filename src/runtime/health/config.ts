/**
 * A container's health check as Docker configures it: the image's
 * HEALTHCHECK (Config.Healthcheck), overridden field by field by run's
 * --health-* flags (daemon/commit.go merge), or turned off by
 * --no-healthcheck / HEALTHCHECK NONE. Times are nanoseconds, as Docker
 * stores them; 0 means "inherit, else the default".
 */
import { MiniboxError } from "../../errors.js";
import { parseGoDuration } from "./duration.js";

export interface HealthConfig {
  /** [] inherit; ["NONE"] off; ["CMD", argv…]; ["CMD-SHELL", command]. */
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** Docker's defaults (daemon/health.go). */
const DEFAULTS = {
  interval: 30e9,
  timeout: 30e9,
  startPeriod: 0,
  startInterval: 5e9,
  retries: 3,
};

/** run's flags as given (strings: durations are parsed here). */
export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  healthRetries?: string;
  noHealthcheck?: boolean;
}

const DURATION_FLAGS = [
  ["healthInterval", "Interval", "--health-interval"],
  ["healthTimeout", "Timeout", "--health-timeout"],
  ["healthStartPeriod", "StartPeriod", "--health-start-period"],
  ["healthStartInterval", "StartInterval", "--health-start-interval"],
] as const;

/** A flag's duration in ns, checked as Docker's CLI and daemon check it. */
function flagDuration(text: string, flag: string): number {
  const ns = parseGoDuration(text);
  if (ns === undefined) {
    throw new MiniboxError(
      `invalid argument ${JSON.stringify(text)} for "${flag}" flag: time: invalid duration ${JSON.stringify(text)}`,
      "use a duration such as 30s, 1m30s or 500ms",
    );
  }
  if (ns < 0) throw new MiniboxError(`${flag} cannot be negative`);
  if (ns > 0 && ns < 1e6) throw new MiniboxError(`${flag} cannot be less than 1ms`);
  return ns;
}

/** The --health-* flags as a HealthConfig (undefined: none given, the image's applies). */
export function healthFromFlags(f: HealthFlags): HealthConfig | undefined {
  const given =
    f.healthCmd !== undefined ||
    f.healthRetries !== undefined ||
    DURATION_FLAGS.some(([key]) => f[key] !== undefined);
  if (f.noHealthcheck) {
    if (given) throw new MiniboxError("--no-healthcheck conflicts with --health-* options");
    return { Test: ["NONE"] };
  }
  if (!given) return undefined;
  const out: HealthConfig = { Test: f.healthCmd ? ["CMD-SHELL", f.healthCmd] : [] };
  for (const [key, field, flag] of DURATION_FLAGS) {
    const text = f[key];
    if (text !== undefined) out[field] = flagDuration(text, flag);
  }
  if (f.healthRetries !== undefined) {
    if (!/^-?\d+$/.test(f.healthRetries)) {
      throw new MiniboxError(
        `invalid argument ${JSON.stringify(f.healthRetries)} for "--health-retries" flag: expected an integer`,
      );
    }
    const retries = Number(f.healthRetries);
    if (retries < 0) throw new MiniboxError("--health-retries cannot be negative");
    out.Retries = retries;
  }
  return compact(out);
}

/** Without the fields that are 0 or empty, as Docker's JSON leaves them out (omitempty). */
function compact(c: HealthConfig): HealthConfig {
  return Object.fromEntries(
    Object.entries(c).filter(([, v]) => (Array.isArray(v) ? v.length > 0 : !!v)),
  ) as HealthConfig;
}

/** The flags' config over the image's, field by field (Docker's merge). */
export function mergeHealthcheck(
  image: HealthConfig | undefined,
  flags: HealthConfig | undefined,
): HealthConfig | undefined {
  if (!flags) return image;
  if (!image) return flags;
  return compact({
    Test: flags.Test?.length ? flags.Test : image.Test,
    Interval: flags.Interval || image.Interval,
    Timeout: flags.Timeout || image.Timeout,
    StartPeriod: flags.StartPeriod || image.StartPeriod,
    StartInterval: flags.StartInterval || image.StartInterval,
    Retries: flags.Retries || image.Retries,
  });
}

/** Whether the config runs a check (a command, not NONE). */
export function healthActive(c: HealthConfig | undefined): c is HealthConfig & { Test: string[] } {
  return !!c?.Test?.length && c.Test[0] !== "NONE" && c.Test.length > 1;
}

/** The probe's command line: CMD's argv, or CMD-SHELL's command through the image's SHELL (else /bin/sh -c). */
export function probeArgv(c: HealthConfig & { Test: string[] }, shell?: string[]): string[] {
  const [kind, ...rest] = c.Test;
  const sh = shell?.length ? shell : ["/bin/sh", "-c"];
  return kind === "CMD-SHELL" ? [...sh, rest.join(" ")] : rest;
}

/** The timings with Docker's defaults filled in (ns; retries a count). */
export function effectiveTimings(c: HealthConfig) {
  return {
    interval: c.Interval || DEFAULTS.interval,
    timeout: c.Timeout || DEFAULTS.timeout,
    startPeriod: c.StartPeriod || DEFAULTS.startPeriod,
    startInterval: c.StartInterval || DEFAULTS.startInterval,
    retries: c.Retries || DEFAULTS.retries,
  };
}
