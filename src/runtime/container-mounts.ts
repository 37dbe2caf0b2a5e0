/**
 * A new container's volumes and bind mounts, from the parsed flags and the
 * image's VOLUMEs to host paths that exist: bind sources created (for -v) or
 * checked (for --mount), named volumes created on first use, anonymous ones
 * made, and new empty volumes filled with the image's content (copy-up).
 *
 * User namespaces. A container's root is an unprivileged host uid, but a
 * volume's files should look the same to it as to a container run with
 * --userns=host (and as in Docker without userns-remap). So volumes and bind
 * mounts are mounted *idmapped* through the container's mapping, like the
 * layers: host uid 0 appears as the container's root, and what the
 * container's root writes lands on the host as uid 0. Data stays in host
 * ids, so one volume serves --userns=host containers and the others alike.
 * The price is Docker's own: a read-write bind mount gives the container's
 * root root's power over that host tree (bind only what you mean to share;
 * use :ro). Named volumes live under <root>/volumes (mode 0700), out of host
 * users' reach. Without idmapped mounts (old kernels, MINIBOX_NO_IDMAP=1)
 * mounts are plain binds, and a new volume is created and filled with owners
 * shifted into the container's range instead, so its root can still write.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, rmdir } from "node:fs/promises";
import { dirname } from "node:path";
import { MiniboxError } from "../errors.js";
import type { LayerDir } from "../image/image-tree.js";
import type { MountRequest } from "./mount-spec.js";
import {
  ANONYMOUS_LABEL,
  anonymousName,
  copyUpIfEmpty,
  createVolume,
  discardVolumes,
  type MountPoint,
  volumeData,
} from "./volumes.js";

export interface ResolvedMounts {
  /** For state.json and inspect (volumes, binds and --mount type=tmpfs). */
  points: MountPoint[];
  /** Every tmpfs (--tmpfs and --mount type=tmpfs) with its mount options, for the spec. */
  tmpfs: { destination: string; options: string[] }[];
  /** --tmpfs flags, destination → options as given (HostConfig.Tmpfs). */
  tmpfsFlags: Record<string, string>;
  /** -v values naming a host path or a volume (HostConfig.Binds). */
  binds: string[];
  /** What the mounts need before the container starts (in `prepare`). */
  requests: { request: MountRequest; point: MountPoint }[];
}

/** Names anonymous volumes and fixes every mount's host path; creates nothing. */
export function resolveMounts(root: string, requests: MountRequest[]): ResolvedMounts {
  const out: ResolvedMounts = { points: [], tmpfs: [], tmpfsFlags: {}, binds: [], requests: [] };
  for (const request of requests) {
    if (request.type === "tmpfs") {
      out.tmpfs.push({ destination: request.target, options: request.tmpfsOptions ?? [] });
      if (request.tmpfsFlag !== undefined) out.tmpfsFlags[request.target] = request.tmpfsFlag;
      // Docker lists a --mount tmpfs in Mounts, a --tmpfs only in HostConfig.Tmpfs.
      else out.points.push(tmpfsPoint(request));
      continue;
    }
    const point: MountPoint =
      request.type === "bind"
        ? {
            Type: "bind",
            Source: request.source,
            Destination: request.target,
            Mode: request.mode,
            RW: !request.readOnly,
            Propagation: "rprivate",
          }
        : {
            Type: "volume",
            Name: request.source || anonymousName(),
            Source: "",
            Destination: request.target,
            Driver: "local",
            Mode: request.mode,
            RW: !request.readOnly,
            Propagation: "",
          };
    if (point.Type === "volume") point.Source = volumeData(root, point.Name as string);
    out.points.push(point);
    if (request.spec) out.binds.push(request.spec);
    out.requests.push({ request, point });
  }
  return out;
}

function tmpfsPoint(request: MountRequest): MountPoint {
  return {
    Type: "tmpfs",
    Source: "",
    Destination: request.target,
    Mode: "",
    RW: !request.readOnly,
    Propagation: "",
  };
}

/** The volumes and bind mounts (what is bound from the host), without the tmpfs mounts. */
export function hostMounts(points: MountPoint[]): MountPoint[] {
  return points.filter((p) => p.Type !== "tmpfs");
}

/** What `prepareMounts` made, for `undo` when the run fails before the program starts. */
export interface Created {
  volumes: string[];
  dirs: string[];
}

export async function prepareMounts(
  root: string,
  mounts: ResolvedMounts,
  image: { layers: LayerDir[] },
  /** The container's id offset when volumes are bound plainly under a user namespace. */
  shift: { uid: number; gid: number } | undefined,
  created: Created,
): Promise<void> {
  for (const { request, point } of mounts.requests) {
    if (point.Type === "bind") {
      if (!existsSync(point.Source)) {
        if (!request.createSource) {
          throw new MiniboxError(
            `invalid mount config for type "bind": bind source path does not exist: ${point.Source}`,
            "create it first, or use -v, which creates it",
          );
        }
        // Like Docker's -v: a missing host path becomes a directory.
        let top = point.Source;
        while (!existsSync(dirname(top))) top = dirname(top);
        await mkdir(point.Source, { recursive: true, mode: 0o755 });
        created.dirs.push(top);
      } else if (!statSync(point.Source).isDirectory() && !statSync(point.Source).isFile()) {
        throw new MiniboxError(`bind source ${point.Source} is neither a file nor a directory`);
      }
      continue;
    }
    const name = point.Name as string;
    const labels: Record<string, string> = request.source === "" ? { [ANONYMOUS_LABEL]: "" } : {};
    const { created: isNew } = await createVolume(root, name, labels, shift);
    if (isNew) created.volumes.push(name);
    if (!request.noCopy) await copyUpIfEmpty(root, name, image.layers, point.Destination, shift);
  }
}

/** Remove what a failed run created: new volumes, new (still empty) bind directories. */
export async function undoMounts(root: string, created: Created): Promise<void> {
  await discardVolumes(root, created.volumes).catch(() => undefined);
  for (const dir of created.dirs.reverse()) await removeEmptyTree(dir);
}

async function removeEmptyTree(dir: string): Promise<void> {
  // rmdir only: anything someone put there meanwhile stays.
  const entries = await readdir(dir).catch(() => undefined);
  if (!entries) return;
  for (const e of entries) await removeEmptyTree(`${dir}/${e}`);
  await rmdir(dir).catch(() => undefined);
}
