/**
 * `--sysctl NAME=VALUE`: only the kernel settings that belong to one of the
 * container's own namespaces, so that setting one changes nothing on the
 * host (runc's validation, libcontainer/configs/validate): net.* (its
 * network namespace), the IPC ones (kernel.shm*, kernel.msg*, kernel.sem,
 * fs.mqueue.*), kernel.domainname (its UTS namespace). Pure.
 */
import { MiniboxError } from "../errors.js";

/** The IPC namespace's settings (runc's list). */
const IPC_SYSCTLS: ReadonlySet<string> = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);

const ALLOWED_TEXT =
  "net.*, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, fs.mqueue.* and kernel.domainname";

/** "net.ipv4.ip_forward=1" → ["net.ipv4.ip_forward", "1"] (the value may hold "=" and spaces). */
export function parseSysctlFlag(flag: string): [name: string, value: string] {
  const eq = flag.indexOf("=");
  const name = eq < 0 ? flag : flag.slice(0, eq);
  // "/" would leave /proc/sys; "." and ".." segments too.
  const badName = !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(name);
  if (eq < 0 || badName) {
    throw new MiniboxError(
      `invalid argument "${flag}" for "--sysctl" flag: use NAME=VALUE`,
      "e.g. --sysctl net.ipv4.ip_forward=1",
    );
  }
  return [name, flag.slice(eq + 1)];
}

/** Which of the container's namespaces are its own (not the host's). */
export interface SysctlNamespaces {
  network: boolean;
  ipc: boolean;
  uts: boolean;
}

/** Refuse a setting that is not namespaced, or whose namespace is the host's. */
export function checkSysctl(name: string, own: SysctlNamespaces): void {
  if (name.startsWith("net.")) {
    if (own.network) return;
    throw new MiniboxError(
      `sysctl "${name}" not allowed in host network namespace`,
      "net.* settings need a network namespace of the container's own: drop --network host",
    );
  }
  if (IPC_SYSCTLS.has(name) || name.startsWith("fs.mqueue.")) {
    if (own.ipc) return;
    throw new MiniboxError(`sysctl "${name}" is not allowed in the host's ipc namespace`);
  }
  if (name === "kernel.domainname" && own.uts) return;
  if (name === "kernel.hostname") {
    throw new MiniboxError(
      `sysctl "kernel.hostname" is not allowed: it conflicts with --hostname`,
      "use --hostname",
    );
  }
  throw new MiniboxError(
    `sysctl "${name}" is not allowed: it is not in one of the container's own namespaces, so setting it would change the host`,
    `only these can be set: ${ALLOWED_TEXT}`,
  );
}

/** The --sysctl flags, checked, as the spec's linux.sysctl (a later NAME wins). */
export function sysctlsFrom(
  flags: readonly string[],
  own: SysctlNamespaces,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const [name, value] = parseSysctlFlag(flag);
    checkSysctl(name, own);
    out[name] = value;
  }
  return out;
}

/** Where the container's init writes a setting: under its own /proc (mounted at `proc`). */
export function sysctlPath(proc: string, name: string): string {
  return `${proc}/sys/${name.replaceAll(".", "/")}`;
}
