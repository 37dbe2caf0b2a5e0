/**
 * What `--privileged` reads of the host: its device nodes, and the
 * capabilities minibox itself holds (without a user namespace, a container
 * cannot be given more: capset would fail with EPERM).
 */
import { lstatSync, readdirSync, readFileSync, type Stats } from "node:fs";
import { major, minor } from "../sys/devnum.js";
import type { SpecDevice } from "./devices.js";
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
  const out: SpecDevice[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const path = `${dir}/${name}`;
    // lstat: a symlink (/dev/stdin, /dev/core…) is no node of its own.
    const st: Stats | undefined = lstatSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) {
      if (!SKIPPED_DIRS.has(name)) out.push(...hostDevices(path));
      continue;
    }
    if (path === "/dev/console" || !(st.isCharacterDevice() || st.isBlockDevice())) continue;
    out.push({
      path,
      type: st.isBlockDevice() ? "b" : "c",
      major: major(st.rdev),
      minor: minor(st.rdev),
      fileMode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
    });
  }
  return out;
}
