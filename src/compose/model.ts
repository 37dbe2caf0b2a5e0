/**
 * The compose file checked and turned into the project minibox runs: every
 * key known (an unknown one is an error naming its line), short and long
 * syntaxes reduced to one form, depends_on checked for cycles, host ports
 * checked for two services publishing the same one.
 */
import { basename, isAbsolute, resolve } from "node:path";
import { MiniboxError } from "../errors.js";
import { parseExposeSpecs, parsePortSpec } from "../runtime/network/ports.js";
import { type Healthcheck, parseHealthcheck } from "./healthcheck.js";
import type { RawProject } from "./load.js";

export type Condition = "service_started" | "service_healthy" | "service_completed_successfully";

export interface Mount {
  type: "volume" | "bind";
  /** A top-level volume's key, or an absolute host path. */
  source: string;
  target: string;
  readOnly: boolean;
}

export interface Service {
  name: string;
  image?: string;
  build?: { context: string; dockerfile?: string; args: Record<string, string>; target?: string };
  command?: string[];
  entrypoint?: string[];
  environment: Record<string, string | null>;
  env_file: string[];
  ports: string[];
  expose: string[];
  volumes: Mount[];
  /** Network keys (top-level networks), "default" when none is given. */
  networks: string[];
  depends_on: Record<string, { condition: Condition }>;
  restart?: string;
  user?: string;
  working_dir?: string;
  labels: Record<string, string>;
  init?: boolean;
  read_only?: boolean;
  cap_add: string[];
  cap_drop: string[];
  limits: { cpus?: string; memory?: string; pids?: number };
  tmpfs: string[];
  healthcheck?: Healthcheck;
}

export interface TopLevel {
  /** The name the engine knows it by (PROJECT_KEY unless `name:` or external). */
  name: string;
  external: boolean;
  labels: Record<string, string>;
}

export interface Project {
  name: string;
  dir: string;
  /** As given (-f or the default name), for errors. */
  file: string;
  /** Its absolute path (the config_files label). */
  configFile: string;
  /** In an order where each service comes after those it depends on. */
  services: Service[];
  volumes: Record<string, TopLevel>;
  networks: Record<string, TopLevel>;
  /** "compose.yaml:12: services.web.x" for a key, for errors found after checking (e.g. by up). */
  locate: (path: string) => string;
}

const TOP_KEYS = new Set(["version", "name", "services", "volumes", "networks"]);
const SERVICE_KEYS = new Set([
  "image",
  "build",
  "command",
  "entrypoint",
  "environment",
  "env_file",
  "ports",
  "expose",
  "volumes",
  "networks",
  "depends_on",
  "restart",
  "user",
  "working_dir",
  "labels",
  "init",
  "read_only",
  "cap_add",
  "cap_drop",
  "deploy",
  "tmpfs",
  "healthcheck",
  "container_name",
  "hostname",
]);
/** Compose Specification keys this slice does not do: refused by name, not as unknown. */
const LATER_KEYS = new Set([
  "secrets",
  "configs",
  "profiles",
  "extends",
  "devices",
  "dns",
  "extra_hosts",
  "ulimits",
  "sysctls",
  "stop_signal",
  "stop_grace_period",
  "logging",
  "network_mode",
  "pid",
  "ipc",
  "privileged",
  "security_opt",
  "shm_size",
  "tty",
  "stdin_open",
  "mem_limit",
  "cpus",
  "pids_limit",
  "volumes_from",
  "links",
  "platform",
  "pull_policy",
]);

/** Errors name the file, the line and the key, as `compose.yaml:12: services.web.prots: unknown key`. */
export class Checker {
  constructor(private raw: RawProject) {}
  fail(path: string, message: string, hint?: string): never {
    throw new MiniboxError(`${this.locate(path)}: ${message}`, hint);
  }
  locate(path: string): string {
    const line = this.raw.lines.get(path) ?? this.parentLine(path);
    return `${this.raw.file}:${line}: ${path}`;
  }
  private parentLine(path: string): number {
    let p = path;
    while (p.includes(".") || p.includes("[")) {
      p = p.replace(/(\.[^.[]*|\[\d+\])$/, "");
      const line = this.raw.lines.get(p);
      if (line !== undefined) return line;
    }
    return 1;
  }
  map(v: unknown, path: string): Record<string, unknown> {
    if (v === null || v === undefined) return {};
    if (typeof v !== "object" || Array.isArray(v)) this.fail(path, "must be a mapping");
    return v as Record<string, unknown>;
  }
  str(v: unknown, path: string): string {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    this.fail(path, "must be a string");
  }
  strings(v: unknown, path: string): string[] {
    if (v === null || v === undefined) return [];
    if (typeof v === "string") return [v];
    if (!Array.isArray(v)) this.fail(path, "must be a list of strings");
    return v.map((x, i) => this.str(x, `${path}[${i}]`));
  }
  bool(v: unknown, path: string): boolean {
    if (typeof v !== "boolean") this.fail(path, "must be true or false");
    return v;
  }
  /** A list of KEY=VALUE or a mapping (environment, labels, build.args). */
  dict(v: unknown, path: string): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    if (v === null || v === undefined) return out;
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        const s = this.str(item, `${path}[${i}]`);
        const eq = s.indexOf("=");
        if (eq === 0) this.fail(`${path}[${i}]`, `"${s}" has no name before =`);
        if (eq < 0) out[s] = null;
        else out[s.slice(0, eq)] = s.slice(eq + 1);
      });
      return out;
    }
    for (const [k, x] of Object.entries(this.map(v, path)))
      out[k] = x === null ? null : this.str(x, `${path}.${k}`);
    return out;
  }
  /** A command: a string (split as a shell would, without running one) or a list. */
  argv(v: unknown, path: string): string[] | undefined {
    if (v === null || v === undefined) return undefined;
    if (typeof v === "string") return splitWords(v, () => this.fail(path, "unterminated quote"));
    return this.strings(v, path);
  }
}

export function resolveProject(raw: RawProject): Project {
  const ck = new Checker(raw);
  const top = ck.map(raw.data, "");
  for (const key of Object.keys(top)) {
    if (key.startsWith("x-")) continue;
    if (key === "secrets" || key === "configs")
      ck.fail(key, "not supported by minibox compose yet");
    if (!TOP_KEYS.has(key)) ck.fail(key, "unknown key");
  }
  const servicesRaw = ck.map(top.services, "services");
  if (Object.keys(servicesRaw).length === 0) ck.fail("services", "no services defined");
  const volumes = topLevel(ck, top.volumes, "volumes", raw.name);
  const networks = topLevel(ck, top.networks, "networks", raw.name);
  if (!networks.default) {
    networks.default = { name: `${raw.name}_default`, external: false, labels: {} };
  }
  const services = Object.entries(servicesRaw).map(([name, v]) =>
    service(ck, raw, name, v, volumes, networks),
  );
  for (const s of services) {
    for (const dep of Object.keys(s.depends_on)) {
      if (!servicesRaw[dep]) {
        ck.fail(`services.${s.name}.depends_on`, `depends on undefined service "${dep}"`);
      }
    }
  }
  checkPortConflicts(ck, services);
  return {
    name: raw.name,
    dir: raw.dir,
    file: raw.file,
    configFile: resolve(raw.dir, basename(raw.file)),
    services: dependencyOrder(ck, services),
    volumes,
    networks,
    locate: (path) => ck.locate(path),
  };
}

function topLevel(
  ck: Checker,
  v: unknown,
  kind: "volumes" | "networks",
  project: string,
): Record<string, TopLevel> {
  const out: Record<string, TopLevel> = {};
  for (const [key, body] of Object.entries(ck.map(v, kind))) {
    const path = `${kind}.${key}`;
    const b = ck.map(body, path);
    const allowed =
      kind === "volumes"
        ? ["name", "external", "labels", "driver"]
        : ["name", "external", "labels", "driver", "internal"];
    for (const k of Object.keys(b))
      if (!allowed.includes(k)) ck.fail(`${path}.${k}`, "unknown key");
    if (b.driver !== undefined && b.driver !== (kind === "volumes" ? "local" : "bridge")) {
      ck.fail(
        `${path}.driver`,
        `only the ${kind === "volumes" ? "local" : "bridge"} driver exists`,
      );
    }
    const external = b.external === undefined ? false : ck.bool(b.external, `${path}.external`);
    const name = b.name === undefined ? undefined : ck.str(b.name, `${path}.name`);
    const labels = ck.dict(b.labels, `${path}.labels`) as Record<string, string>;
    out[key] = { name: name ?? (external ? key : `${project}_${key}`), external, labels };
  }
  return out;
}

function service(
  ck: Checker,
  raw: RawProject,
  name: string,
  v: unknown,
  volumes: Record<string, TopLevel>,
  networks: Record<string, TopLevel>,
): Service {
  const at = `services.${name}`;
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) ck.fail(at, "a service name takes only [a-zA-Z0-9._-]");
  const b = ck.map(v, at);
  for (const key of Object.keys(b)) {
    if (key.startsWith("x-")) continue;
    if (LATER_KEYS.has(key)) ck.fail(`${at}.${key}`, "not supported by minibox compose yet");
    if (!SERVICE_KEYS.has(key)) ck.fail(`${at}.${key}`, "unknown key");
  }
  if (b.container_name !== undefined || b.hostname !== undefined) {
    ck.fail(
      `${at}.${b.container_name !== undefined ? "container_name" : "hostname"}`,
      "not supported by minibox compose yet",
    );
  }
  if (b.image === undefined && b.build === undefined)
    ck.fail(at, "has neither an image nor a build");
  const s: Service = {
    name,
    image: b.image === undefined ? undefined : ck.str(b.image, `${at}.image`),
    build: b.build === undefined ? undefined : build(ck, raw, b.build, `${at}.build`),
    command: ck.argv(b.command, `${at}.command`),
    entrypoint: ck.argv(b.entrypoint, `${at}.entrypoint`),
    environment: ck.dict(b.environment, `${at}.environment`),
    env_file: ck.strings(b.env_file, `${at}.env_file`).map((f) => resolve(raw.dir, f)),
    ports: ports(ck, b.ports, `${at}.ports`),
    expose: expose(ck, b.expose, `${at}.expose`),
    volumes: mounts(ck, raw, b.volumes, `${at}.volumes`, volumes),
    networks: serviceNetworks(ck, b.networks, `${at}.networks`, networks),
    depends_on: dependsOn(ck, b.depends_on, `${at}.depends_on`),
    restart: b.restart === undefined ? undefined : ck.str(b.restart, `${at}.restart`),
    user: b.user === undefined ? undefined : ck.str(b.user, `${at}.user`),
    working_dir:
      b.working_dir === undefined ? undefined : ck.str(b.working_dir, `${at}.working_dir`),
    labels: ck.dict(b.labels, `${at}.labels`) as Record<string, string>,
    init: b.init === undefined ? undefined : ck.bool(b.init, `${at}.init`),
    read_only: b.read_only === undefined ? undefined : ck.bool(b.read_only, `${at}.read_only`),
    cap_add: ck.strings(b.cap_add, `${at}.cap_add`),
    cap_drop: ck.strings(b.cap_drop, `${at}.cap_drop`),
    limits: limits(ck, b.deploy, `${at}.deploy`),
    tmpfs: ck.strings(b.tmpfs, `${at}.tmpfs`),
    healthcheck: parseHealthcheck(ck, b.healthcheck, `${at}.healthcheck`),
  };
  if (
    s.restart !== undefined &&
    !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(s.restart)
  ) {
    ck.fail(
      `${at}.restart`,
      `invalid restart policy "${s.restart}"`,
      "use no, always, unless-stopped or on-failure[:N]",
    );
  }
  for (const k of Object.keys(s.labels)) {
    if (k.startsWith("com.docker.compose."))
      ck.fail(`${at}.labels`, `label ${k} is set by compose itself`);
  }
  return s;
}

function build(
  ck: Checker,
  raw: RawProject,
  v: unknown,
  at: string,
): NonNullable<Service["build"]> {
  if (typeof v === "string") return { context: resolve(raw.dir, v), args: {} };
  const b = ck.map(v, at);
  for (const k of Object.keys(b)) {
    if (!["context", "dockerfile", "args", "target"].includes(k))
      ck.fail(`${at}.${k}`, "unknown key");
  }
  const args: Record<string, string> = {};
  for (const [k, x] of Object.entries(ck.dict(b.args, `${at}.args`))) {
    // An argument without a value takes the environment's, as in Compose.
    const value = x ?? raw.vars[k];
    if (value !== undefined) args[k] = value;
  }
  return {
    context: resolve(raw.dir, b.context === undefined ? "." : ck.str(b.context, `${at}.context`)),
    dockerfile: b.dockerfile === undefined ? undefined : ck.str(b.dockerfile, `${at}.dockerfile`),
    args,
    target: b.target === undefined ? undefined : ck.str(b.target, `${at}.target`),
  };
}

/** expose: ports or ranges, each checked as `run --expose` reads it. */
function expose(ck: Checker, v: unknown, at: string): string[] {
  return ck.strings(v, at).map((text, i) => {
    try {
      parseExposeSpecs([text]);
    } catch {
      ck.fail(`${at}[${i}]`, `"${text}" is not PORT[-PORT][/PROTOCOL]`);
    }
    return text;
  });
}

/** Short syntax as given; the long syntax written as the short one. Each is checked as -p checks it. */
function ports(ck: Checker, v: unknown, at: string): string[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) ck.fail(at, "must be a list");
  return v.map((item, i) => {
    const path = `${at}[${i}]`;
    let spec: string;
    if (item !== null && typeof item === "object") {
      const p = item as Record<string, unknown>;
      for (const k of Object.keys(p)) {
        if (!["target", "published", "host_ip", "protocol", "mode"].includes(k))
          ck.fail(`${path}.${k}`, "unknown key");
      }
      if (p.target === undefined) ck.fail(path, "has no target");
      // IP:HOST:TARGET; with an address but no published port, IP::TARGET (any free port).
      const ip = p.host_ip === undefined ? "" : `${ck.str(p.host_ip, `${path}.host_ip`)}:`;
      const published = p.published === undefined ? "" : ck.str(p.published, `${path}.published`);
      const host = published || ip ? `${published}:` : "";
      const proto = p.protocol === undefined ? "" : `/${ck.str(p.protocol, `${path}.protocol`)}`;
      spec = `${ip}${host}${ck.str(p.target, `${path}.target`)}${proto}`;
    } else spec = ck.str(item, path);
    try {
      parsePortSpec(spec);
    } catch (err) {
      ck.fail(
        path,
        `invalid port "${spec}": ${(err as Error).message}`,
        "use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp]",
      );
    }
    return spec;
  });
}

function mounts(
  ck: Checker,
  raw: RawProject,
  v: unknown,
  at: string,
  volumes: Record<string, TopLevel>,
): Mount[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) ck.fail(at, "must be a list");
  return v.map((item, i) => {
    const path = `${at}[${i}]`;
    let source: string;
    let target: string;
    let readOnly = false;
    let type: string | undefined;
    if (item !== null && typeof item === "object") {
      const m = item as Record<string, unknown>;
      for (const k of Object.keys(m)) {
        if (!["type", "source", "target", "read_only"].includes(k))
          ck.fail(`${path}.${k}`, "unknown key");
      }
      type = ck.str(m.type, `${path}.type`);
      if (type !== "volume" && type !== "bind")
        ck.fail(`${path}.type`, `type ${type} is not supported (volume or bind)`);
      source = ck.str(m.source, `${path}.source`);
      target = ck.str(m.target, `${path}.target`);
      readOnly = m.read_only === undefined ? false : ck.bool(m.read_only, `${path}.read_only`);
    } else {
      const parts = ck.str(item, path).split(":");
      if (parts.length < 2 || parts.length > 3) {
        ck.fail(path, `"${item}": anonymous volumes are not supported yet; use SOURCE:TARGET[:ro]`);
      }
      [source, target] = parts as [string, string];
      const mode = parts[2];
      if (mode !== undefined && mode !== "ro" && mode !== "rw")
        ck.fail(path, `unknown mode "${mode}" (ro or rw)`);
      readOnly = mode === "ro";
    }
    if (!target.startsWith("/")) ck.fail(path, `target "${target}" must be an absolute path`);
    const isPath = source.startsWith(".") || source.startsWith("/") || source.startsWith("~");
    if (type === "bind" || (type === undefined && isPath)) {
      const host = source.startsWith("~")
        ? source.replace(/^~/, process.env.HOME ?? "/root")
        : source;
      return {
        type: "bind",
        source: isAbsolute(host) ? host : resolve(raw.dir, host),
        target,
        readOnly,
      };
    }
    if (!volumes[source]) {
      ck.fail(
        path,
        `service refers to undefined volume ${source}`,
        `declare it under the top-level volumes: key`,
      );
    }
    return { type: "volume", source, target, readOnly };
  });
}

function serviceNetworks(
  ck: Checker,
  v: unknown,
  at: string,
  networks: Record<string, TopLevel>,
): string[] {
  if (v === null || v === undefined) return ["default"];
  const keys = Array.isArray(v) ? ck.strings(v, at) : Object.keys(ck.map(v, at));
  if (!Array.isArray(v)) {
    for (const [k, body] of Object.entries(ck.map(v, at))) {
      if (body !== null)
        ck.fail(`${at}.${k}`, "per-network options (aliases, ipv4_address) are not supported yet");
    }
  }
  for (const k of keys) {
    if (!networks[k])
      ck.fail(
        at,
        `service refers to undefined network ${k}`,
        "declare it under the top-level networks: key",
      );
  }
  return keys;
}

const CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully"];

function dependsOn(ck: Checker, v: unknown, at: string): Service["depends_on"] {
  const out: Service["depends_on"] = {};
  if (v === null || v === undefined) return out;
  if (Array.isArray(v)) {
    for (const name of ck.strings(v, at)) out[name] = { condition: "service_started" };
    return out;
  }
  for (const [name, body] of Object.entries(ck.map(v, at))) {
    const b = ck.map(body, `${at}.${name}`);
    for (const k of Object.keys(b)) {
      if (k !== "condition" && k !== "required" && k !== "restart")
        ck.fail(`${at}.${name}.${k}`, "unknown key");
    }
    const condition =
      b.condition === undefined
        ? "service_started"
        : ck.str(b.condition, `${at}.${name}.condition`);
    if (!CONDITIONS.includes(condition)) {
      ck.fail(
        `${at}.${name}.condition`,
        `unknown condition "${condition}"`,
        `use one of ${CONDITIONS.join(", ")}`,
      );
    }
    out[name] = { condition: condition as Condition };
  }
  return out;
}

function limits(ck: Checker, v: unknown, at: string): Service["limits"] {
  const deploy = ck.map(v, at);
  for (const k of Object.keys(deploy))
    if (k !== "resources") ck.fail(`${at}.${k}`, "not supported by minibox compose yet");
  const resources = ck.map(deploy.resources, `${at}.resources`);
  for (const k of Object.keys(resources))
    if (k !== "limits") ck.fail(`${at}.resources.${k}`, "not supported by minibox compose yet");
  const l = ck.map(resources.limits, `${at}.resources.limits`);
  const p = `${at}.resources.limits`;
  for (const k of Object.keys(l))
    if (!["cpus", "memory", "pids"].includes(k)) ck.fail(`${p}.${k}`, "unknown key");
  const out: Service["limits"] = {};
  if (l.cpus !== undefined) out.cpus = ck.str(l.cpus, `${p}.cpus`);
  if (l.memory !== undefined) out.memory = ck.str(l.memory, `${p}.memory`);
  if (l.pids !== undefined) {
    if (typeof l.pids !== "number" || !Number.isInteger(l.pids))
      ck.fail(`${p}.pids`, "must be an integer");
    out.pids = l.pids;
  }
  return out;
}

/** Two services that publish the same host port (same address and protocol) could never both start. */
function checkPortConflicts(ck: Checker, services: Service[]): void {
  const taken = new Map<string, string>();
  for (const s of services) {
    s.ports.forEach((spec, i) => {
      for (const r of parsePortSpec(spec)) {
        if (r.hostPort === "" || r.hostPort.includes("-")) continue;
        const key = `${r.hostIp || "0.0.0.0"}:${r.hostPort}/${r.proto}`;
        const other = taken.get(key);
        if (other && other !== s.name) {
          ck.fail(
            `services.${s.name}.ports[${i}]`,
            `host port ${r.hostPort}/${r.proto} is also published by service "${other}"`,
          );
        }
        taken.set(key, s.name);
      }
    });
  }
}

/** Services ordered so that each comes after its dependencies; a cycle is an error naming it. */
function dependencyOrder(ck: Checker, services: Service[]): Service[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const done = new Set<string>();
  const out: Service[] = [];
  const visit = (s: Service, stack: string[]) => {
    if (done.has(s.name)) return;
    const i = stack.indexOf(s.name);
    if (i >= 0) {
      const cycle = [...stack.slice(i), s.name].join(" -> ");
      ck.fail(`services.${s.name}.depends_on`, `dependency cycle: ${cycle}`);
    }
    for (const dep of Object.keys(s.depends_on))
      visit(byName.get(dep) as Service, [...stack, s.name]);
    done.add(s.name);
    out.push(s);
  };
  for (const s of services) visit(s, []);
  return out;
}

/** Split a command string into words as a POSIX shell would (quotes, backslashes), running nothing. */
export function splitWords(text: string, unterminated: () => never): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "'" || c === '"') {
      let end = i + 1;
      // In double quotes a backslash escapes the next character (\" included).
      while (end < text.length && text[end] !== c) end += c === '"' && text[end] === "\\" ? 2 : 1;
      if (end >= text.length) unterminated();
      let part = text.slice(i + 1, end);
      if (c === '"') part = part.replace(/\\(["\\$`])/g, "$1");
      word += part;
      inWord = true;
      i = end;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}
