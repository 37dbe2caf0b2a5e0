// What test/vm/cli-check.ts observes inside the VM, and where the pieces it needs are put there.

/** Prefix of the one console line that carries the JSON result. */
export const CLI_CHECK_MARKER = "MINIBOX-CLI-CHECK-RESULT ";
/** A checkout's layout inside the VM: dist/, node_modules/koffi, native/build/minibox-exec. */
export const CLI_DIR = "/opt/minibox";
/** The busybox rootfs tarball `minibox import` reads. */
export const ROOTFS_TAR = "/images/busybox-rootfs.tar";
/** minibox's --root inside the VM: a tmpfs (overlayfs needs xattrs for its upper dirs). */
export const STATE_DIR = "/var/lib/minibox";
export const VM_IMAGE = "vmtest/busybox:1";

export interface CliRun {
  args: string[];
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Files read from the container's cgroup while it ran (runs with a `whileRunning` probe). */
  observed?: Record<string, string | undefined>;
}

export interface CliCheckResult {
  runs: Record<string, CliRun>;
  /** Does /sys/fs/cgroup/minibox exist after every container is gone? */
  miniboxCgroupAfter?: boolean;
  /** Mounts under STATE_DIR (other than its tmpfs) after every container is gone. */
  mountsAfter?: string[];
  error?: string;
}
