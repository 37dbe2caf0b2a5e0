/**
 * The executor's steps, typed: one interface per op, and ONE table (OPS)
 * that says for each op how many fields native/minibox-exec expects and how
 * the step's values become those fields. The plan text and --trace (which
 * names a step by its line in that text) both go through this table, so the
 * text protocol with the executor is written down once, here.
 */
import { capMask } from "./capabilities.js";

interface Described {
  /** What the step does, in words, for --trace and error messages. */
  describe: string;
}

/** Ops that take no field: the executor knows everything it needs. */
export interface BareStep extends Described {
  op:
    | "mountns"
    | "pty"
    | "report-pid"
    | "wait-go"
    | "stdin-null"
    | "console"
    | "no-new-privs"
    | "closefds"
    | "init"
    | "wait-start";
}
export interface IdmapUsernsStep extends Described {
  op: "idmap-userns";
  /** /proc/<pid>/uid_map and gid_map text, one "inside outside count" line per range. */
  uidMap: string;
  gidMap: string;
}
export interface IdmapMountStep extends Described {
  op: "idmap-mount";
  source: string;
  target: string;
}
export interface MountStep extends Described {
  op: "mount";
  source: string;
  target: string;
  fstype: string;
  flags: number;
  data: string;
}
/** mkdir and touch: created if missing, owned by `owner` when given (else by whoever creates it). */
export interface CreateStep extends Described {
  op: "mkdir" | "touch";
  path: string;
  mode: number;
  owner?: { uid: number; gid: number };
}
/** A directory (0755) made unless it exists, owned by `owner`. */
export function mkdirIfMissing(path: string, owner: { uid: number; gid: number }): CreateStep {
  return { op: "mkdir", path, mode: 0o755, owner, describe: `mkdir ${path} (if missing)` };
}
/** An empty file (0644, a bind mount's mount point) made unless it exists, owned by `owner`. */
export function touchIfMissing(path: string, owner: { uid: number; gid: number }): CreateStep {
  return { op: "touch", path, mode: 0o644, owner, describe: `create ${path} (if missing)` };
}
export interface MknodStep extends Described {
  op: "mknod";
  path: string;
  mode: number;
  major: number;
  minor: number;
}
export interface ChownStep extends Described {
  op: "chown";
  path: string;
  uid: number;
  gid: number;
}
export interface SymlinkStep extends Described {
  op: "symlink";
  target: string;
  path: string;
}
/**
 * One field: root, remount-ro, exit-file, pivot_root, sethostname, setdomainname, ifup, chdir, env.
 * `root DIR`: every later path below DIR is resolved inside it (native/in-root.c).
 * `base DIR`: chdir into DIR; later paths below it are opened from there.
 */
export interface OneFieldStep extends Described {
  op:
    | "root"
    | "base"
    | "remount-ro"
    | "exit-file"
    | "pivot_root"
    | "sethostname"
    | "setdomainname"
    | "ifup"
    | "chdir"
    | "env"
    | "exec-fifo"
    | "console-socket"
    | "pass-fds"
    | "warm-cgroup";
  value: string;
}
export interface LogStep extends Described {
  op: "log";
  file: string;
  /** Bytes; 0 = never rotate. */
  maxSize: number;
  maxFiles: number;
  stream: "tty" | "pipes";
}
/**
 * [setup] The monitor runs a health check: every interval the executor on
 * `planFile` (an exec plan), killed at the timeout; Docker's State.Health
 * into `stateFile` (native/health.c). Times in ms.
 */
export interface HealthStep extends Described {
  op: "health";
  planFile: string;
  stateFile: string;
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
  /** The timeout as Docker words it in "Health check exceeded timeout (30s)". */
  timeoutText: string;
  /** The store's event journal, where a change of status appends "health_status: …". */
  eventsFile: string;
  /** That event's Actor, as JSON text (src/events/container-events.ts). */
  actor: string;
}
/** A command line: on-exit (the monitor's hook) and exec (the container's program). */
export interface CommandStep extends Described {
  op: "on-exit" | "exec";
  argv: string[];
}
/** clone and unshare: CLONE_* flags. */
export interface NamespaceFlagsStep extends Described {
  op: "clone" | "unshare";
  flags: number;
}
export interface WriteStep extends Described {
  op: "write";
  path: string;
  data: string;
}
export interface UserStep extends Described {
  op: "user";
  uid: number;
  gid: number;
}
export interface MaskStep extends Described {
  op: "mask";
  path: string;
  /** What is bound over a file (the executor's /dev/null, checked to be c 1:3). */
  with: string;
}
export interface RlimitStep extends Described {
  op: "rlimit";
  /** RLIMIT_* number (linux/resource.h). */
  resource: number;
  soft: number;
  hard: number;
}
export interface GroupsStep extends Described {
  op: "groups";
  gids: number[];
}
export interface BoundingStep extends Described {
  op: "bounding";
  /** CAP_* names kept in the bounding set. */
  keep: string[];
}
export interface CapsStep extends Described {
  op: "caps";
  effective: string[];
  permitted: string[];
  inheritable: string[];
  /** Raised after the others (absent or empty: none). */
  ambient?: string[];
}
/** The seccomp filter: struct sock_filter[] in hex, loaded with SECCOMP_FILTER_FLAG_TSYNC. */
export interface SeccompStep extends Described {
  op: "seccomp";
  program: string;
}
export interface SetnsStep extends Described {
  op: "setns";
  pid: number;
  /** /proc/<pid>/ns names, in the order they are joined. */
  namespaces: string[];
}
/** [setup] Join an existing namespace (config.json's namespace `path`) before the clone. */
export interface JoinNsStep extends Described {
  op: "join-ns";
  path: string;
  /** The /proc/PID/ns name: net, ipc, uts, pid, cgroup, mnt. */
  type: string;
}
/**
 * [parent] A veth pair: the peer is created straight in the netns of `pid`
 * ("{pid}": the container's init) under its final name, the host end is put
 * on `bridge` and brought up.
 */
export interface VethStep extends Described {
  op: "veth";
  hostIf: string;
  peerIf: string;
  pid: number | "{pid}";
  /** Absent: the host end joins no bridge. */
  bridge?: string;
  /** 0: the kernel's default. */
  mtu: number;
}
/**
 * [setup] Bind (and for tcp listen on) a published host port and keep the
 * socket open in the executor, then the monitor, while the container runs.
 */
export interface HoldPortStep extends Described {
  op: "hold-port";
  proto: "tcp" | "udp";
  /** An IPv4 address; 0.0.0.0 for every interface. */
  ip: string;
  port: number;
}
/** [child] An interface of the container's netns: its MAC (absent: the kernel's), up, an IPv4 address. */
export interface NetifStep extends Described {
  op: "netif";
  ifname: string;
  mac?: string;
  /** "A.B.C.D/PREFIX" */
  address: string;
}
/** [child] The default IPv4 route via `gateway` (out of `ifname` when given). */
export interface RouteDefaultStep extends Described {
  op: "route-default";
  gateway: string;
  ifname?: string;
}

export type Step =
  | BareStep
  | IdmapUsernsStep
  | IdmapMountStep
  | MountStep
  | CreateStep
  | MknodStep
  | ChownStep
  | SymlinkStep
  | OneFieldStep
  | LogStep
  | HealthStep
  | CommandStep
  | NamespaceFlagsStep
  | WriteStep
  | UserStep
  | MaskStep
  | RlimitStep
  | GroupsStep
  | BoundingStep
  | CapsStep
  | SeccompStep
  | SetnsStep
  | JoinNsStep
  | VethStep
  | HoldPortStep
  | NetifStep
  | RouteDefaultStep;

export type Op = Step["op"];
/** The step interface(s) whose op may be K (several ops share one interface). */
type Having<S, K> = S extends { op: infer O } ? (K extends O ? S : never) : never;
type StepOf<K extends Op> = Having<Step, K>;
type Field = string | number;

interface OpFormat<S> {
  /** Fewest and most fields the executor accepts for this op. */
  arity: readonly [min: number, max: number];
  fields: (s: S) => Field[];
}

const hex = (n: number) => `0x${n.toString(16)}`;
const octal = (mode: number) => `0${mode.toString(8)}`;
const bare = { arity: [0, 0], fields: () => [] } as const;
const one = { arity: [1, 1], fields: (s: OneFieldStep) => [s.value] } as const;
const create = {
  arity: [2, 4],
  fields: (s: CreateStep) => [
    s.path,
    octal(s.mode),
    ...(s.owner ? [s.owner.uid, s.owner.gid] : []),
  ],
} as const;
const MANY = Number.POSITIVE_INFINITY;

/** The text protocol with native/minibox-exec: op name → field count and field order. */
export const OPS: { [K in Op]: OpFormat<StepOf<K>> } = {
  "warm-cgroup": one,
  "hold-port": { arity: [3, 3], fields: (s) => [s.proto, s.ip, s.port] },
  mountns: bare,
  root: one,
  base: one,
  "idmap-userns": { arity: [2, 2], fields: (s) => [s.uidMap, s.gidMap] },
  "idmap-mount": { arity: [2, 2], fields: (s) => [s.source, s.target] },
  mount: {
    arity: [5, 5],
    fields: (s) => [s.source || "-", s.target, s.fstype || "-", hex(s.flags), s.data || "-"],
  },
  mkdir: create,
  touch: create,
  mknod: { arity: [4, 4], fields: (s) => [s.path, octal(s.mode), s.major, s.minor] },
  chown: { arity: [3, 3], fields: (s) => [s.path, s.uid, s.gid] },
  symlink: { arity: [2, 2], fields: (s) => [s.target, s.path] },
  "remount-ro": one,
  pty: bare,
  log: { arity: [4, 4], fields: (s) => [s.file, s.maxSize, s.maxFiles, s.stream] },
  "exit-file": one,
  "on-exit": { arity: [1, MANY], fields: (s) => s.argv },
  health: {
    arity: [10, 10],
    fields: (s) => [
      s.planFile,
      s.stateFile,
      s.intervalMs,
      s.timeoutMs,
      s.startPeriodMs,
      s.startIntervalMs,
      s.retries,
      s.timeoutText,
      s.eventsFile,
      s.actor,
    ],
  },
  // A plain fork (no flag) is written "0", as exec and the id-map probe always wrote it.
  clone: { arity: [1, 1], fields: (s) => [s.flags ? hex(s.flags) : "0"] },
  write: { arity: [2, 2], fields: (s) => [s.path, s.data] },
  "report-pid": bare,
  "wait-go": bare,
  veth: {
    arity: [5, 5],
    fields: (s) => [s.hostIf, s.peerIf, s.pid, s.bridge ?? "-", s.mtu],
  },
  unshare: { arity: [1, 1], fields: (s) => [hex(s.flags)] },
  user: { arity: [2, 2], fields: (s) => [s.uid, s.gid] },
  "stdin-null": bare,
  mask: { arity: [2, 2], fields: (s) => [s.path, s.with] },
  pivot_root: one,
  console: bare,
  sethostname: one,
  setdomainname: one,
  ifup: one,
  netif: { arity: [3, 3], fields: (s) => [s.ifname, s.mac ?? "-", s.address] },
  "route-default": {
    arity: [1, 2],
    fields: (s) => [s.gateway, ...(s.ifname ? [s.ifname] : [])],
  },
  chdir: one,
  rlimit: { arity: [3, 3], fields: (s) => [s.resource, s.soft, s.hard] },
  groups: { arity: [0, MANY], fields: (s) => s.gids },
  bounding: { arity: [1, 1], fields: (s) => [capMask(s.keep)] },
  caps: {
    arity: [3, 4],
    fields: (s) => [
      capMask(s.effective),
      capMask(s.permitted),
      capMask(s.inheritable),
      ...(s.ambient?.length ? [capMask(s.ambient)] : []),
    ],
  },
  "no-new-privs": bare,
  seccomp: { arity: [1, 1], fields: (s) => [s.program] },
  closefds: bare,
  env: one,
  init: bare,
  exec: { arity: [1, MANY], fields: (s) => s.argv },
  setns: { arity: [2, MANY], fields: (s) => [s.pid, ...s.namespaces] },
  "join-ns": { arity: [2, 2], fields: (s) => [s.path, s.type] },
  "exec-fifo": one,
  "console-socket": one,
  "wait-start": bare,
  "pass-fds": one,
};

/** The step's fields as the executor reads them (after the op name). */
export function stepFields(s: Step): string[] {
  // TypeScript cannot correlate s.op with OPS[s.op]'s parameter type; the table's type ensures it.
  const format = OPS[s.op] as OpFormat<Step>;
  const fields = format.fields(s).map(String);
  const [min, max] = format.arity;
  if (fields.length < min || fields.length > max) {
    throw new Error(
      `plan step ${s.op} has ${fields.length} fields, the executor takes ${min}–${max}`,
    );
  }
  return fields;
}

/** A step as it sits in a plan: typed, with its fields already read from OPS. */
export type PlanStep = Step & { readonly args: readonly string[] };

export interface Plan {
  setup: PlanStep[];
  parent: PlanStep[];
  child: PlanStep[];
}

/** The three sections of steps, each step given its fields: a plan the executor can run. */
export function toPlan(sections: { setup: Step[]; parent: Step[]; child: Step[] }): Plan {
  const seal = (steps: Step[]) => steps.map((s): PlanStep => ({ ...s, args: stepFields(s) }));
  return {
    setup: seal(sections.setup),
    parent: seal(sections.parent),
    child: seal(sections.child),
  };
}
