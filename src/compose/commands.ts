/**
 * The compose verbs other than `up`: down, ps, logs, stop, start, restart,
 * exec, run, build, pull, config. Each works on the containers that carry
 * the project's labels.
 */
import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import { goTime, timeAgo, truncate } from "../cli/format.js";
import { formatList, tabwrite } from "../cli/list-format.js";
import { statusText } from "../cli/ps-command.js";
import { MiniboxError } from "../errors.js";
import { containerPaths } from "../layout.js";
import { startContainer } from "../runtime/container.js";
import { readHealth } from "../runtime/health/probe.js";
import { findContainer, readSpec, removeContainer, stopContainer } from "../runtime/lifecycle.js";
import { readLogs } from "../runtime/logs.js";
import { psPorts } from "../runtime/network/ports.js";
import type { Project, Service } from "./model.js";
import {
  ensureResources,
  type ProjectContainer,
  projectContainers,
  removeProjectNetworks,
  removeProjectVolumes,
} from "./resources.js";
import { configHash, runArgs, serviceImage } from "./run-args.js";
import { minibox } from "./subprocess.js";
import { buildService, type ComposeCtx, ensureImage, serviceContainer, up } from "./up.js";

/** The project's containers of the given services (all if none given), newest last. */
async function containersOf(ctx: ComposeCtx, project: Project, services: Service[]) {
  const names = new Set(services.map((s) => s.name));
  return (await projectContainers(ctx.store.root, project.name)).filter((c) =>
    names.has(c.service),
  );
}

export async function down(ctx: ComposeCtx, project: Project, volumes: boolean): Promise<void> {
  const root = ctx.store.root;
  // Dependents first, as Compose stops them.
  const all = (await projectContainers(root, project.name)).reverse();
  for (const c of all) {
    await stopContainer(root, c.view, 10);
    await removeContainer(root, await findContainer(root, c.view.id), true);
    ctx.say(`Container ${c.view.name}  Removed`);
  }
  await removeProjectNetworks(root, project.name, ctx.say);
  if (volumes) await removeProjectVolumes(root, project.name, ctx.say);
}

/** `docker compose ps --format 'table …'` heads each field with these. */
const COMPOSE_PS_HEADERS = {
  ID: "CONTAINER ID",
  Name: "NAME",
  Image: "IMAGE",
  Command: "COMMAND",
  Project: "PROJECT",
  Service: "SERVICE",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  State: "STATE",
  Status: "STATUS",
  Health: "HEALTH",
  ExitCode: "EXIT CODE",
  Ports: "PORTS",
  Labels: "LABELS",
};

type ComposePsRow = Record<keyof typeof COMPOSE_PS_HEADERS, string | number>;

export async function ps(
  ctx: ComposeCtx,
  project: Project,
  opts: { all: boolean; quiet: boolean; format?: string },
) {
  const containers = (await containersOf(ctx, project, project.services)).filter(
    (c) => opts.all || c.view.running,
  );
  if (opts.quiet) {
    for (const c of containers) console.log(c.view.id);
    return;
  }
  // The fields Docker Compose's formatter has; COMMAND quoted and cut at 20 characters, as `ps` does.
  const rows: ComposePsRow[] = [];
  for (const c of containers) {
    const spec = await readSpec(ctx.store.root, c.view.id).catch(() => undefined);
    const paths = containerPaths(ctx.store.root, c.view.id);
    const health = await readHealth(paths, c.view.healthcheck, c.view.running);
    rows.push({
      ID: c.view.id,
      Name: c.view.name,
      Image: c.view.imageRef,
      Command: JSON.stringify(truncate(spec ? spec.process.args.join(" ") : "", 20)),
      Project: project.name,
      Service: c.service,
      CreatedAt: goTime(c.view.created),
      RunningFor: timeAgo(c.view.created),
      State: c.view.running ? "running" : c.view.status,
      Status: statusText(c.view, health),
      Health: health?.Status ?? "",
      ExitCode: c.view.running ? 0 : (c.view.exitCode ?? 0),
      Ports: psPorts(c.view),
      Labels: Object.entries(c.labels)
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join(","),
    });
  }
  const table = () => {
    const lines = ["NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS"];
    for (const r of rows)
      lines.push(
        [r.Name, r.Image, r.Command, r.Service, r.RunningFor, r.Status, r.Ports].join("\t"),
      );
    return tabwrite(lines.join("\n"));
  };
  for (const line of formatList(opts.format, rows, COMPOSE_PS_HEADERS, table)) console.log(line);
}

const COLOURS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/** Each line prefixed `web-1  | `, names padded to the widest, coloured per container on a terminal. */
export async function logs(
  ctx: ComposeCtx,
  project: Project,
  services: Service[],
  opts: { follow: boolean; tail: string; timestamps: boolean },
): Promise<void> {
  const containers = (await containersOf(ctx, project, services)).filter((c) => !c.oneoff);
  const label = (c: ProjectContainer) => c.view.name.slice(project.name.length + 1);
  const width = Math.max(0, ...containers.map((c) => label(c).length));
  await Promise.all(
    containers.map((c, i) => {
      const tty = process.stdout.isTTY;
      const name = label(c).padEnd(width);
      const prefix = tty ? `\x1b[${COLOURS[i % COLOURS.length]}m${name}  |\x1b[0m ` : `${name}  | `;
      let partial = "";
      return readLogs(ctx.store.root, c.view, opts, (_stream, text) => {
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        // Compose writes every service's lines to stdout.
        for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
      });
    }),
  );
}

export async function stop(ctx: ComposeCtx, project: Project, services: Service[]): Promise<void> {
  for (const c of (await containersOf(ctx, project, services)).reverse()) {
    if (!c.view.running) continue;
    await stopContainer(ctx.store.root, c.view, 10);
    ctx.say(`Container ${c.view.name}  Stopped`);
  }
}

export async function start(ctx: ComposeCtx, project: Project, services: Service[]): Promise<void> {
  const found = await containersOf(ctx, project, services);
  if (found.length === 0)
    throw new MiniboxError("no containers to start", "run 'minibox compose up' first");
  for (const c of found) {
    if (c.view.running || c.oneoff) continue;
    await startContainer(ctx.store, c.view.id);
    ctx.say(`Container ${c.view.name}  Started`);
  }
}

export async function restart(ctx: ComposeCtx, project: Project, services: Service[]) {
  await stop(ctx, project, services);
  await start(ctx, project, services);
}

export async function build(ctx: ComposeCtx, project: Project, services: Service[]) {
  for (const s of services) if (s.build) await buildService(ctx, project, s);
}

export async function pull(ctx: ComposeCtx, project: Project, services: Service[]) {
  for (const s of services) {
    if (s.build && !s.image) continue;
    ctx.say(`${s.name} Pulling`);
    const { code } = await minibox(ctx.mb, ["pull", "-q", serviceImage(project, s)], {
      quiet: true,
    });
    if (code !== 0) throw new MiniboxError(`pulling ${serviceImage(project, s)} failed`);
    ctx.say(`${s.name} Pulled`);
  }
}

/** `exec SERVICE CMD`: in the service's container, with a terminal when compose has one (-T: never). */
export async function exec(
  ctx: ComposeCtx,
  project: Project,
  service: Service,
  command: string[],
  opts: { noTty: boolean; user?: string; workdir?: string; env: string[] },
): Promise<number> {
  const c = await serviceContainer(ctx.store.root, project, service.name);
  if (!c?.view.running) throw new MiniboxError(`service "${service.name}" is not running`);
  const args = ["exec"];
  if (!opts.noTty && process.stdin.isTTY) args.push("-it");
  if (opts.user) args.push("--user", opts.user);
  if (opts.workdir) args.push("--workdir", opts.workdir);
  for (const e of opts.env) args.push("-e", e);
  return (await minibox(ctx.mb, [...args, c.view.name, ...command])).code;
}

/** `run [--rm] SERVICE [CMD]`: a one-off container (its dependencies started first), in the foreground. */
export async function runOneOff(
  ctx: ComposeCtx,
  project: Project,
  service: Service,
  command: string[],
  opts: { rm: boolean; noTty: boolean },
): Promise<number> {
  if (service.networks.length > 1) {
    // run's foreground container cannot be connected to more networks before it starts.
    throw new MiniboxError("compose run of a service on several networks is not supported yet");
  }
  const deps = project.services.filter((s) => s.name in service.depends_on);
  if (deps.length > 0) await up(ctx, project, { build: false, services: deps });
  const imageId = await ensureImage(ctx, project, service, false);
  await ensureResources(ctx.store.root, project, [service], ctx.say);
  const name = `${project.name}-${service.name}-run-${randomBytes(6).toString("hex")}`;
  const args = runArgs(project, service, {
    name,
    hash: configHash(service, imageId),
    oneoff: true,
    command: command.length > 0 ? command : undefined,
    detach: false,
    vars: ctx.vars,
  });
  const extra = [
    ...(opts.rm ? ["--rm"] : []),
    ...(!opts.noTty && process.stdin.isTTY ? ["-it"] : []),
  ];
  args.splice(1, 0, ...extra);
  return (await minibox(ctx.mb, args)).code;
}

/** `config`: the file as minibox resolved it (interpolated, defaults filled in), as YAML. */
export function config(project: Project): string {
  const services: Record<string, unknown> = {};
  for (const s of [...project.services].sort((a, b) => a.name.localeCompare(b.name))) {
    const { name, limits, volumes, build, ...rest } = s;
    services[name] = prune({
      ...rest,
      build: build ? prune(build) : undefined,
      volumes: volumes.map((m) => ({
        type: m.type,
        source: m.source,
        target: m.target,
        read_only: m.readOnly || undefined,
      })),
      deploy: Object.keys(limits).length > 0 ? { resources: { limits } } : undefined,
    });
  }
  const top = (r: Project["volumes"]) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        prune({ name: v.name, external: v.external || undefined, labels: v.labels }),
      ]),
    );
  return stringify({
    name: project.name,
    services,
    networks: top(project.networks),
    volumes: Object.keys(project.volumes).length > 0 ? top(project.volumes) : undefined,
  });
}

/** Empty lists, maps and undefined values left out, as `docker compose config` does. */
function prune(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => {
      if (v === undefined) return false;
      if (Array.isArray(v)) return v.length > 0;
      if (v && typeof v === "object") return Object.keys(v).length > 0;
      return true;
    }),
  );
}
