/**
 * What `--privileged` reads of the host: its device nodes, and the
 * capabilities minibox itself holds (without a user namespace, a container
 * cannot be given more: capset would fail with EPERM).
 */
import { readFileSync } from "node:fs";
import { devicesUnder, type SpecDevice } from "./devices.js";
import { CAPABILITIES } from "./plan/capabilities.js";

/**
 * The CAP_* names in this process's bounding set (/proc/self/status
 * CapBnd). A minibox run by a root whose own set is cut (a sandbox, a
 * container) can give no more to a --privileged --userns=host container.
 */
export function callerCapabilities(status = "/proc/self/status"): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync(status, "utf8"));
  const mask = BigInt(`0x${m?.[1] ?? "0"}`);
  return Object.entries(CAPABILITIES)
    .filter(([, bit]) => (mask >> BigInt(bit)) & 1n)
    .map(([name]) => name);
}

/** Directories moby's HostDevices skips: the container has its own. */
const SKIPPED_DIRS = new Set(["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]);

/**
 * The host's device nodes (moby's HostDevices): every character and block
 * device under /dev, its subdirectories included, except those that are
 * per-container anyway (pts, shm, mqueue, fd) and the host's console.
 */
export function hostDevices(dir = "/dev"): SpecDevice[] {
  try {
    return devicesUnder(dir, dir, SKIPPED_DIRS).filter((d) => d.path !== "/dev/console");
  } catch {
    return [];
  }
}
