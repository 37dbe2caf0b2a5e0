/**
 * `run --volumes-from C[:ro|:rw]`: the volumes and bind mounts of another
 * container (its inspect Mounts), at the same destinations. Without a mode
 * each keeps its own read-write setting; `:ro` makes them all read-only,
 * `:rw` all writable (Docker's rules, moby daemon/volumes.go). Its tmpfs
 * mounts are its own and are not shared.
 */
import { MiniboxError } from "../errors.js";
import { findContainer } from "./lifecycle.js";
import type { MountRequest } from "./mount-spec.js";

export interface VolumesFromFlag {
  container: string;
  mode: "" | "ro" | "rw";
}

export function parseVolumesFrom(text: string): VolumesFromFlag {
  const [container = "", mode = "", ...rest] = text.split(":");
  if (container === "" || rest.length > 0) {
    throw new MiniboxError(
      `invalid --volumes-from value '${text}'`,
      "use --volumes-from CONTAINER[:ro|:rw]",
    );
  }
  if (mode !== "" && mode !== "ro" && mode !== "rw") {
    throw new MiniboxError(
      `invalid mode for volumes-from: ${mode}`,
      "use --volumes-from CONTAINER[:ro|:rw]",
    );
  }
  return { container, mode };
}

/** The mounts to take from each container, in flag order (unknown containers: Docker's error). */
export async function volumesFrom(root: string, flags: VolumesFromFlag[]): Promise<MountRequest[]> {
  const out: MountRequest[] = [];
  for (const flag of flags) {
    const source = await findContainer(root, flag.container).catch((err) => {
      if (!(err instanceof MiniboxError)) throw err;
      throw new MiniboxError(
        `No such container: ${flag.container}`,
        "see 'minibox ps -a' for the containers --volumes-from can name",
      );
    });
    for (const m of source.mounts ?? []) {
      if (m.Type === "tmpfs") continue;
      const readOnly = flag.mode === "" ? !m.RW : flag.mode === "ro";
      out.push({
        type: m.Type,
        source: m.Type === "volume" ? (m.Name as string) : m.Source,
        target: m.Destination,
        readOnly,
        mode: flag.mode || m.Mode,
        // Its volume is already filled; the source must still be there.
        noCopy: true,
        createSource: false,
      });
    }
  }
  return out;
}
