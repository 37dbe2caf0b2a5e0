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
import type { SpecDevice } from "../devices.js";
import { resolveProfile } from "../seccomp/profile.js";
import { validateProfile } from "../seccomp/validate.js";
import {
  ALL_CAPABILITIES,
  type NamespaceType,
  type Spec,
  type SpecIdMapping,
  type SpecMount,
  type SpecNamespace,
} from "../spec.js";
import { resources } from "./bundle-resources.js";
import { type HostLsms, refusedLabel } from "./lsm.js";
import { absolute, array, bad, int, object, optObject, str, strings } from "./spec-fields.js";

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

const NO_LSMS: HostLsms = { apparmor: false, selinux: false };

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
