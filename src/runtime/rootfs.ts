/**
 * A container's root filesystem parts (the directory's layout is in
 * src/layout.ts, containerPaths): making the overlay's directories.
 *
 * Also: reading a file of the image (e.g. /etc/passwd for `-u`) straight
 * from the layer directories, with overlay's rules, before anything is mounted.
 */
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { type LayerDir, readImageFile } from "../image/image-tree.js";
import { copyTree, walkDir } from "./copy-tree.js";
import { type DnsFlags, hostsText, type ResolvMode, resolvConfText } from "./network/dns-config.js";

export type { LayerDir };
export { readImageFile };

import type { ContainerPaths } from "../layout.js";

export { type ContainerPaths, containerPaths } from "../layout.js";

/**
 * Create the directories the plan mounts on. The upper directory's root is
 * owned by the container's root (host uid `owner`), so the merged `/` is
 * root's inside the container, as in the image.
 */
export async function prepareContainerDir(
  paths: ContainerPaths,
  layerCount: number,
  owner: { uid: number; gid: number },
): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o711 });
  for (const dir of [paths.upper, paths.work, paths.rootfs]) await mkdir(dir, { mode: 0o755 });
  await chown(paths.upper, owner.uid, owner.gid);
  for (let i = 0; i < layerCount; i++)
    await mkdir(paths.lower(i), { recursive: true, mode: 0o755 });
}

/** What the per-container /etc files are made of. */
export interface EtcConfig {
  hostname: string;
  /** none, host or bridge (or, with `resolver`, a user-defined network). */
  network: string;
  dns: DnsFlags;
  /** --add-host entries, "NAME:IP" (IP may be host-gateway). */
  extraHosts: readonly string[];
  /** The network's resolver (its gateway) on a user-defined network. */
  resolver?: string;
}

/** The per-container /etc files, owned by the container's root so it may edit them. */
export async function writeEtcFiles(
  paths: ContainerPaths,
  etc: EtcConfig,
  owner: { uid: number; gid: number },
): Promise<void> {
  // A bridge network's gateway is known once attached (launch.ts writes host-gateway then).
  const gateway = etc.network === "bridge" || etc.resolver ? undefined : hostAddress();
  const hosts = hostsText(etc.hostname, etc.network, etc.extraHosts, gateway);
  await writeFile(paths.hostname, `${etc.hostname}\n`, { mode: 0o644 });
  await writeFile(paths.hosts, hosts, { mode: 0o644 });
  await writeFile(
    paths.resolvConf,
    resolvConfText(await hostResolvConf(), resolvMode(etc), etc.dns),
    {
      mode: 0o644,
    },
  );
  for (const f of [paths.hostname, paths.hosts, paths.resolvConf])
    await chown(f, owner.uid, owner.gid);
}

function resolvMode(etc: EtcConfig): ResolvMode {
  if (etc.resolver) return { kind: "resolver", address: etc.resolver };
  return etc.network === "host" ? { kind: "host" } : { kind: "isolated" };
}

/** The host's /etc/resolv.conf ("" when the host has none). */
async function hostResolvConf(): Promise<string> {
  return readFile("/etc/resolv.conf", "utf8").catch(() => "");
}

/**
 * `host-gateway` off a bridge network: the host's first IPv4 address that
 * is not loopback (Docker's docker0 address has no equivalent without a
 * bridge), else 127.0.0.1.
 */
function hostAddress(): string {
  const all = Object.values(networkInterfaces()).flatMap((a) => a ?? []);
  return all.find((a) => a.family === "IPv4" && !a.internal)?.address ?? "127.0.0.1";
}

/**
 * The fallback when the kernel cannot idmap mounts: a copy of a layer with
 * every owner shifted into the container's range (what Docker's
 * userns-remap does). Slower and bigger, but works on any kernel.
 */
export async function shiftedCopy(
  src: string,
  dst: string,
  shift: { uid: number; gid: number },
): Promise<void> {
  await copyTree(walkDir(src), dst, { shift, keepOpaque: true });
}
