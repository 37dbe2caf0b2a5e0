/**
 * `compose up`: images (built or pulled), networks and volumes, then each
 * service in dependency order. A service whose container carries the same
 * config hash is left as it is (started if stopped); a changed one is
 * replaced. Foreground `up` then follows the logs until Ctrl-C and stops.
 */
import { MiniboxError } from "../errors.js";
import { findImage } from "../image/images.js";
import type { Store } from "../image/store.js";
import { startContainer } from "../runtime/container.js";
import { findContainer, removeContainer, stopContainer, waitExited } from "../runtime/lifecycle.js";
import type { Project, Service } from "./model.js";
import { ensureResources, type ProjectContainer, projectContainers } from "./resources.js";
import { configHash, containerName, LABEL, runArgs, serviceImage } from "./run-args.js";
import { type Minibox, mustMinibox } from "./subprocess.js";

export interface ComposeCtx {
  store: Store;
  mb: Minibox;
  vars: Record<string, string | undefined>;
  /** Progress lines (stderr, as Compose writes them). */
  say: (line: string) => void;
}

export interface UpOptions {
  build: boolean;
  /** Only these services (and what they depend on); all if empty. */
  services: Service[];
}

/** Health checks do not exist yet, so `service_healthy` cannot be waited for: refused before anything starts. */
export function refuseHealthy(project: Project, services: Service[]): void {
  for (const s of services) {
    for (const [dep, d] of Object.entries(s.depends_on)) {
      if (d.condition === "service_healthy") {
        throw new MiniboxError(
          `${project.locate(`services.${s.name}.depends_on.${dep}.condition`)}: condition service_healthy needs health checks, which minibox does not have yet`,
          "use service_started or service_completed_successfully",
        );
      }
    }
  }
}

/** The services asked for, with everything they depend on, in dependency order. */
export function withDependencies(project: Project, services: Service[]): Service[] {
  const want = new Set<string>();
  const add = (s: Service) => {
    if (want.has(s.name)) return;
    want.add(s.name);
    for (const dep of Object.keys(s.depends_on)) {
      add(project.services.find((x) => x.name === dep) as Service);
    }
  };
  for (const s of services) add(s);
  return project.services.filter((s) => want.has(s.name));
}

/** Build (if it has a build and must) or pull (if missing) the service's image; its ID. */
export async function ensureImage(ctx: ComposeCtx, project: Project, s: Service, build: boolean) {
  const ref = serviceImage(project, s);
  let found = await findImage(ctx.store, ref);
  if (s.build && (build || !found)) {
    await buildService(ctx, project, s);
    found = await findImage(ctx.store, ref);
  } else if (!found) {
    ctx.say(`${s.name} Pulling`);
    await mustMinibox(ctx.mb, ["pull", "-q", ref], `pulling ${ref}`);
    found = await findImage(ctx.store, ref);
  }
  if (!found) throw new MiniboxError(`image ${ref} of service ${s.name} is not in the store`);
  return found.record.id;
}

export async function buildService(ctx: ComposeCtx, project: Project, s: Service): Promise<void> {
  const b = s.build;
  if (!b) return;
  const args = ["build", "-q", "-t", serviceImage(project, s)];
  if (b.dockerfile) args.push("-f", `${b.context}/${b.dockerfile}`);
  for (const [k, v] of Object.entries(b.args)) args.push("--build-arg", `${k}=${v}`);
  if (b.target) args.push("--target", b.target);
  ctx.say(`${s.name} Building`);
  await mustMinibox(ctx.mb, [...args, b.context], `building service ${s.name}`);
  ctx.say(`${s.name} Built`);
}

export async function up(ctx: ComposeCtx, project: Project, opts: UpOptions): Promise<void> {
  const services = withDependencies(project, opts.services);
  refuseHealthy(project, services);
  const images = new Map<string, string>();
  for (const s of services) images.set(s.name, await ensureImage(ctx, project, s, opts.build));
  await ensureResources(ctx.store.root, project, services, ctx.say);
  for (const s of services) {
    await waitForDependencies(ctx, project, s);
    await converge(ctx, project, s, configHash(s, images.get(s.name) as string));
  }
}

/** One service's container made to match `hash`: left, started, or replaced. */
async function converge(ctx: ComposeCtx, project: Project, s: Service, hash: string) {
  const root = ctx.store.root;
  const mine = (await projectContainers(root, project.name)).filter(
    (c) => c.service === s.name && !c.oneoff,
  );
  const name = containerName(project, s);
  const same = mine.find((c) => c.labels[LABEL.hash] === hash);
  for (const c of mine) {
    if (c === same) continue;
    ctx.say(`Container ${c.view.name}  Recreate`);
    await stopContainer(root, c.view, 10);
    await removeContainer(root, await findContainer(root, c.view.id), true);
  }
  if (same) {
    if (same.view.running) ctx.say(`Container ${same.view.name}  Running`);
    else {
      await startContainer(ctx.store, same.view.id);
      ctx.say(`Container ${same.view.name}  Started`);
    }
    return;
  }
  const args = runArgs(project, s, { name, hash, oneoff: false, detach: true, vars: ctx.vars });
  await mustMinibox(ctx.mb, args, `starting service ${s.name}`);
  await connectOtherNetworks(ctx, project, s, name);
  ctx.say(`Container ${name}  Started`);
}

/** run takes one network with an alias; the service's others are joined with `network connect --alias`. */
export async function connectOtherNetworks(
  ctx: ComposeCtx,
  project: Project,
  s: Service,
  name: string,
) {
  for (const key of s.networks.slice(1)) {
    const net = project.networks[key]?.name as string;
    await mustMinibox(
      ctx.mb,
      ["network", "connect", "--alias", s.name, net, name],
      `connecting ${name} to ${net}`,
    );
  }
}

/** service_completed_successfully: the dependency's container must have exited with status 0. */
async function waitForDependencies(ctx: ComposeCtx, project: Project, s: Service) {
  for (const [dep, d] of Object.entries(s.depends_on)) {
    if (d.condition !== "service_completed_successfully") continue;
    const c = await serviceContainer(ctx.store.root, project, dep);
    if (!c) throw new MiniboxError(`service ${dep} has no container`);
    await waitExited(ctx.store.root, c.view.id);
    const after = await findContainer(ctx.store.root, c.view.id);
    if ((after.exitCode ?? 0) !== 0) {
      throw new MiniboxError(
        `service "${dep}" didn't complete successfully: exit ${after.exitCode}`,
        `'minibox compose logs ${dep}' shows its output`,
      );
    }
  }
}

export async function serviceContainer(
  root: string,
  project: Project,
  service: string,
): Promise<ProjectContainer | undefined> {
  return (await projectContainers(root, project.name)).find(
    (c) => c.service === service && !c.oneoff,
  );
}
