/**
 * linux.resources a spec may ask for that this host's cgroups cannot give
 * (no hugetlb, net_cls or net_prio controller; cgroup v2 has no swappiness
 * nor OOM-killer switch), or that minibox-runc does not apply: refused at
 * create with the field's name, before anything is made — never ignored.
 * refusedResource is pure (the unit tests give it a host); hostCgroups
 * looks at the machine.
 */
import path from "node:path";
import { MiniboxError } from "../../errors.js";
import { DEFAULT_FS_ROOT } from "../cgroups/common.js";
import {
  detectCgroupVersion,
  findV2Root,
  mountedV1Controllers,
  v2Controllers,
} from "../cgroups/detect.js";
import type { SpecResources } from "../spec.js";

export interface HostCgroups {
  version: 1 | 2;
  /** Every controller the host offers (v1: mounted hierarchies; v2: the root's cgroup.controllers). */
  controllers: ReadonlySet<string>;
}

/** The cgroup version minibox drives here and the controllers there. */
export function hostCgroups(fsRoot: string = DEFAULT_FS_ROOT): HostCgroups {
  const version = detectCgroupVersion(fsRoot);
  if (version === 1) return { version, controllers: mountedV1Controllers() };
  const root = findV2Root(fsRoot) ?? fsRoot;
  return { version, controllers: new Set(v2Controllers(path.resolve(root))) };
}

/** The one line that says which field this host cannot apply, or undefined. */
export function refusedResource(r: SpecResources, host: HostCgroups): string | undefined {
  const missing = (field: string, controller: string) =>
    `linux.resources.${field}: this host has no ${controller} cgroup controller`;
  const notApplied = (field: string, what: string) =>
    `linux.resources.${field}: minibox-runc does not apply ${what}`;
  const has = (c: string) => host.controllers.has(c);
  if (r.hugepageLimits?.length) {
    return has("hugetlb")
      ? notApplied("hugepageLimits", "hugetlb limits")
      : missing("hugepageLimits", "hugetlb");
  }
  if (r.network?.classID !== undefined) {
    return host.version === 1 && has("net_cls")
      ? notApplied("network.classID", "net_cls class IDs")
      : missing("network.classID", "net_cls");
  }
  if (r.network?.priorities?.length) {
    return host.version === 1 && has("net_prio")
      ? notApplied("network.priorities", "net_prio priorities")
      : missing("network.priorities", "net_prio");
  }
  if (host.version === 2) {
    if (r.memory?.swappiness !== undefined) {
      return "linux.resources.memory.swappiness: cgroup v2 has no memory.swappiness (runc refuses it too)";
    }
    if (r.memory?.disableOOMKiller) {
      return "linux.resources.memory.disableOOMKiller: cgroup v2 cannot turn the OOM killer off";
    }
    if (r.blockIO) return notApplied("blockIO", "blkio limits on cgroup v2 (cgroup v1 only)");
  }
  const b = r.blockIO;
  if (b) {
    if (!has("blkio")) return missing("blockIO", "blkio");
    if (b.leafWeight !== undefined) return notApplied("blockIO.leafWeight", "leaf weights");
    const i = (b.weightDevice ?? []).findIndex((d) => d.leafWeight !== undefined);
    if (i >= 0) return notApplied(`blockIO.weightDevice[${i}].leafWeight`, "leaf weights");
  }
  return undefined;
}

/** Throw the refusal (config.json: …) when this host cannot apply the spec's resources. */
export function checkHostResources(r: SpecResources, host: HostCgroups = hostCgroups()): void {
  const refused = refusedResource(r, host);
  if (refused) throw new MiniboxError(`config.json: ${refused}`);
}
