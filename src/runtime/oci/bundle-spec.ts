/**
 * An OCI bundle's config.json, as any engine writes it (containerd, podman,
 * `runc spec`), checked and turned into the Spec minibox's planner executes.
 * A pure function of the parsed JSON and the bundle's path: every error
 * names the field that is wrong ("mounts[3].destination: …"), so a caller
 * sees what to fix rather than a failed syscall later.
 *
 * What the planner cannot do yet is refused here with its field, never
 * ignored: joining an existing user namespace by path, and a container
 * without a mount namespace of its own (runc then makes the container's
 * mounts in the caller's namespace and chroots: they outlive it there).
 */
import { posix } from "node:path";
import { MiniboxError } from "../../errors.js";
import type { SpecDevice, SpecDeviceCgroup } from "../devices.js";
import { resolveProfile } from "../seccomp/profile.js";
import { validateProfile } from "../seccomp/validate.js";
import {
  ALL_CAPABILITIES,
  type NamespaceType,
  type Spec,
  type SpecBlockIO,
  type SpecIdMapping,
  type SpecMount,
  type SpecNamespace,
  type SpecResources,
} from "../spec.js";
import { type HostLsms, refusedLabel } from "./lsm.js";

/** A hook (config.md "POSIX-platform Hooks"): run by the runtime with the state on stdin. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export const HOOK_KINDS = [
  "prestart",
  "createRuntime",
  "createContainer",
  "startContainer",
  "poststart",
  "poststop",
] as const;
export type HookKind = (typeof HOOK_KINDS)[number];
export type Hooks = Partial<Record<HookKind, Hook[]>>;

export interface BundleSpec {
  spec: Spec;
  /** The rootfs on the host (root.path resolved against the bundle). */
  rootfs: string;
  hooks: Hooks;
}

type Json = Record<string, unknown>;

const NO_LSMS: HostLsms = { apparmor: false, selinux: false };

function bad(field: string, what: string): never {
  throw new MiniboxError(`config.json: ${field}: ${what}`);
}

function object(v: unknown, field: string): Json {
  if (v === undefined) bad(field, "is required");
  if (v === null || typeof v !== "object" || Array.isArray(v)) bad(field, "must be an object");
  return v as Json;
}

function optObject(v: unknown, field: string): Json {
  return v === undefined || v === null ? {} : object(v, field);
}

function array(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad(field, "must be an array");
  return v;
}

function strings(v: unknown, field: string): string[] {
  return array(v, field).map((s, i) => {
    if (typeof s !== "string") bad(`${field}[${i}]`, "must be a string");
    return s;
  });
}

function str(v: unknown, field: string, fallback?: string): string {
  if (v === undefined || v === null) {
    if (fallback === undefined) bad(field, "is required");
    return fallback;
  }
  if (typeof v !== "string") bad(field, "must be a string");
  return v;
}

function int(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) bad(field, "must be an integer");
  return v;
}

function absolute(path: string, field: string): string {
  if (!path.startsWith("/")) bad(field, `${JSON.stringify(path)} must be an absolute path`);
  return posix.normalize(path);
}

const NAMESPACE_TYPES: readonly NamespaceType[] = [
  "pid",
  "network",
  "mount",
  "ipc",
  "uts",
  "user",
  "cgroup",
];

function namespaces(v: unknown): SpecNamespace[] {
  const seen = new Set<string>();
  return array(v, "linux.namespaces").map((raw, i) => {
    const field = `linux.namespaces[${i}]`;
    const n = object(raw, field);
    const type = str(n.type, `${field}.type`) as NamespaceType;
    if (!NAMESPACE_TYPES.includes(type)) {
      bad(
        `${field}.type`,
        `unknown namespace type ${JSON.stringify(type)} (${NAMESPACE_TYPES.join(", ")})`,
      );
    }
    if (seen.has(type)) bad(`${field}.type`, `namespace ${type} is listed twice`);
    seen.add(type);
    const path = n.path === undefined || n.path === "" ? undefined : str(n.path, `${field}.path`);
    if (path === undefined) return { type };
    absolute(path, `${field}.path`);
    if (type === "user") {
      bad(`${field}.path`, "joining an existing user namespace is not supported by minibox-runc");
    }
    return { type, path };
  });
}

function mounts(v: unknown): SpecMount[] {
  return array(v, "mounts").map((raw, i) => {
    const field = `mounts[${i}]`;
    const m = object(raw, field);
    const destination = absolute(
      str(m.destination, `${field}.destination`),
      `${field}.destination`,
    );
    const options = strings(m.options, `${field}.options`);
    const isBind = options.includes("bind") || options.includes("rbind");
    const type = str(m.type, `${field}.type`, isBind ? "bind" : "");
    if (type === "") bad(`${field}.type`, "is required (unless options has bind or rbind)");
    const source = str(m.source, `${field}.source`, type);
    if ((type === "bind" || isBind) && !source.startsWith("/")) {
      bad(`${field}.source`, `${JSON.stringify(source)} must be an absolute path for a bind mount`);
    }
    return { destination, type: isBind ? "bind" : type, source, options };
  });
}

function capabilities(v: unknown) {
  const caps = optObject(v, "process.capabilities");
  const set = (name: string) =>
    strings(caps[name], `process.capabilities.${name}`).map((cap, i) => {
      if (!ALL_CAPABILITIES.includes(cap)) {
        bad(`process.capabilities.${name}[${i}]`, `unknown capability ${JSON.stringify(cap)}`);
      }
      return cap;
    });
  return {
    bounding: set("bounding"),
    effective: set("effective"),
    permitted: set("permitted"),
    inheritable: set("inheritable"),
    ambient: set("ambient"),
  };
}

function rlimits(v: unknown) {
  return array(v, "process.rlimits").map((raw, i) => {
    const field = `process.rlimits[${i}]`;
    const r = object(raw, field);
    const type = str(r.type, `${field}.type`);
    if (!/^RLIMIT_[A-Z]+$/.test(type))
      bad(`${field}.type`, `unknown rlimit ${JSON.stringify(type)}`);
    return {
      type,
      soft: int(r.soft, `${field}.soft`) ?? 0,
      hard: int(r.hard, `${field}.hard`) ?? 0,
    };
  });
}

/** config.json's `process` (also `exec --process`'s process.json). */
export function processOf(v: unknown, lsms: HostLsms = NO_LSMS) {
  const p = object(v, "process");
  const refused = refusedLabel(p, lsms);
  if (refused) bad(refused.field, refused.why);
  const args = strings(p.args, "process.args");
  if (args.length === 0) bad("process.args", "must not be empty");
  const user = optObject(p.user, "process.user");
  return {
    terminal: p.terminal === true,
    user: {
      uid: int(user.uid, "process.user.uid") ?? 0,
      gid: int(user.gid, "process.user.gid") ?? 0,
      additionalGids: array(user.additionalGids, "process.user.additionalGids").map(
        (g, i) => int(g, `process.user.additionalGids[${i}]`) as number,
      ),
    },
    args,
    env: strings(p.env, "process.env"),
    cwd: absolute(str(p.cwd, "process.cwd", "/"), "process.cwd"),
    capabilities: capabilities(p.capabilities),
    rlimits: rlimits(p.rlimits),
    noNewPrivileges: p.noNewPrivileges === true,
  };
}

function idMappings(v: unknown, field: string): SpecIdMapping[] | undefined {
  if (v === undefined || v === null) return undefined;
  return array(v, field).map((raw, i) => {
    const m = object(raw, `${field}[${i}]`);
    const num = (k: string) =>
      int(m[k], `${field}[${i}].${k}`) ?? bad(`${field}[${i}].${k}`, "is required");
    return { containerID: num("containerID"), hostID: num("hostID"), size: num("size") };
  });
}

function resources(v: unknown): SpecResources {
  const r = optObject(v, "linux.resources");
  const memory = optObject(r.memory, "linux.resources.memory");
  const cpu = optObject(r.cpu, "linux.resources.cpu");
  const pids = optObject(r.pids, "linux.resources.pids");
  const out: SpecResources = {};
  const mem = {
    limit: int(memory.limit, "linux.resources.memory.limit"),
    swap: int(memory.swap, "linux.resources.memory.swap"),
    reservation: int(memory.reservation, "linux.resources.memory.reservation"),
    swappiness: int(memory.swappiness, "linux.resources.memory.swappiness"),
    disableOOMKiller: bool(memory.disableOOMKiller, "linux.resources.memory.disableOOMKiller"),
  };
  const swappiness = mem.swappiness;
  // runc: -1 (and a uint64 wrapped round) means "the kernel's default".
  if (swappiness !== undefined && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    bad("linux.resources.memory.swappiness", `${swappiness} is not between 0 and 100`);
  }
  if (swappiness === -1) mem.swappiness = undefined;
  if (Object.values(mem).some((x) => x !== undefined)) out.memory = defined(mem);
  const c = {
    shares: int(cpu.shares, "linux.resources.cpu.shares"),
    quota: int(cpu.quota, "linux.resources.cpu.quota"),
    period: int(cpu.period, "linux.resources.cpu.period"),
    cpus: cpuList(cpu.cpus, "linux.resources.cpu.cpus"),
    mems: cpuList(cpu.mems, "linux.resources.cpu.mems"),
  };
  if (Object.values(c).some((x) => x !== undefined)) out.cpu = defined(c);
  const pidsLimit = int(pids.limit, "linux.resources.pids.limit");
  if (pidsLimit !== undefined) out.pids = { limit: pidsLimit };
  if (r.devices !== undefined) out.devices = deviceRules(r.devices);
  const blockIO = blockIOOf(r.blockIO);
  if (blockIO) out.blockIO = blockIO;
  const huge = array(r.hugepageLimits, "linux.resources.hugepageLimits").map((raw, i) => {
    const field = `linux.resources.hugepageLimits[${i}]`;
    const h = object(raw, field);
    return {
      pageSize: str(h.pageSize, `${field}.pageSize`),
      limit: int(h.limit, `${field}.limit`) ?? bad(`${field}.limit`, "is required"),
    };
  });
  if (huge.length > 0) out.hugepageLimits = huge;
  const network = networkOf(r.network);
  if (network) out.network = network;
  return out;
}

function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") bad(field, "must be true or false");
  return v;
}

/** An object without its undefined members (the Spec never holds them). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}

/** A cpuset list ("0-3,5"); "" means unset, as in runc. */
function cpuList(v: unknown, field: string): string | undefined {
  const text = v === undefined || v === null ? "" : str(v, field);
  if (text === "") return undefined;
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) {
    bad(field, `${JSON.stringify(text)} is not a list such as "0", "0-3" or "0,2"`);
  }
  return text;
}

const THROTTLES = [
  "throttleReadBpsDevice",
  "throttleWriteBpsDevice",
  "throttleReadIOPSDevice",
  "throttleWriteIOPSDevice",
] as const;

function blockIOOf(v: unknown): SpecBlockIO | undefined {
  if (v === undefined || v === null) return undefined;
  const b = object(v, "linux.resources.blockIO");
  const at = (k: string) => `linux.resources.blockIO.${k}`;
  const device = (raw: unknown, field: string) => {
    const d = object(raw, field);
    const need = (k: string) => int(d[k], `${field}.${k}`) ?? bad(`${field}.${k}`, "is required");
    return { d, major: need("major"), minor: need("minor") };
  };
  const out: SpecBlockIO = defined({
    weight: int(b.weight, at("weight")),
    leafWeight: int(b.leafWeight, at("leafWeight")),
  });
  const weights = array(b.weightDevice, at("weightDevice")).map((raw, i) => {
    const field = `${at("weightDevice")}[${i}]`;
    const { d, major, minor } = device(raw, field);
    return defined({
      major,
      minor,
      weight: int(d.weight, `${field}.weight`),
      leafWeight: int(d.leafWeight, `${field}.leafWeight`),
    });
  });
  if (weights.length > 0) out.weightDevice = weights;
  for (const key of THROTTLES) {
    const list = array(b[key], at(key)).map((raw, i) => {
      const field = `${at(key)}[${i}]`;
      const { d, major, minor } = device(raw, field);
      return {
        major,
        minor,
        rate: int(d.rate, `${field}.rate`) ?? bad(`${field}.rate`, "is required"),
      };
    });
    if (list.length > 0) out[key] = list;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function networkOf(v: unknown): SpecResources["network"] {
  if (v === undefined || v === null) return undefined;
  const n = object(v, "linux.resources.network");
  const classID = int(n.classID, "linux.resources.network.classID");
  const priorities = array(n.priorities, "linux.resources.network.priorities").map((raw, i) => {
    const field = `linux.resources.network.priorities[${i}]`;
    const p = object(raw, field);
    return {
      name: str(p.name, `${field}.name`),
      priority: int(p.priority, `${field}.priority`) ?? 0,
    };
  });
  if (classID === undefined && priorities.length === 0) return undefined;
  return defined({ classID, priorities: priorities.length > 0 ? priorities : undefined });
}

function deviceRules(v: unknown): SpecDeviceCgroup[] {
  return array(v, "linux.resources.devices").map((raw, i) => {
    const field = `linux.resources.devices[${i}]`;
    const d = object(raw, field);
    const type = str(d.type, `${field}.type`, "a");
    if (!["a", "c", "b"].includes(type))
      bad(`${field}.type`, `must be a, c or b, not ${JSON.stringify(type)}`);
    const rule: SpecDeviceCgroup = {
      allow: d.allow === true,
      type: type as SpecDeviceCgroup["type"],
      access: str(d.access, `${field}.access`, "rwm"),
    };
    const major = int(d.major, `${field}.major`);
    const minor = int(d.minor, `${field}.minor`);
    if (major !== undefined) rule.major = major;
    if (minor !== undefined) rule.minor = minor;
    return rule;
  });
}

function devices(v: unknown): SpecDevice[] {
  return array(v, "linux.devices").map((raw, i) => {
    const field = `linux.devices[${i}]`;
    const d = object(raw, field);
    const type = str(d.type, `${field}.type`);
    // "u" is a synonym of "c" in the runtime spec.
    if (!["c", "u", "b", "p"].includes(type))
      bad(`${field}.type`, `must be c, u, b or p, not ${JSON.stringify(type)}`);
    // A FIFO has no device numbers (runc makes it with mknod S_IFIFO, 0).
    const need = (k: string) =>
      type === "p"
        ? (int(d[k], `${field}.${k}`) ?? 0)
        : (int(d[k], `${field}.${k}`) ?? bad(`${field}.${k}`, "is required"));
    const dev: SpecDevice = {
      path: absolute(str(d.path, `${field}.path`), `${field}.path`),
      type: type === "u" ? "c" : (type as SpecDevice["type"]),
      major: need("major"),
      minor: need("minor"),
      fileMode: int(d.fileMode, `${field}.fileMode`) ?? 0o666,
    };
    const uid = int(d.uid, `${field}.uid`);
    const gid = int(d.gid, `${field}.gid`);
    if (uid !== undefined && gid !== undefined) Object.assign(dev, { uid, gid });
    return dev;
  });
}

function hooks(v: unknown): Hooks {
  const h = optObject(v, "hooks");
  const out: Hooks = {};
  for (const kind of HOOK_KINDS) {
    if (h[kind] === undefined) continue;
    out[kind] = array(h[kind], `hooks.${kind}`).map((raw, i) => {
      const field = `hooks.${kind}[${i}]`;
      const o = object(raw, field);
      const hook: Hook = { path: absolute(str(o.path, `${field}.path`), `${field}.path`) };
      if (o.args !== undefined) hook.args = strings(o.args, `${field}.args`);
      if (o.env !== undefined) hook.env = strings(o.env, `${field}.env`);
      const timeout = int(o.timeout, `${field}.timeout`);
      if (timeout !== undefined) {
        if (timeout <= 0) bad(`${field}.timeout`, "must be greater than zero");
        hook.timeout = timeout;
      }
      return hook;
    });
  }
  return out;
}

const ROOTFS_PROPAGATIONS = [
  "private",
  "rprivate",
  "shared",
  "rshared",
  "slave",
  "rslave",
  "unbindable",
  "runbindable",
];

function rootfsPropagation(v: unknown): string | undefined {
  const value = str(v, "linux.rootfsPropagation", "");
  if (!value) return undefined;
  if (!ROOTFS_PROPAGATIONS.includes(value)) {
    bad(
      "linux.rootfsPropagation",
      `${JSON.stringify(value)} is not one of ${ROOTFS_PROPAGATIONS.join(", ")}`,
    );
  }
  return value;
}

function sysctls(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  const o = object(v, "linux.sysctl");
  for (const [k, value] of Object.entries(o)) str(value, `linux.sysctl.${k}`);
  return o as Record<string, string>;
}

/** Turn a parsed config.json into minibox's Spec; `bundle` is the bundle directory (absolute). */
export function bundleSpec(
  config: unknown,
  bundle: string,
  host: { arch: string; kernel: string; lsms?: HostLsms },
): BundleSpec {
  const c = object(config, "(top level)");
  const root = object(c.root, "root");
  const rootPath = str(root.path, "root.path");
  const rootfs = posix.resolve(bundle, rootPath);
  const proc = processOf(c.process, host.lsms);
  const linux = optObject(c.linux, "linux");
  const refused = refusedLabel({ mountLabel: linux.mountLabel }, host.lsms ?? NO_LSMS);
  if (refused) bad(refused.field, refused.why);
  const ns = namespaces(linux.namespaces);
  const hasUserns = ns.some((n) => n.type === "user");
  const uidMappings = idMappings(linux.uidMappings, "linux.uidMappings");
  const gidMappings = idMappings(linux.gidMappings, "linux.gidMappings");
  if (hasUserns && (!uidMappings?.length || !gidMappings?.length)) {
    bad("linux.uidMappings", "a user namespace needs uidMappings and gidMappings");
  }
  if (!ns.some((n) => n.type === "mount")) {
    bad(
      "linux.namespaces",
      "minibox-runc needs a mount namespace (a new one, or one to join by path): without one the container's mounts would be made in the caller's",
    );
  }
  const hostname = str(c.hostname, "hostname", "");
  if (hostname && !ns.some((n) => n.type === "uts")) {
    bad("hostname", "setting a hostname needs a uts namespace (new or joined)");
  }
  const spec: Spec = {
    ociVersion: str(c.ociVersion, "ociVersion", ""),
    process: proc,
    root: { path: rootfs, readonly: root.readonly === true },
    hostname,
    mounts: mounts(c.mounts),
    linux: {
      namespaces: ns,
      ...(uidMappings ? { uidMappings } : {}),
      ...(gidMappings ? { gidMappings } : {}),
      resources: resources(linux.resources),
      cgroupsPath: str(linux.cgroupsPath, "linux.cgroupsPath", ""),
      maskedPaths: strings(linux.maskedPaths, "linux.maskedPaths"),
      readonlyPaths: strings(linux.readonlyPaths, "linux.readonlyPaths"),
      devices: devices(linux.devices),
    },
    annotations: Object.fromEntries(
      Object.entries(optObject(c.annotations, "annotations")).map(([k, v]) => [
        k,
        str(v, `annotations.${k}`),
      ]),
    ),
  };
  const sysctl = sysctls(linux.sysctl);
  if (sysctl) spec.linux.sysctl = sysctl;
  const propagation = rootfsPropagation(linux.rootfsPropagation);
  if (propagation) spec.linux.rootfsPropagation = propagation;
  if (linux.seccomp !== undefined && linux.seccomp !== null) {
    const profile = validateProfile(linux.seccomp, "config.json: linux.seccomp");
    const target = { ...host, capabilities: proc.capabilities.bounding };
    spec.linux.seccomp = resolveProfile(profile, target);
  }
  const oomScoreAdj = int(object(c.process, "process").oomScoreAdj, "process.oomScoreAdj");
  if (oomScoreAdj !== undefined) spec.process.oomScoreAdj = oomScoreAdj;
  return { spec, rootfs, hooks: hooks(c.hooks) };
}
