/**
 * Do idmapped mounts work here? They need kernel ≥ 5.12 and support from
 * the filesystem, so detect rather than assume: try once per kernel (a tiny
 * plan that idmaps one layer, made of the run plan's own steps) and
 * remember the answer in userns.json.
 */
import { Execution } from "./executor.js";
import { kernelRelease, saveUserns, type UsernsState } from "./idmap.js";
import { execStep } from "./plan/exec-steps.js";
import { idmapUsernsStep, mountNamespaceStep } from "./plan/rootfs-steps.js";
import { type Plan, toPlan } from "./plan/steps.js";

function probePlan(userns: UsernsState, layer: string): Plan {
  const uid = [{ containerID: 0, ...userns.uid }];
  const gid = [{ containerID: 0, ...userns.gid }];
  return toPlan({
    setup: [
      mountNamespaceStep(),
      idmapUsernsStep(uid, gid),
      { op: "idmap-mount", source: layer, target: layer, describe: "idmapped mount probe" },
      { op: "clone", flags: 0, describe: "clone" },
    ],
    parent: [],
    child: [execStep(["/bin/true"])],
  });
}

export async function idmappedMountsWork(
  root: string,
  userns: UsernsState,
  layer: string,
): Promise<boolean> {
  if (process.env.MINIBOX_NO_IDMAP === "1") return false;
  const kernel = kernelRelease();
  if (userns.idmappedMounts?.kernel === kernel) return userns.idmappedMounts.supported;
  const result = await new Execution(probePlan(userns, layer), { trace: false, stdio: "ignore" })
    .done;
  const supported = result.exitCode === 0;
  await saveUserns(root, { ...userns, idmappedMounts: { kernel, supported } });
  return supported;
}
