/**
 * What a project owns in the store, found by its labels as Compose finds
 * them: containers (com.docker.compose.project/service), and the networks
 * and volumes it made. Creation and removal of networks and volumes call
 * minibox's modules directly.
 */

import { MiniboxError } from "../errors.js";
import { NETWORK_ROOT } from "../layout.js";
import { type ContainerView, listViews, readSpec } from "../runtime/lifecycle.js";
import {
  createNetwork,
  findNetwork,
  listNetworks,
  removeNetwork,
} from "../runtime/network/networks.js";
import { networkLiveness } from "../runtime/prune.js";
import { labelsOf } from "../runtime/spec-summary.js";
import { createVolume, listVolumes, readVolume, removeVolume } from "../runtime/volumes.js";
import type { Project, Service } from "./model.js";
import { LABEL } from "./run-args.js";

export interface ProjectContainer {
  view: ContainerView;
  labels: Record<string, string>;
  service: string;
  oneoff: boolean;
}

/** The project's containers, by their labels, oldest first. */
export async function projectContainers(
  root: string,
  project: string,
): Promise<ProjectContainer[]> {
  const out: ProjectContainer[] = [];
  for (const view of await listViews(root)) {
    const spec = await readSpec(root, view.id).catch(() => undefined);
    const labels = labelsOf(spec?.annotations);
    if (labels[LABEL.project] !== project) continue;
    out.push({
      view,
      labels,
      service: labels[LABEL.service] ?? "",
      oneoff: labels[LABEL.oneoff] === "True",
    });
  }
  return out.sort((a, b) => a.view.created.localeCompare(b.view.created));
}

/** Services in the file order with the project's dependency order; `names` picks some (all if empty). */
export function selectServices(project: Project, names: string[]): Service[] {
  for (const n of names) {
    if (!project.services.some((s) => s.name === n))
      throw new MiniboxError(`no such service: ${n}`);
  }
  return names.length === 0
    ? project.services
    : project.services.filter((s) => names.includes(s.name));
}

/** The networks and volumes the given services use, made when missing (external ones must exist). */
export async function ensureResources(
  root: string,
  project: Project,
  services: Service[],
  say: (line: string) => void,
): Promise<void> {
  const networks = new Set(services.flatMap((s) => s.networks));
  for (const key of networks) {
    const n = project.networks[key];
    if (!n || (await findNetwork(NETWORK_ROOT, n.name))) continue;
    if (n.external) {
      throw new MiniboxError(
        `network ${n.name} declared as external, but could not be found`,
        `create it with 'minibox network create ${n.name}'`,
      );
    }
    await createNetwork(NETWORK_ROOT, {
      name: n.name,
      labels: { ...n.labels, [LABEL.project]: project.name, [LABEL.network]: key },
    });
    say(`Network ${n.name}  Created`);
  }
  const volumes = new Set(
    services.flatMap((s) => s.volumes.filter((m) => m.type === "volume").map((m) => m.source)),
  );
  for (const key of volumes) {
    const v = project.volumes[key];
    if (!v || (await readVolume(root, v.name))) continue;
    if (v.external) {
      throw new MiniboxError(
        `volume ${v.name} declared as external, but could not be found`,
        `create it with 'minibox volume create ${v.name}'`,
      );
    }
    await createVolume(root, v.name, {
      ...v.labels,
      [LABEL.project]: project.name,
      [LABEL.volume]: key,
    });
    say(`Volume ${v.name}  Created`);
  }
}

/** `down`: the networks the project made (by label, so renamed or removed keys go too). */
export async function removeProjectNetworks(
  root: string,
  project: string,
  say: (line: string) => void,
) {
  const live = await networkLiveness(root);
  for (const n of await listNetworks(NETWORK_ROOT)) {
    if (n.labels?.[LABEL.project] !== project) continue;
    await removeNetwork(NETWORK_ROOT, n.name, live);
    say(`Network ${n.name}  Removed`);
  }
}

/** `down -v`: the volumes the project made. */
export async function removeProjectVolumes(
  root: string,
  project: string,
  say: (line: string) => void,
) {
  for (const v of await listVolumes(root)) {
    if (v.Labels?.[LABEL.project] !== project) continue;
    await removeVolume(root, v.Name, true);
    say(`Volume ${v.Name}  Removed`);
  }
}
