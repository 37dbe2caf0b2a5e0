/**
 * `--since` and `--until` values, read as Docker reads them
 * (api/types/time.GetTimestamp): a Go duration ("10m", "1h30m") counts back
 * from now; otherwise an RFC 3339 time or date ("2024-01-02T03:04:05Z",
 * "2024-01-02T03:04:05.5+01:00", "2024-01-02"; without a zone, local time),
 * or a Unix timestamp ("1704164645", "1704164645.123456789").
 */
import { MiniboxError } from "../errors.js";

const NS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration, in nanoseconds; undefined when `text` is not one. */
export function parseGoDuration(text: string): bigint | undefined {
  const whole = /^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!whole) return undefined;
  let total = 0;
  for (const [, amount, unit] of (whole[2] as string).matchAll(
    /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g,
  ))
    total += Number(amount) * (NS_PER_UNIT[unit as string] as number);
  return BigInt(Math.round(whole[1] === "-" ? -total : total));
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/;

/** An RFC 3339 time or date, in nanoseconds since 1970; undefined when `text` is not one. */
function parseDateTime(text: string): bigint | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((v) => Number(v ?? 0));
  const zone = m[8];
  let ms: number;
  if (zone === undefined) ms = new Date(y, mo - 1, d, h, mi, s).getTime();
  else {
    ms = Date.UTC(y, mo - 1, d, h, mi, s);
    if (!/^z$/i.test(zone)) {
      const sign = zone.startsWith("-") ? -1 : 1;
      ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    }
  }
  if (Number.isNaN(ms) || mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  const fraction = BigInt((m[7] ?? "").padEnd(9, "0"));
  return BigInt(ms) * 1_000_000n + fraction;
}

/** "1704164645" or "1704164645.123456789" (seconds, then nanoseconds). */
function parseUnixTimestamp(text: string): bigint | undefined {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) return undefined;
  return BigInt(m[1] as string) * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** A --since/--until value, in nanoseconds since 1970; a bad one is one clear line. */
export function parseEventTime(flag: string, text: string, nowNano: bigint): bigint {
  // Docker's rule: "0" is the Unix epoch, not a zero duration.
  const duration = text === "0" ? undefined : parseGoDuration(text);
  const value =
    duration !== undefined ? nowNano - duration : (parseDateTime(text) ?? parseUnixTimestamp(text));
  if (value === undefined) {
    throw new MiniboxError(
      `invalid value for ${flag}: ${JSON.stringify(text)} is not a time or duration`,
      "use an RFC 3339 time (2024-01-02T03:04:05Z), a Unix timestamp (1704164645) or a duration (10m)",
    );
  }
  return value;
}
