/**
 * A container's root filesystem parts (the directory's layout is in
 * src/layout.ts, containerPaths): making the overlay's directories.
 *
 * Also: reading a file of the image (e.g. /etc/passwd for `-u`) straight
 * from the layer directories, with overlay's rules, before anything is mounted.
 */
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { type LayerDir, readImageFile } from "../image/image-tree.js";
import { copyTree, walkDir } from "./copy-tree.js";

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

/** The per-container /etc files, owned by the container's root so it may edit them. */
export async function writeEtcFiles(
  paths: ContainerPaths,
  hostname: string,
  network: string,
  owner: { uid: number; gid: number },
): Promise<void> {
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
  ];
  if (network === "host") hosts.push(`127.0.1.1\t${hostname}`);
  await writeFile(paths.hostname, `${hostname}\n`, { mode: 0o644 });
  await writeFile(paths.hosts, `${hosts.join("\n")}\n`, { mode: 0o644 });
  await writeFile(paths.resolvConf, await resolvConf(network), { mode: 0o644 });
  for (const f of [paths.hostname, paths.hosts, paths.resolvConf])
    await chown(f, owner.uid, owner.gid);
}

/**
 * The host's resolv.conf, as Docker does it: with its own network namespace
 * the container cannot reach the host's loopback resolvers, so those lines
 * go, and Google's public servers stand in if nothing is left.
 */
async function resolvConf(network: string): Promise<string> {
  let host = "";
  try {
    host = await readFile("/etc/resolv.conf", "utf8");
  } catch {
    // no resolver configured on the host
  }
  if (network === "host") return host;
  const lines = host.split("\n").filter((l) => !/^\s*nameserver\s+(127\.|::1\s*$)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l)))
    lines.push("nameserver 8.8.8.8", "nameserver 8.8.4.4");
  return `${lines.filter((l, i, a) => l || i < a.length - 1).join("\n")}\n`;
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
