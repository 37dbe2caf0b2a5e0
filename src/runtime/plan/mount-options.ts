/** mount(2) flags, and OCI mount options split into those flags and filesystem data. */
import type { MountStep } from "./steps.js";

export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  NOATIME: 0x400,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

/** Mount options that are flags (the rest are filesystem data, like "mode=755"). */
export const OPTION_FLAGS: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  noatime: MS.NOATIME,
  relatime: MS.RELATIME,
  strictatime: MS.STRICTATIME,
  bind: MS.BIND,
  rbind: MS.BIND | MS.REC,
};
/**
 * Propagation, a mount(2) call of its own after the mount. private and
 * rprivate need none: the executor makes its whole mount namespace
 * rprivate first (mountns), and every mount made in it starts private.
 */
export const PROPAGATION_FLAGS: Record<string, number> = {
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};
const IGNORED_OPTIONS = new Set([
  "rw",
  "idmap", // handled by the plan (an idmap-mount step), not a mount(2) flag
  "private",
  "rprivate",
  ...Object.keys(PROPAGATION_FLAGS), // propagationSteps
]);

/** The mount's propagation option (the last one given), as its own step. */
export function propagationSteps(options: string[] = [], target: string): MountStep[] {
  const last = options.filter((o) => o in PROPAGATION_FLAGS).at(-1);
  if (!last) return [];
  return [mountStep("", target, "", PROPAGATION_FLAGS[last] as number, "")];
}

export function flagNames(flags: number): string {
  const names = Object.entries(MS)
    .filter(([, bit]) => flags & bit)
    .map(([name]) => `MS_${name}`);
  return names.length ? names.join("|") : "0";
}

export function splitOptions(options: string[] = []): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    if (o in OPTION_FLAGS) flags |= OPTION_FLAGS[o] as number;
    else if (!IGNORED_OPTIONS.has(o)) data.push(o);
  }
  return { flags, data: data.join(",") };
}

export function mountStep(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data: string,
): MountStep {
  const describe = `mount ${source || "none"} on ${target} type=${fstype || "none"} flags=${flagNames(flags)}${data ? ` data=${data}` : ""}`;
  return { op: "mount", source, target, fstype, flags, data, describe };
}
