// Debian's stock kernel for the cgroup v2 VM, fetched once with
// `apt-get download` (never installed: that would run initramfs and grub
// hooks on the host) and cached, with the few files the VM needs extracted
// next to the .deb, in rootfs-cache/vm/<package>/ (git-ignored).
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const KERNEL_CACHE = path.join(REPO_ROOT, "rootfs-cache", "vm");
const META_PACKAGE = "linux-image-amd64";

export interface Kernel {
  /** e.g. linux-image-6.1.0-56-amd64 */
  package: string;
  /** e.g. 6.1.0-56-amd64 */
  release: string;
  vmlinuz: string;
  /**
   * The same kernel uncompressed (ELF), when it can be booted directly
   * (CONFIG_PVH=y) and `xz` was there to decompress it: under TCG, the
   * bzImage decompressing itself costs ~4 s of every boot.
   */
  vmlinux?: string;
  /** The kernel's build configuration (boot/config-*). */
  config: string;
  /** overlay.ko when overlayfs is a module (CONFIG_OVERLAY_FS=m), else undefined. */
  overlayModule?: string;
}

const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };

function run(cmd: string, args: string[], cwd?: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 240_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ?? ""}` };
}

let updated = false;
/** `apt-get update -qq`, at most once per process: the lists may be missing on a fresh machine. */
function aptUpdate(): void {
  if (updated) return;
  updated = true;
  run("apt-get", ["update", "-qq"]);
}

/** The versioned package the metapackage depends on, from apt's lists. */
function resolvePackage(): string | undefined {
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = run("apt-cache", ["depends", META_PACKAGE]);
    const m = /Depends:\s*(linux-image-\d\S*-amd64)\b/.exec(r.out);
    if (r.ok && m) return m[1];
    aptUpdate();
  }
  return undefined;
}

function fromDir(dir: string, pkg: string): Kernel | undefined {
  const release = pkg.replace(/^linux-image-/, "");
  const vmlinuz = path.join(dir, `vmlinuz-${release}`);
  const config = path.join(dir, `config-${release}`);
  if (!existsSync(vmlinuz) || !existsSync(config)) return undefined;
  const overlayModule = path.join(dir, "overlay.ko");
  const configText = readFileSync(config, "utf8");
  const modular = /^CONFIG_OVERLAY_FS=m$/m.test(configText);
  if (modular && !existsSync(overlayModule)) return undefined;
  const vmlinux = path.join(dir, `vmlinux-${release}`);
  return {
    package: pkg,
    release,
    vmlinuz,
    vmlinux: existsSync(vmlinux) ? vmlinux : undefined,
    config,
    overlayModule: modular ? overlayModule : undefined,
  };
}

/** A kernel already in the cache (the newest by name), for machines whose apt lists cannot be read. */
function anyCached(): Kernel | undefined {
  const names = existsSync(KERNEL_CACHE)
    ? readdirSync(KERNEL_CACHE).filter((n) => n.startsWith("linux-image-"))
    : [];
  names.sort((a, b) => b.localeCompare(a, "en", { numeric: true }));
  for (const n of names) {
    const k = fromDir(path.join(KERNEL_CACHE, n), n);
    if (k) return k;
  }
  return undefined;
}

/**
 * The kernel to boot: from the cache, else downloaded (`apt-get download`,
 * retried once after `apt-get update -qq`) and extracted into the cache.
 * Concurrent callers each work in a temporary directory and rename it into
 * place, so a reader never sees half a kernel.
 */
export function ensureKernel(log: (line: string) => void = () => {}): Kernel {
  const pkg = resolvePackage();
  if (!pkg) {
    const cached = anyCached();
    if (cached) return cached;
    throw new Error(
      `cannot find Debian's ${META_PACKAGE} in apt's lists (apt-get update failed?): the cgroup v2 VM test needs it`,
    );
  }
  const dir = path.join(KERNEL_CACHE, pkg);
  const cached = fromDir(dir, pkg);
  if (cached) return withVmlinux(cached, dir);

  mkdirSync(KERNEL_CACHE, { recursive: true });
  const tmp = path.join(KERNEL_CACHE, `.tmp-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(tmp);
  try {
    log(`downloading ${pkg} into ${KERNEL_CACHE}`);
    // The sandbox user _apt cannot write here; download as root without the warning.
    const download = ["-qq", "-o", "APT::Sandbox::User=root", "download", pkg];
    let r = run("apt-get", download, tmp);
    if (!r.ok) {
      aptUpdate();
      r = run("apt-get", download, tmp);
    }
    if (!r.ok) throw new Error(`apt-get download ${pkg} failed:\n${r.out}`);
    const deb = readdirSync(tmp).find((n) => n.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${pkg} wrote no .deb`);
    const release = pkg.replace(/^linux-image-/, "");
    // Only the kernel, its config and overlay.ko: 10 MB instead of 400 MB.
    const x = path.join(tmp, "x");
    mkdirSync(x);
    execFileSync(
      "bash",
      [
        "-o",
        "pipefail",
        "-c",
        'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./boot/*" "./lib/modules/*/kernel/fs/overlayfs/overlay.ko"',
        "extract",
        path.join(tmp, deb),
        x,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    renameSync(path.join(x, "boot", `vmlinuz-${release}`), path.join(tmp, `vmlinuz-${release}`));
    renameSync(path.join(x, "boot", `config-${release}`), path.join(tmp, `config-${release}`));
    const ko = path.join(x, "lib", "modules", release, "kernel", "fs", "overlayfs", "overlay.ko");
    if (existsSync(ko)) renameSync(ko, path.join(tmp, "overlay.ko"));
    rmSync(x, { recursive: true, force: true });
    if (!fromDir(tmp, pkg)) throw new Error(`${deb} lacks the kernel or overlay.ko`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another run put it there first: use theirs.
      if (!fromDir(dir, pkg)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const kernel = fromDir(dir, pkg);
  if (!kernel) throw new Error(`the kernel cache ${dir} is incomplete`);
  return withVmlinux(kernel, dir);
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * Add the uncompressed kernel to the cache when this one can boot that way
 * (PVH entry point, xz-compressed bzImage, `xz` installed); else leave it out.
 */
function withVmlinux(kernel: Kernel, dir: string): Kernel {
  if (kernel.vmlinux) return kernel;
  const config = readFileSync(kernel.config, "utf8");
  if (!/^CONFIG_PVH=y$/m.test(config) || !/^CONFIG_KERNEL_XZ=y$/m.test(config)) return kernel;
  const image = readFileSync(kernel.vmlinuz);
  const at = image.indexOf(XZ_MAGIC);
  if (at < 0) return kernel;
  const xz = spawnSync("xz", ["-dc", "--single-stream"], {
    input: image.subarray(at),
    maxBuffer: 512 * 1024 * 1024,
  });
  const elf = xz.stdout;
  if (xz.status !== 0 || !elf || elf.length < 1024 || !elf.subarray(0, 4).equals(ELF_MAGIC)) {
    return kernel; // no xz here: boot the bzImage, a few seconds slower
  }
  const target = path.join(dir, `vmlinux-${kernel.release}`);
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, elf);
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { ...kernel, vmlinux: target };
}
