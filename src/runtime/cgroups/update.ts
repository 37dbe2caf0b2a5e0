/**
 * Changing a live cgroup's limits (minibox-runc's `update`): the same
 * [path, value] writes creating it makes (v1Files/v2Files through the
 * driver), in an order the kernel accepts from the current values.
 */
import path from "node:path";
import type { Cgroup, CgroupLimits, Trace } from "./common.js";
import { noTrace, readNumber, writeCgroupFile } from "./common.js";

/**
 * v1 keeps memory.memsw.limit_in_bytes ≥ memory.limit_in_bytes at every
 * moment: raising both past the current limit must write memsw first,
 * lowering them memory first (runc's rule: swap first when the new total is
 * unlimited or above the current memory limit). CURRENT: that limit now.
 */
export function orderForUpdate(
  writes: Array<[string, string]>,
  currentMemoryLimit: number | undefined,
): Array<[string, string]> {
  const mem = writes.findIndex(([p]) => path.basename(p) === "memory.limit_in_bytes");
  const swap = writes.findIndex(([p]) => path.basename(p) === "memory.memsw.limit_in_bytes");
  if (mem < 0 || swap < 0) return writes;
  const total = Number((writes[swap] as [string, string])[1]);
  const swapFirst = total === -1 || currentMemoryLimit === undefined || currentMemoryLimit < total;
  if (!swapFirst) return writes;
  const out = writes.filter((_, i) => i !== swap);
  out.splice(out.indexOf(writes[mem] as [string, string]), 0, writes[swap] as [string, string]);
  return out;
}

/** Write LIMITS into the container's cgroup CG. */
export function updateCgroup(cg: Cgroup, limits: CgroupLimits, trace: Trace = noTrace): void {
  const writes = cg.limitWrites(limits);
  const memFile = writes.find(([p]) => path.basename(p) === "memory.limit_in_bytes")?.[0];
  const current = memFile ? readNumber(memFile) : undefined;
  for (const [file, value] of orderForUpdate(writes, current)) {
    writeCgroupFile(file, value, trace, path.basename(file));
  }
}
