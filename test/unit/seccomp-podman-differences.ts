// The known differences between minibox's default seccomp profile and
// podman's, with their reasons: checked by seccomp-podman.test.ts against
// both profiles and against the table in docs/security.md.
import { DEFAULT_CAPABILITIES } from "../../src/runtime/spec.js";

export type Capset = "default" | "+SYS_ADMIN" | "+SYS_PTRACE";
export const CAPSETS: Record<Capset, readonly string[]> = {
  default: DEFAULT_CAPABILITIES,
  "+SYS_ADMIN": [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"],
  "+SYS_PTRACE": [...DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"],
};
export const ALL: Capset[] = ["default", "+SYS_ADMIN", "+SYS_PTRACE"];
const NO_ADMIN: Capset[] = ["default", "+SYS_PTRACE"];
const NO_PTRACE: Capset[] = ["default", "+SYS_ADMIN"];

export interface Known {
  names: string[];
  caps: Capset[];
  minibox: string;
  podman: string;
  reason: string;
}

/** The known differences (the same rows as docs/security.md's table). */
export const KNOWN: Known[] = [
  {
    names: ["clone", "unshare"],
    caps: NO_ADMIN,
    minibox: "conditional",
    podman: "allow",
    reason:
      "Namespace flags need CAP_SYS_ADMIN, as Docker: a new user namespace gives back every capability over new namespaces, the first step of most recent kernel exploits. Threads, fork and unshare(CLONE_FS) still work.",
  },
  {
    names: ["clone3"],
    caps: NO_ADMIN,
    minibox: "ENOSYS",
    podman: "allow",
    reason:
      "clone3's flags are in memory the filter cannot read: ENOSYS makes glibc fall back to clone, whose flags it checks (Docker does the same).",
  },
  {
    names: [
      "fsconfig",
      "fsmount",
      "fsopen",
      "fspick",
      "mount",
      "mount_setattr",
      "move_mount",
      "open_tree",
      "pivot_root",
      "setns",
      "syslog",
      "umount",
      "umount2",
    ],
    caps: NO_ADMIN,
    minibox: "EPERM",
    podman: "allow",
    reason:
      "Only with CAP_SYS_ADMIN, as Docker (pivot_root too, which Docker never allows): podman leaves them to the kernel's capability checks; the filter keeps the mount and namespace code out of reach even if one of those checks is wrong.",
  },
  {
    names: ["lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "quotactl_fd"],
    caps: NO_ADMIN,
    minibox: "EPERM",
    podman: "ENOSYS",
    reason: "Newer than podman's profile; Docker allows them only with CAP_SYS_ADMIN.",
  },
  {
    names: ["lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "quotactl_fd"],
    caps: ["+SYS_ADMIN"],
    minibox: "allow",
    podman: "ENOSYS",
    reason: "Newer than podman's profile; Docker allows them with CAP_SYS_ADMIN.",
  },
  {
    names: [
      "cachestat",
      "fchmodat2",
      "futex_requeue",
      "futex_wait",
      "futex_waitv",
      "futex_wake",
      "getxattrat",
      "io_pgetevents_time64",
      "listmount",
      "listxattrat",
      "map_shadow_stack",
      "mseal",
      "removexattrat",
      "setxattrat",
      "statmount",
      "uretprobe",
    ],
    caps: ALL,
    minibox: "allow",
    podman: "ENOSYS",
    reason:
      "Newer than podman's profile (Debian 12's containers-common); Docker allows them: process-local variants of allowed calls (futex, xattr, chmod, mount information of the container's own namespace).",
  },
  {
    names: ["keyctl"],
    caps: ALL,
    minibox: "EPERM",
    podman: "allow",
    reason:
      "The kernel keyring is not namespaced: keys would be shared with the host and other containers (Docker refuses it too).",
  },
  {
    names: ["add_key", "request_key"],
    caps: ALL,
    minibox: "EPERM",
    podman: "ENOSYS",
    reason:
      "The kernel keyring is not namespaced (Docker refuses them too); EPERM, as for every known refused syscall.",
  },
  {
    names: ["io_uring_enter", "io_uring_register", "io_uring_setup"],
    caps: ALL,
    minibox: "EPERM",
    podman: "ENOSYS",
    reason:
      "io_uring runs operations this filter never sees and has been the source of many kernel exploits; Docker refuses it since 2023. Programs fall back to ordinary I/O.",
  },
  {
    names: ["get_mempolicy", "mbind", "set_mempolicy"],
    caps: ALL,
    minibox: "EPERM",
    podman: "allow",
    reason: "NUMA memory policy only with CAP_SYS_NICE, as Docker.",
  },
  {
    names: ["set_mempolicy_home_node"],
    caps: ALL,
    minibox: "EPERM",
    podman: "ENOSYS",
    reason: "Newer than podman's profile; NUMA memory policy only with CAP_SYS_NICE, as Docker.",
  },
  {
    names: ["ptrace", "process_vm_readv", "process_vm_writev"],
    caps: NO_PTRACE,
    minibox: "EPERM",
    podman: "allow",
    reason:
      "Only with --cap-add SYS_PTRACE (Docker allows them on kernels ≥ 4.8): debuggers are run with that option anyway, and ptrace has a long history of privilege-escalation bugs (CVE-2019-13272).",
  },
  {
    names: ["pidfd_getfd"],
    caps: NO_PTRACE,
    minibox: "EPERM",
    podman: "allow",
    reason: "Takes another process's file descriptors: only with CAP_SYS_PTRACE, as Docker.",
  },
  {
    names: ["reboot"],
    caps: ALL,
    minibox: "EPERM",
    podman: "allow",
    reason: "Only with CAP_SYS_BOOT, as Docker.",
  },
  {
    names: ["socket"],
    caps: ALL,
    minibox: "conditional",
    podman: "allow",
    reason:
      "AF_ALG (the kernel crypto API) and AF_VSOCK are refused, as Docker; minibox also checks the family's high 32 bits, which Docker's rule lets through.",
  },
  {
    names: ["io_pgetevents", "vmsplice"],
    caps: ALL,
    minibox: "allow",
    podman: "EPERM",
    reason:
      "Docker allows them: io_pgetevents is io_getevents with a signal mask, vmsplice is splice from memory.",
  },
  {
    names: ["nice"],
    caps: ALL,
    minibox: "allow",
    podman: "EPERM",
    reason:
      "The same as setpriority, which both allow; raising a priority still needs CAP_SYS_NICE.",
  },
];

/** The row of docs/security.md's table. */
export function render(k: Known): string {
  return `| ${k.names.join(", ")} | ${k.caps.join(", ")} | ${k.minibox} | ${k.podman} | ${k.reason} |`;
}
