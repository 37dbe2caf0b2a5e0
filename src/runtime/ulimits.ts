/**
 * `--ulimit NAME=SOFT[:HARD]`: Docker's syntax, names and checks (docker/go-units
 * ParseUlimit), and how the limits join the spec's process.rlimits. Pure.
 *
 * Unlimited is -1, as Docker writes it in HostConfig.Ulimits; the spec keeps
 * -1 too (a JSON number in JavaScript cannot hold RLIM_INFINITY, 2^64−1,
 * exactly), and the executor reads "-1" as RLIM_INFINITY (strtoul wraps it).
 */
import { MiniboxError } from "../errors.js";
import type { SpecRlimit } from "./spec.js";

/** HostConfig.Ulimits entry, as Docker shows it. */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** Docker's names → RLIMIT_*; "as" is left out, as Docker leaves it out. */
export const ULIMIT_NAMES: Readonly<Record<string, string>> = {
  core: "RLIMIT_CORE",
  cpu: "RLIMIT_CPU",
  data: "RLIMIT_DATA",
  fsize: "RLIMIT_FSIZE",
  locks: "RLIMIT_LOCKS",
  memlock: "RLIMIT_MEMLOCK",
  msgqueue: "RLIMIT_MSGQUEUE",
  nice: "RLIMIT_NICE",
  nofile: "RLIMIT_NOFILE",
  nproc: "RLIMIT_NPROC",
  rss: "RLIMIT_RSS",
  rtprio: "RLIMIT_RTPRIO",
  rttime: "RLIMIT_RTTIME",
  sigpending: "RLIMIT_SIGPENDING",
  stack: "RLIMIT_STACK",
};

export const UNLIMITED = -1;

function limitValue(text: string, flag: string): number {
  // strconv.ParseInt: an optional sign and decimal digits, nothing else.
  if (!/^[+-]?\d+$/.test(text)) {
    throw new MiniboxError(
      `invalid argument "${flag}" for "--ulimit" flag: invalid limit "${text}"`,
      "use NAME=SOFT[:HARD] with whole numbers, -1 for unlimited",
    );
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < UNLIMITED) {
    throw new MiniboxError(
      `invalid argument "${flag}" for "--ulimit" flag: limit ${text} is out of range`,
      "use a number from 0 up, or -1 for unlimited",
    );
  }
  return n;
}

/** "nofile=1024:2048" → {Name: "nofile", Soft: 1024, Hard: 2048}; a lone SOFT is also the hard limit. */
export function parseUlimit(flag: string): Ulimit {
  const eq = flag.indexOf("=");
  const bad = (why: string, hint: string) =>
    new MiniboxError(`invalid argument "${flag}" for "--ulimit" flag: ${why}`, hint);
  if (eq < 0) throw bad(`invalid ulimit argument: ${flag}`, "use NAME=SOFT[:HARD]");
  const name = flag.slice(0, eq);
  if (ULIMIT_NAMES[name] === undefined) {
    throw bad(`invalid ulimit type: ${name}`, `use one of ${Object.keys(ULIMIT_NAMES).join(", ")}`);
  }
  const values = flag.slice(eq + 1).split(":");
  if (values.length > 2) {
    throw bad(
      `too many limit value arguments - ${flag.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``,
      "use NAME=SOFT[:HARD]",
    );
  }
  const soft = limitValue(values[0] ?? "", flag);
  const hard = values[1] === undefined ? soft : limitValue(values[1], flag);
  // Docker compares only with a finite hard limit; an unlimited soft under a
  // finite hard is above it too (setrlimit would say EINVAL), so it is refused here.
  if (hard !== UNLIMITED && (soft > hard || soft === UNLIMITED)) {
    throw bad(
      `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`,
      "make SOFT at most HARD",
    );
  }
  return { Name: name, Soft: soft, Hard: hard };
}

/** Repeated names: the last one wins, in the position of the first (Docker keeps one per name). */
export function mergeUlimits(list: readonly Ulimit[]): Ulimit[] {
  const byName = new Map<string, Ulimit>();
  for (const u of list) byName.set(u.Name, u);
  return [...byName.values()];
}

/** The default rlimits with each --ulimit replacing the one of its resource (nofile's default included). */
export function withUlimits(
  defaults: readonly SpecRlimit[],
  ulimits: readonly Ulimit[],
): SpecRlimit[] {
  const out = new Map<string, SpecRlimit>(defaults.map((r) => [r.type, { ...r }]));
  for (const u of ulimits) {
    const type = ULIMIT_NAMES[u.Name] as string;
    out.set(type, { type, soft: u.Soft, hard: u.Hard });
  }
  return [...out.values()];
}

/**
 * In a user namespace the container's root cannot raise a hard limit above
 * the one it inherits (setrlimit needs CAP_SYS_RESOURCE in the host's user
 * namespace, and says EPERM): refused before anything is made, with the limit
 * it may use. `callerHard`: minibox's own hard limits by Docker name
 * (UNLIMITED when unlimited).
 */
export function checkUlimitsInUserns(
  ulimits: readonly Ulimit[],
  callerHard: Readonly<Record<string, number>>,
): void {
  for (const u of ulimits) {
    const ceiling = callerHard[u.Name];
    if (ceiling === undefined || ceiling === UNLIMITED) continue;
    if (u.Hard === UNLIMITED || u.Hard > ceiling) {
      const hard = u.Hard === UNLIMITED ? "unlimited" : String(u.Hard);
      throw new MiniboxError(
        `--ulimit ${u.Name}: the hard limit ${hard} is above minibox's own (${ceiling}), which a container in a user namespace cannot raise`,
        `use a hard limit of at most ${ceiling}, or --userns=host`,
      );
    }
  }
}
