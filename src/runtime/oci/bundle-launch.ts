/**
 * From an OCI bundle to a running executor: config.json checked
 * (bundle-spec.ts), the cgroup made where linux.cgroupsPath says, the plan
 * built by the same planner `minibox run` uses — the bundle's rootfs bound
 * where run's overlay goes — and the executor started. `create` stops the
 * init before its program (the start FIFO); `run` lets it go on and waits.
 */
import { readFileSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import {
  type BlkioDeviceLimit,
  type Cgroup,
  type CgroupLimits,
  createCgroup,
  detectCgroupVersion,
} from "../cgroups/index.js";
import { DEFAULT_DEVICE_RULES, type SpecDeviceCgroup } from "../devices.js";
import { Execution, type ExecutorEvents } from "../executor.js";
import { buildPlan } from "../plan.js";
import { compiledSeccomp } from "../seccomp/cache.js";
import type { Spec, SpecBlockIO, SpecMount, SpecThrottle } from "../spec.js";
import { type BundleSpec, bundleSpec } from "./bundle-spec.js";
import { checkHostResources } from "./host-resources.js";
import { hostLsms } from "./lsm.js";
import { execFifo, seccompCacheDir } from "./runtime-state.js";

/** The bundle's config.json, read and checked (the bundle defaults to the working directory, as runc's). */
export function loadBundle(bundle: string | undefined): BundleSpec & { bundle: string } {
  const dir = path.resolve(bundle ?? ".");
  let text: string;
  try {
    text = readFileSync(path.join(dir, "config.json"), "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw new MiniboxError(`JSON specification file config.json not found in ${dir}`);
    throw new MiniboxError(`cannot read ${dir}/config.json: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MiniboxError(`config.json: not valid JSON: ${(err as Error).message}`);
  }
  const loaded = bundleSpec(json, dir, {
    arch: process.arch,
    kernel: os.release(),
    lsms: hostLsms(),
  });
  checkHostResources(loaded.spec.linux.resources);
  if (!statSync(loaded.rootfs, { throwIfNoEntry: false })?.isDirectory()) {
    throw new MiniboxError(`config.json: root.path: ${loaded.rootfs} is not a directory`);
  }
  return { ...loaded, bundle: dir };
}

/**
 * A `cgroup` mount on a v2 host is cgroup2 (its own cgroup namespace's
 * view); on v1 the planner binds the container's hierarchies
 * (child-mount-steps.ts cgroupV1Steps).
 */
export function cgroupMountFor(m: SpecMount, version: 1 | 2): SpecMount {
  if (m.type !== "cgroup" || version === 1) return m;
  return { ...m, type: "cgroup2", source: "cgroup2" };
}

/**
 * The device cgroup's rules: the spec's, then (as runc appends them) the
 * standard devices every container may use — /dev/null, zero, full, tty,
 * (u)random, ptys, tun — and the spec's own linux.devices nodes.
 */
export function deviceRulesOf(spec: Spec): SpecDeviceCgroup[] | undefined {
  const rules = spec.linux.resources.devices;
  if (!rules) return undefined;
  // A FIFO is no device: the device cgroup does not govern it.
  const nodes = (spec.linux.devices ?? []).flatMap((d): SpecDeviceCgroup[] =>
    d.type === "p"
      ? []
      : [
          {
            allow: true,
            type: d.type,
            major: d.major,
            minor: d.minor,
            access: "rwm",
          },
        ],
  );
  return [...rules, ...DEFAULT_DEVICE_RULES.map((r) => ({ ...r })), ...nodes];
}

/** linux.resources as the cgroup module's limits. */
export function limitsOf(spec: Spec): CgroupLimits {
  const r = spec.linux.resources;
  const limits: CgroupLimits = {
    memory: r.memory?.limit && r.memory.limit > 0 ? r.memory.limit : undefined,
    memorySwap: r.memory?.swap,
    memoryReservation: r.memory?.reservation || undefined,
    memorySwappiness: r.memory?.swappiness,
    disableOomKiller: r.memory?.disableOOMKiller || undefined,
    cpuQuota: r.cpu?.quota && r.cpu.quota > 0 ? r.cpu.quota : undefined,
    cpuPeriod: r.cpu?.period,
    cpuShares: r.cpu?.shares,
    cpusetCpus: r.cpu?.cpus,
    cpusetMems: r.cpu?.mems,
    pidsLimit: r.pids?.limit,
    devices: deviceRulesOf(spec),
    blkioWeight: r.blockIO?.weight || undefined,
    blkioDevices: blkioDevicesOf(r.blockIO),
  };
  // Absent keys, not undefined ones: the limits are compared and printed whole.
  return Object.fromEntries(
    Object.entries(limits).filter(([, v]) => v !== undefined),
  ) as CgroupLimits;
}

const THROTTLE_FILES: Array<[keyof SpecBlockIO, BlkioDeviceLimit["file"]]> = [
  ["throttleReadBpsDevice", "throttle.read_bps_device"],
  ["throttleWriteBpsDevice", "throttle.write_bps_device"],
  ["throttleReadIOPSDevice", "throttle.read_iops_device"],
  ["throttleWriteIOPSDevice", "throttle.write_iops_device"],
];

/** blockIO's per-device weights and throttles as blkio file lines; undefined when none. */
export function blkioDevicesOf(b: SpecBlockIO | undefined): BlkioDeviceLimit[] | undefined {
  if (!b) return undefined;
  const out: BlkioDeviceLimit[] = [];
  for (const d of b.weightDevice ?? []) {
    if (d.weight !== undefined) out.push({ file: "weight_device", ...pick(d), value: d.weight });
  }
  for (const [key, file] of THROTTLE_FILES) {
    for (const t of (b[key] ?? []) as SpecThrottle[]) {
      out.push({ file, ...pick(t), value: t.rate });
    }
  }
  return out.length > 0 ? out : undefined;
}

const pick = (d: { major: number; minor: number }) => ({ major: d.major, minor: d.minor });

/**
 * linux.cgroupsPath → where the cgroup module puts the container: "/a/b/c"
 * is c under /a/b from each hierarchy's root (as runc); "a/b" is read the
 * same way; absent, minibox's own place (its own cgroup's minibox/<id>).
 */
export function cgroupPlace(cgroupsPath: string, id: string): { parent?: string; name: string } {
  if (!cgroupsPath) return { name: id };
  if (/^[^/]*:[^/]*:[^/]*$/.test(cgroupsPath)) {
    throw new MiniboxError(
      `config.json: linux.cgroupsPath: ${JSON.stringify(cgroupsPath)} is systemd's slice:prefix:name form; minibox-runc drives cgroupfs (give a path such as /mygroup/${id})`,
    );
  }
  const parts = cgroupsPath.split("/").filter(Boolean);
  const name = parts.pop() ?? id;
  return { parent: `/${parts.join("/")}`, name };
}

/** Bind mounts whose source is a file: their mount point is a file too. */
function fileMounts(spec: Spec): string[] {
  return spec.mounts
    .filter((m) => m.type === "bind" && statSync(m.source, { throwIfNoEntry: false })?.isFile())
    .map((m) => m.destination);
}

export interface BundleLaunch {
  id: string;
  dir: string;
  loaded: BundleSpec & { bundle: string };
  cgroup: Cgroup;
  cgroupPlace: { parent?: string; name: string };
  execution: Execution;
  /** A hook run while the init was held failed (the init was killed). */
  heldError?: Error;
}

export interface LaunchRequest {
  id: string;
  /** The container's state directory (<root>/<id>), made by the caller. */
  dir: string;
  /** minibox's --root for the seccomp cache: the runtime's own --root. */
  root: string;
  loaded: BundleSpec & { bundle: string };
  /** create: stop before the program until `start`. */
  create: boolean;
  consoleSocket?: string;
  /** Our descriptors 3.. the program gets (LISTEN_FDS, --preserve-fds). */
  passFds?: number;
  /** Hooks to run while the executor holds the init after its namespaces exist (createRuntime…). */
  whileHeld?: (pid: number) => Promise<void>;
  events?: ExecutorEvents;
}

/** The cgroup, the plan, the executor started. The caller waits on `execution.done`. */
export async function launchBundle(req: LaunchRequest): Promise<BundleLaunch> {
  const { id, dir, loaded } = req;
  const version = detectCgroupVersion();
  const spec: Spec = {
    ...loaded.spec,
    mounts: loaded.spec.mounts.map((m) => cgroupMountFor(m, version)),
  };
  const place = cgroupPlace(spec.linux.cgroupsPath, id);
  await mkdir(path.join(dir, "rootfs"), { mode: 0o700 });
  // freezer: pause and resume (v1 needs a directory in that hierarchy too).
  const cgroup = await createCgroup(place.name, limitsOf(spec), {
    parent: place.parent,
    freezer: true,
  });
  try {
    const seccomp = spec.linux.seccomp
      ? (await compiledSeccomp(seccompCacheDir(req.root), spec.linux.seccomp, process.arch)).filter
      : undefined;
    const plan = buildPlan(spec, {
      containerDir: dir,
      layers: [],
      idmappedLayers: false,
      cgroupProcs: cgroup.procsFiles,
      waitForGo: req.whileHeld !== undefined,
      init: false,
      interactive: true,
      fileMounts: fileMounts(spec),
      arch: process.arch,
      seccomp,
      rootfsBind: loaded.rootfs,
      startFifo: req.create ? execFifo(dir) : undefined,
      consoleSocket: req.consoleSocket,
      cgroupV1Dirs: version === 1 ? cgroup.dirs : undefined,
      passFds: req.passFds,
    });
    const held = req.whileHeld;
    const launch = { heldError: undefined as Error | undefined };
    const execution: Execution = new Execution(plan, {
      trace: false,
      letGo: req.create,
      passFds: req.passFds,
      planFile: path.join(dir, "plan.txt"),
      events: {
        ...req.events,
        onPid: async (pid) => {
          await req.events?.onPid?.(pid);
          if (!held) return;
          try {
            await held(pid);
            execution.go();
          } catch (err) {
            launch.heldError = err as Error;
            execution.signal("SIGKILL");
          }
        },
      },
    });
    return Object.assign(launch, {
      id,
      dir,
      loaded: { ...loaded, spec },
      cgroup,
      cgroupPlace: place,
      execution,
    });
  } catch (err) {
    await cgroup.destroy().catch(() => undefined);
    throw err;
  }
}
