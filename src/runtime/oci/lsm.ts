/**
 * The Linux security modules this host enforces, for the config fields
 * that ask for one: process.apparmorProfile, process.selinuxLabel,
 * linux.mountLabel. minibox-runc applies neither module's labels. Where the
 * host runs the module, a config that asks for a label is refused (a
 * container believed confined would not be); where it does not, the label
 * has nothing to confine with and is accepted, as Docker skips AppArmor on
 * such a host (runc refuses even then).
 */
import { existsSync, readFileSync } from "node:fs";

export interface HostLsms {
  apparmor: boolean;
  selinux: boolean;
}

/** What libapparmor and go-selinux look at: the module's "enabled" flag, selinuxfs. */
export function hostLsms(): HostLsms {
  let apparmor = false;
  try {
    apparmor = readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").trim() === "Y";
  } catch {
    // No AppArmor module in this kernel.
  }
  return { apparmor, selinux: existsSync("/sys/fs/selinux/enforce") };
}

/** The field asking for a label the host would enforce, with why it is refused; undefined if none. */
export function refusedLabel(
  labels: { apparmorProfile?: unknown; selinuxLabel?: unknown; mountLabel?: unknown },
  lsms: HostLsms,
): { field: string; why: string } | undefined {
  const asked = (v: unknown) => typeof v === "string" && v !== "";
  const why = (module: string) =>
    `this host enforces ${module} and minibox-runc applies no ${module} labels: remove the field, or use runc`;
  if (lsms.apparmor && asked(labels.apparmorProfile))
    return { field: "process.apparmorProfile", why: why("AppArmor") };
  if (lsms.selinux && asked(labels.selinuxLabel))
    return { field: "process.selinuxLabel", why: why("SELinux") };
  if (lsms.selinux && asked(labels.mountLabel))
    return { field: "linux.mountLabel", why: why("SELinux") };
  return undefined;
}
