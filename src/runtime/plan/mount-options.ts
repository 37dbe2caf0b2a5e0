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
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
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
const IGNORED_OPTIONS = new Set([
  "rw",
  "idmap", // handled by the plan (an idmap-mount step), not a mount(2) flag
  "private",
  "rprivate",
  "slave",
  "rslave",
  "shared",
  "rshared",
]);

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
