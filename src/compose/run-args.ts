/**
 * A service as the `minibox run` command line that creates its container,
 * and the config hash Compose keeps in a label: `up` recreates a container
 * only when the hash of what it would run now differs.
 */
import { createHash } from "node:crypto";
import { healthArgs } from "./healthcheck.js";
import type { Project, Service } from "./model.js";

export const LABEL = {
  project: "com.docker.compose.project",
  service: "com.docker.compose.service",
  number: "com.docker.compose.container-number",
  oneoff: "com.docker.compose.oneoff",
  hash: "com.docker.compose.config-hash",
  workingDir: "com.docker.compose.project.working_dir",
  configFiles: "com.docker.compose.project.config_files",
  network: "com.docker.compose.network",
  volume: "com.docker.compose.volume",
} as const;

/** The image a service runs: its own, or the one `build` makes (PROJECT-SERVICE, as Compose names it). */
export function serviceImage(project: Project, s: Service): string {
  return s.image ?? `${project.name}-${s.name}`;
}

export function containerName(project: Project, s: Service, n = 1): string {
  return `${project.name}-${s.name}-${n}`;
}

/** What decides whether a running container is still the service's: its config and its image's ID. */
export function configHash(s: Service, imageId: string): string {
  return createHash("sha256")
    .update(JSON.stringify({ service: s, imageId }))
    .digest("hex");
}

export interface RunArgsOptions {
  name: string;
  hash: string;
  oneoff: boolean;
  /** `compose run`: a command instead of the service's, and no published ports (as Compose). */
  command?: string[];
  detach: boolean;
  /** Environment for `KEY` entries without a value (the shell's and .env's). */
  vars: Record<string, string | undefined>;
}

/** `run` arguments for the service's container, on its first network (the others are connected after). */
export function runArgs(project: Project, s: Service, o: RunArgsOptions): string[] {
  const args = ["run", o.detach ? "-d" : "", "--name", o.name].filter(Boolean);
  const labels: Record<string, string> = {
    ...s.labels,
    [LABEL.project]: project.name,
    [LABEL.service]: s.name,
    [LABEL.number]: o.oneoff ? "1" : o.name.slice(o.name.lastIndexOf("-") + 1),
    [LABEL.oneoff]: o.oneoff ? "True" : "False",
    [LABEL.hash]: o.hash,
    [LABEL.workingDir]: project.dir,
    [LABEL.configFiles]: project.configFile,
  };
  for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
  const first = s.networks[0] as string;
  args.push("--network", project.networks[first]?.name as string, "--network-alias", s.name);
  for (const file of s.env_file) args.push("--env-file", file);
  for (const [k, v] of Object.entries(s.environment)) {
    const value = v ?? o.vars[k];
    if (value !== undefined) args.push("-e", `${k}=${value}`);
  }
  if (!o.oneoff) for (const p of s.ports) args.push("-p", p);
  for (const p of s.expose) args.push("--expose", p);
  for (const m of s.volumes) {
    const source = m.type === "volume" ? (project.volumes[m.source]?.name as string) : m.source;
    args.push("-v", `${source}:${m.target}${m.readOnly ? ":ro" : ""}`);
  }
  for (const t of s.tmpfs) args.push("--tmpfs", t);
  args.push(...healthArgs(s.healthcheck));
  if (s.restart && s.restart !== "no" && !o.oneoff) args.push("--restart", s.restart);
  if (s.user) args.push("--user", s.user);
  if (s.working_dir) args.push("--workdir", s.working_dir);
  if (s.init) args.push("--init");
  if (s.read_only) args.push("--read-only");
  for (const c of s.cap_add) args.push("--cap-add", c);
  for (const c of s.cap_drop) args.push("--cap-drop", c);
  if (s.limits.cpus) args.push("--cpus", s.limits.cpus);
  if (s.limits.memory) args.push("--memory", s.limits.memory);
  if (s.limits.pids !== undefined) args.push("--pids-limit", String(s.limits.pids));
  // run's --entrypoint takes one word: the rest of a list entrypoint goes
  // before the command, which is how Docker joins ENTRYPOINT and CMD anyway.
  const [entry, ...entryRest] = s.entrypoint ?? [];
  if (s.entrypoint) args.push(`--entrypoint=${entry ?? ""}`);
  args.push(serviceImage(project, s));
  const command = o.command ?? s.command;
  if (s.entrypoint) args.push(...entryRest, ...(command ?? []));
  else if (command) args.push(...command);
  return args;
}
