// The VM's whole userland, as one initramfs (newc cpio, uncompressed: under
// TCG, unpacking gzip would cost more than reading 100 MB): Debian's static
// busybox, the host's node with the shared libraries it links, TypeScript
// entries bundled with esbuild, any extra host files, and an /init that
// mounts proc, sys, dev and a pure cgroup2 hierarchy at /sys/fs/cgroup, runs
// the payload and powers off.
import { execFileSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";
import { type CpioEntry, writeCpio } from "./cpio.js";

export const BUSYBOX = "/bin/busybox";
/** Printed by /init once the filesystems are mounted, before the payload. */
export const BOOTED_MARKER = "MINIBOX-VM-BOOTED";

export interface InitramfsSpec {
  /** Where the image and the bundles go (a temporary directory the caller removes). */
  workDir: string;
  /** TypeScript entries → path inside the VM of their bundle (ESM, .mjs). */
  bundles?: Record<string, string>;
  /** Host files to copy: path inside the VM → host path (binaries: see `binaries`). */
  files?: Record<string, string>;
  /** Files created from content: path inside the VM → content. */
  contents?: Record<string, { data: Buffer | string; mode?: number }>;
  /** Dynamically linked host executables to copy with every library `ldd` lists (node is always there). */
  binaries?: string[];
  /** Kernel modules to insmod at boot, in order (host paths). */
  modules?: string[];
  /** Shell commands /init runs (as busybox sh) once everything is mounted. */
  payload: string;
}

/** `ldd` → the libraries and the loader a binary needs, as absolute paths. */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync("ldd", [binary], { encoding: "utf8" });
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  if (!libs.some((l) => l.includes("ld-linux"))) {
    throw new Error(`ldd ${binary}: no dynamic loader found in:\n${out}`);
  }
  return libs;
}

/**
 * /init only re-roots: pivot_root(2) refuses the initramfs's own root (rootfs
 * has no parent mount), and minibox pivots into every container's overlay.
 * A bind mount of / moved onto / is an ordinary mount; chroot into it and
 * run /init2, which does the work.
 */
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /newroot
/bin/busybox mount --bind / /newroot
cd /newroot
/bin/busybox mount --move . /
exec /bin/busybox chroot . /bin/busybox sh /init2
`;

function init2Script(modules: string[], payload: string): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Like systemd on Debian 12: a pure cgroup v2 hierarchy, nothing else.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
${modules.map((m) => `insmod /lib/modules/${path.basename(m)}`).join("\n")}
echo "${BOOTED_MARKER} uptime $(cut -d' ' -f1 /proc/uptime)"
${payload}
echo "MINIBOX-VM-POWEROFF uptime $(cut -d' ' -f1 /proc/uptime)"
poweroff -f
`;
}

/** Bundle the entries, gather the files and write `<workDir>/initramfs.cpio`; returns its path. */
export async function buildInitramfs(spec: InitramfsSpec): Promise<string> {
  const entries = new Map<string, CpioEntry>();
  const dirs = new Set<string>();
  const addDirs = (p: string) => {
    for (let d = path.posix.dirname(p); d !== "/" && d !== "."; d = path.posix.dirname(d)) {
      dirs.add(d);
    }
  };
  const addFile = (vmPath: string, e: CpioEntry) => {
    addDirs(vmPath);
    entries.set(vmPath, e);
  };
  for (const d of ["/bin", "/dev", "/proc", "/sys", "/tmp", "/root", "/lib/modules"]) dirs.add(d);

  addFile("/bin/busybox", { type: "file", path: "/bin/busybox", mode: 0o755, source: BUSYBOX });
  addFile("/bin/sh", { type: "symlink", path: "/bin/sh", target: "busybox" });
  // The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
  addFile("/dev/console", { type: "chardev", path: "/dev/console", major: 5, minor: 1 });

  for (const bin of ["/usr/bin/node", ...(spec.binaries ?? [])]) {
    addFile(bin, { type: "file", path: bin, mode: 0o755, source: realpathSync(bin) });
    for (const lib of sharedLibraries(bin)) {
      addFile(lib, { type: "file", path: lib, mode: 0o755, source: realpathSync(lib) });
    }
  }
  for (const [vmPath, host] of Object.entries(spec.files ?? {})) {
    if (!existsSync(host)) throw new Error(`initramfs: ${host} does not exist`);
    addFile(vmPath, { type: "file", path: vmPath, mode: 0o755, source: realpathSync(host) });
  }
  for (const [vmPath, c] of Object.entries(spec.contents ?? {})) {
    addFile(vmPath, { type: "file", path: vmPath, mode: c.mode ?? 0o644, data: c.data });
  }
  for (const m of spec.modules ?? []) {
    const vmPath = `/lib/modules/${path.basename(m)}`;
    addFile(vmPath, { type: "file", path: vmPath, source: m });
  }
  for (const [entry, vmPath] of Object.entries(spec.bundles ?? {})) {
    const outfile = path.join(spec.workDir, "bundles", vmPath.replace(/^\/+/, ""));
    await build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node18",
      outfile,
      logLevel: "warning",
    });
    addFile(vmPath, { type: "file", path: vmPath, source: outfile });
  }
  addFile("/init", { type: "file", path: "/init", mode: 0o755, data: INIT });
  addFile("/init2", {
    type: "file",
    path: "/init2",
    mode: 0o755,
    data: init2Script(spec.modules ?? [], spec.payload),
  });

  const ordered: CpioEntry[] = [...dirs]
    .sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b))
    .map((d) => ({ type: "dir", path: d }));
  ordered.push(...entries.values());
  const image = path.join(spec.workDir, "initramfs.cpio");
  writeCpio(image, ordered);
  return image;
}
