/** `run`: Docker's flags, parsed into RunFlags; the work is in runtime/container.ts. */
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { MiniboxError } from "../errors.js";
import type { PullReporter } from "../image/pull.js";
import { parseBytes, parseCpus } from "../runtime/cgroups/index.js";
import type { RunFlags, Tracer } from "../runtime/container.js";
import { type HealthFlags, healthFromFlags } from "../runtime/health/config.js";
import { parseMountFlag, parseVolumeFlag, tmpfsRequest } from "../runtime/mount-spec.js";
import { checkRequest } from "../runtime/network/attachments.js";
import {
  loopbackDnsWarnings,
  parseAddHost,
  parseDnsSearch,
  parseDnsServer,
} from "../runtime/network/dns-config.js";
import type { EndpointRequest } from "../runtime/network/endpoint.js";
import { DEFAULT_NETWORK } from "../runtime/network/networks.js";
import { checkPublishable, parseExposeSpecs, parsePortSpecs } from "../runtime/network/ports.js";
import {
  normaliseCapability,
  parseEnvFile,
  parseEnvFlag,
  parseLabelFile,
  parseLabelFlag,
  parseUserns,
} from "../runtime/run-options.js";
import { parseSecurityOpts } from "../runtime/security-options.js";
import { parseShmSize } from "../runtime/tmpfs-spec.js";
import { parseVolumesFrom } from "../runtime/volumes-from.js";
import { contextFrom } from "./context.js";
import { collect } from "./options.js";
import {
  addSecurityLimitOptions,
  type SecurityLimitOptions,
  securityLimitFlags,
} from "./run-security-limits.js";

interface RunOptions extends SecurityLimitOptions, HealthFlags {
  /** false with --no-healthcheck (commander's negated option). */
  healthcheck?: boolean;
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  name?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  hostname?: string;
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  privileged?: boolean;
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  cgroupParent?: string;
  network?: string[];
  net?: string;
  networkAlias?: string[];
  ip?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  userns?: string;
  init?: boolean;
  restart?: string;
  logOpt?: string[];
  label?: string[];
  labelFile?: string[];
  volume?: string[];
  mount?: string[];
  tmpfs?: string[];
  shmSize?: string;
  volumesFrom?: string[];
  pull: string;
  platform?: string;
  trace?: boolean;
}

export function registerRunCommand(program: Command): void {
  const run = program
    .command("run")
    .description("Run a command in a new container")
    .argument("<image>", "NAME[:TAG|@DIGEST]")
    .argument("[command...]", "command and arguments (default: the image's)")
    .passThroughOptions();
  // In the order `run --help` lists them.
  addProcessOptions(run);
  addFilesystemOptions(run);
  addLimitOptions(run);
  addSecurityLimitOptions(run);
  addPolicyOptions(run);
  addHealthOptions(run);
  addDnsOptions(run);
  run.action(async (image: string, command: string[], opts: RunOptions, cmd: Command) => {
    const ctx = contextFrom(cmd);
    let flags: RunFlags;
    try {
      flags = toRunFlags(command, opts);
    } catch (err) {
      // Docker's exit status for a run refused before it starts.
      if (err instanceof MiniboxError) throw new MiniboxError(err.message, err.hint, 125);
      throw err;
    }
    const { runContainer } = await import("../runtime/container.js");
    const code = await runContainer(
      {
        store: ctx.store,
        credentials: ctx.credentials,
        endpoints: ctx.endpoints,
        platform: ctx.platform(opts.platform),
        // The progress code is loaded only if the image must be pulled.
        reporter: lazyReporter(),
        trace: opts.trace ? stderrTracer() : undefined,
      },
      image,
      flags,
    );
    process.exitCode = code;
  });
}

function addProcessOptions(run: Command): void {
  run
    .option("-d, --detach", "run in the background and print the container ID")
    .option("-i, --interactive", "keep stdin open")
    .option("-t, --tty", "allocate a pseudo-terminal")
    .option("--rm", "remove the container when it exits")
    .option("--name <name>", "name the container")
    .option("-e, --env <K=V>", "set an environment variable (repeatable)", collect)
    .option("--env-file <file>", "read environment variables from a file (repeatable)", collect)
    .option("-w, --workdir <dir>", "working directory inside the container")
    .option("-u, --user <user[:group]>", "user name or uid, optional group name or gid")
    .option("--entrypoint <cmd>", "override the image's ENTRYPOINT")
    .option("-h, --hostname <name>", "container host name (default: the short container ID)");
}

function addFilesystemOptions(run: Command): void {
  run
    .option("--read-only", "mount the container's root filesystem read-only")
    .option(
      "-v, --volume <spec>",
      "mount a volume or host path: NAME:/path, /host:/path[:ro], /path (repeatable)",
      collect,
    )
    .option(
      "--mount <spec>",
      "type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=64m][,tmpfs-mode=1777] (repeatable)",
      collect,
    )
    .option(
      "--tmpfs <path[:options]>",
      "mount a tmpfs, e.g. /run:rw,size=64m,mode=1777 (default options noexec,nosuid,nodev) (repeatable)",
      collect,
    )
    .option("--shm-size <bytes>", "size of /dev/shm, e.g. 64m (default 64m)")
    .option(
      "--volumes-from <container[:ro|:rw]>",
      "mount another container's volumes and bind mounts at the same paths (repeatable)",
      collect,
    );
}

function addLimitOptions(run: Command): void {
  run
    .option("--cap-add <cap>", "add a Linux capability (repeatable)", collect)
    .option("--cap-drop <cap>", "drop a Linux capability (repeatable)", collect)
    .option(
      "--security-opt <opt>",
      "seccomp=unconfined|builtin|PROFILE.json, no-new-privileges[=true|false] (default: true) (repeatable)",
      collect,
    )
    .option(
      "--privileged",
      "every capability, no seccomp filter (unless --security-opt seccomp=FILE names one), no masked or read-only paths, /sys writable, the host's devices in /dev; " +
        "still in a user namespace unless --userns=host, as podman's rootless --privileged (in it, the host's devices belong to the host's root: unusable)",
    )
    .option("-m, --memory <bytes>", "memory limit, e.g. 80m")
    .option("--memory-swap <bytes>", "memory + swap limit; -1 for unlimited swap")
    .option("--cpus <number>", "number of CPUs, e.g. 0.5")
    .option("-c, --cpu-shares <shares>", "relative CPU weight")
    .option("--pids-limit <n>", "maximum number of processes")
    .option("--cgroup-parent <path>", "parent cgroup for the container");
}

function addPolicyOptions(run: Command): void {
  run
    .option(
      "--network <network>",
      `none, host, bridge (minibox0, NAT to the outside) or a network made by 'network create'; repeat it for several networks (default: ${DEFAULT_RUN_NETWORK})`,
      collect,
    )
    .option(
      "--network-alias <name>",
      "another name for the container on its (first, user-defined) network (repeatable)",
      collect,
    )
    .option("--ip <address>", "the container's IPv4 address on its (first, user-defined) network")
    .option("--net <mode>", "alias of --network")
    .option(
      "-p, --publish <[ip:][hostPort:]containerPort[/proto]>",
      "publish a container's port to the host (repeatable), e.g. 127.0.0.1:8080:80",
      collect,
    )
    .option("-P, --publish-all", "publish every port the image exposes to a free host port")
    .option(
      "--expose <port[-port][/proto]>",
      "expose a port without publishing it (repeatable)",
      collect,
    )
    .option("--userns <mode>", "'host' to run without a user namespace")
    .option("--init", "run a minimal init as PID 1 that forwards signals and reaps zombies")
    .option("--restart <policy>", "no, always, unless-stopped or on-failure[:N] (with -d)")
    .option(
      "--log-opt <k=v>",
      "json-file log options: max-size=10m, max-file=3 (repeatable)",
      collect,
    )
    .option("-l, --label <k=v>", "set a label (repeatable)", collect)
    .option("--label-file <file>", "read labels from a file (repeatable)", collect)
    .addOption(
      new Option("--pull <policy>", "pull the image")
        .default("missing")
        .choices(["missing", "always", "never"]),
    )
    .option("--platform <os/arch>", "platform to pull if the image is missing")
    .option("--trace", "print every step as the kernel sees it, with timings");
}

/** Docker's health check flags (defaults: interval 30s, timeout 30s, retries 3, start period 0). */
function addHealthOptions(run: Command): void {
  run
    .option("--health-cmd <command>", "command to run to check health (through /bin/sh -c)")
    .option("--health-interval <duration>", "time between running the check (ms|s|m|h)")
    .option("--health-timeout <duration>", "maximum time to allow one check to run (ms|s|m|h)")
    .option("--health-retries <n>", "consecutive failures needed to report unhealthy")
    .option(
      "--health-start-period <duration>",
      "start period for the container to initialize before failures count (ms|s|m|h)",
    )
    .option(
      "--health-start-interval <duration>",
      "time between running the check during the start period (ms|s|m|h)",
    )
    .option("--no-healthcheck", "disable any container-specified HEALTHCHECK");
}

function addDnsOptions(run: Command): void {
  run
    .option("--dns <ip>", "a nameserver for the container's resolv.conf (repeatable)", collect)
    .option("--dns-search <domain>", "a DNS search domain; '.' for none (repeatable)", collect)
    .option("--dns-option <option>", "a resolv.conf option, e.g. ndots:2 (repeatable)", collect)
    .option(
      "--add-host <name:ip>",
      "a line in /etc/hosts; ip may be host-gateway, the host as the container reaches it (repeatable)",
      collect,
    );
}

/** --dns* (undefined when none is given: inspect then shows the defaults) and --add-host. */
function dnsFrom(opts: RunOptions, network: string): Pick<RunFlags, "dns" | "extraHosts"> {
  const dns = {
    servers: (opts.dns ?? []).map(parseDnsServer),
    search: (opts.dnsSearch ?? []).map(parseDnsSearch),
    options: opts.dnsOption ?? [],
  };
  const extraHosts = (opts.addHost ?? []).map(parseAddHost);
  // Once every value is known good: a refused run prints its one error line only.
  for (const line of loopbackDnsWarnings(dns.servers, network)) process.stderr.write(`${line}\n`);
  const given = dns.servers.length + dns.search.length + dns.options.length > 0;
  return { dns: given ? dns : undefined, extraHosts };
}

function toRunFlags(command: string[], opts: RunOptions): RunFlags {
  if (opts.detach && (opts.tty || opts.interactive)) {
    throw new MiniboxError(
      "-d with -i or -t needs attach, which minibox does not have yet",
      "use 'minibox exec -it' into a detached container instead",
    );
  }
  const env = envFrom(opts);
  const labels = labelsFrom(opts);
  const limits = limitsFrom(opts);
  const { network, networks } = networkFrom(opts);
  const security = parseSecurityOpts(opts.securityOpt ?? [], readProfile);
  for (const line of security.warnings) process.stderr.write(`${line}\n`);
  return {
    name: opts.name,
    command,
    entrypoint: opts.entrypoint,
    env,
    workdir: opts.workdir,
    user: opts.user,
    hostname: opts.hostname,
    tty: Boolean(opts.tty),
    interactive: Boolean(opts.interactive),
    readOnly: Boolean(opts.readOnly),
    rm: Boolean(opts.rm),
    detach: Boolean(opts.detach),
    restart: restartPolicy(opts),
    ...logOptions(opts.logOpt ?? []),
    capAdd: (opts.capAdd ?? []).map(normaliseCapability),
    capDrop: (opts.capDrop ?? []).map(normaliseCapability),
    security,
    privileged: Boolean(opts.privileged),
    limits,
    cgroupParent: opts.cgroupParent,
    userns: parseUserns(opts.userns ?? ""),
    network,
    networks,
    ...dnsFrom(opts, network),
    publish: publishFrom(opts.publish ?? []),
    publishAll: Boolean(opts.publishAll),
    expose: parseExposeSpecs(opts.expose ?? []),
    ...securityLimitFlags(opts, network),
    init: Boolean(opts.init),
    labels,
    pull: opts.pull as RunFlags["pull"],
    mounts: [
      ...(opts.volume ?? []).map(parseVolumeFlag),
      ...(opts.mount ?? []).map(parseMountFlag),
      ...(opts.tmpfs ?? []).map(tmpfsRequest),
    ],
    volumesFrom: (opts.volumesFrom ?? []).map(parseVolumesFrom),
    shmSize: opts.shmSize === undefined ? undefined : parseShmSize(opts.shmSize),
    // commander turns --no-healthcheck into healthcheck: false.
    healthcheck: healthFromFlags({ ...opts, noHealthcheck: opts.healthcheck === false }),
  };
}

/** --env-file files first, then -e flags: a flag wins over a file, as in Docker. */
function envFrom(opts: RunOptions): string[] {
  const hostEnv = process.env;
  const env: string[] = [];
  for (const file of opts.envFile ?? [])
    env.push(...parseEnvFile(readText(file, "--env-file"), hostEnv, file));
  for (const e of opts.env ?? []) {
    const value = parseEnvFlag(e, hostEnv);
    if (value !== undefined) env.push(value);
  }
  return env;
}

/** --label-file files first, then -l flags (which win). */
function labelsFrom(opts: RunOptions): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const file of opts.labelFile ?? [])
    Object.assign(labels, parseLabelFile(readText(file, "--label-file"), file));
  for (const l of opts.label ?? []) {
    const [k, v] = parseLabelFlag(l);
    labels[k] = v;
  }
  return labels;
}

function limitsFrom(opts: RunOptions): RunFlags["limits"] {
  const limits: RunFlags["limits"] = {};
  if (opts.memory !== undefined) limits.memory = parseBytes(opts.memory, "--memory");
  if (opts.memorySwap !== undefined) {
    limits.memorySwap =
      opts.memorySwap === "-1" ? -1 : parseBytes(opts.memorySwap, "--memory-swap");
  }
  if (opts.cpus !== undefined) Object.assign(limits, parseCpus(opts.cpus));
  if (opts.cpuShares !== undefined) limits.cpuShares = integer(opts.cpuShares, "--cpu-shares");
  if (opts.pidsLimit !== undefined) limits.pidsLimit = integer(opts.pidsLimit, "--pids-limit");
  return limits;
}

/** -p values, checked before any image is looked at; a bad one says the form Docker takes. */
function publishFrom(values: string[]) {
  try {
    const requests = parsePortSpecs(values);
    checkPublishable(requests);
    return requests;
  } catch (err) {
    if (!(err instanceof MiniboxError) || err.hint) throw err;
    throw new MiniboxError(
      `-p: ${err.message}`,
      "use -p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp], e.g. -p 127.0.0.1:8080:80",
    );
  }
}

/** What a run is on when no --network is given: the default bridge, as Docker. */
const DEFAULT_RUN_NETWORK = "bridge";

/**
 * --network (repeatable; --net is its alias), --network-alias and --ip:
 * the namespace mode, and for bridge networks the requests in order (the
 * aliases and the address apply to the first, as Docker's flags do).
 */
function networkFrom(opts: RunOptions): Pick<RunFlags, "network" | "networks"> {
  const names = [...(opts.network ?? []), ...(opts.net ? [opts.net] : [])];
  if (names.length === 0) names.push(DEFAULT_RUN_NETWORK);
  const [first, ...rest] = names as [string, ...string[]];
  const special = names.filter((n) => n === "none" || n === "host");
  if (special.length > 0 && names.length > 1) {
    throw new MiniboxError(
      "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
    );
  }
  const requests = [
    { network: first, aliases: opts.networkAlias, ip: opts.ip },
    ...rest.map((network) => ({ network })),
  ];
  if (first === "none" || first === "host") {
    checkRequest({ ...(requests[0] as EndpointRequest), network: DEFAULT_NETWORK });
    return { network: first, networks: [] };
  }
  for (const r of requests) checkRequest(r);
  return { network: "bridge", networks: requests };
}

/**
 * Pull progress on stderr (stdout belongs to the container). The progress
 * code is loaded on the first report, so a run of a local image never pays
 * for it.
 */
function lazyReporter(): PullReporter {
  let real: (PullReporter & { stop(): void }) | undefined;
  let requested = false;
  const queue: ((r: PullReporter) => void)[] = [];
  const call = (fn: (r: PullReporter) => void) => {
    if (real) return fn(real);
    queue.push(fn);
    if (requested) return;
    requested = true;
    void import("./progress.js").then(({ createReporter }) => {
      real = createReporter(false, process.stderr);
      for (const queued of queue.splice(0)) queued(real);
    });
  };
  return {
    // A status line before any layer needs no progress module: written at once, so it
    // can never come out after an error line printed while the module is still loading.
    status: (line) =>
      real || queue.length ? call((r) => r.status(line)) : process.stderr.write(`${line}\n`),
    layer: (id, status, current, total) => call((r) => r.layer(id, status, current, total)),
    stop: () => real?.stop(),
  };
}

/** --log-opt max-size=10m --log-opt max-file=3 (Docker's json-file options). */
function logOptions(values: string[]): { logMaxSize?: number; logMaxFiles?: number } {
  const out: { logMaxSize?: number; logMaxFiles?: number } = {};
  for (const v of values) {
    const [key, value = ""] = v.split("=", 2);
    if (key === "max-size") out.logMaxSize = parseBytes(value, "--log-opt max-size");
    else if (key === "max-file") out.logMaxFiles = integer(value, "--log-opt max-file");
    else
      throw new MiniboxError(
        `unknown log option ${JSON.stringify(key)}`,
        "json-file takes max-size and max-file",
      );
  }
  if (out.logMaxFiles !== undefined && out.logMaxFiles < 1) {
    throw new MiniboxError("--log-opt max-file must be at least 1");
  }
  return out;
}

/** "no", "always", "unless-stopped", "on-failure[:N]", as Docker spells them. */
function restartPolicy(opts: RunOptions): RunFlags["restart"] {
  if (opts.restart === undefined || opts.restart === "no") return undefined;
  if (opts.rm) throw new MiniboxError("conflicting options: --restart and --rm", "choose one");
  const m = /^(always|unless-stopped|on-failure)(?::(\d+))?$/.exec(opts.restart);
  if (!m || (m[2] !== undefined && m[1] !== "on-failure")) {
    throw new MiniboxError(
      `invalid restart policy ${JSON.stringify(opts.restart)}`,
      "use no, always, unless-stopped or on-failure[:max-retries]",
    );
  }
  return {
    name: m[1] as "always" | "unless-stopped" | "on-failure",
    maximumRetryCount: Number(m[2] ?? 0),
  };
}

function integer(text: string, flag: string): number {
  if (!/^-?\d+$/.test(text))
    throw new MiniboxError(`invalid ${flag} value "${text}": expected an integer`);
  return Number(text);
}

function readText(file: string, flag: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new MiniboxError(
      `${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** A --security-opt seccomp=FILE, read as Docker's CLI reads it (and named as it names it). */
function readProfile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code ? e.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "") : e.message;
    throw new MiniboxError(
      `opening seccomp profile (${file}) failed: open ${file}: ${why}`,
      "give the path of a seccomp profile in Docker's JSON format, or seccomp=unconfined",
    );
  }
}

/** `--trace` lines: time since minibox started, the step's own duration, the step. */
function stderrTracer(): Tracer {
  return (line, durationMs, atMs) => {
    const at = (atMs ?? performance.now()).toFixed(1).padStart(7);
    const took = durationMs === undefined ? "" : `${durationMs.toFixed(2)} ms`;
    process.stderr.write(`[trace ${at} ms] ${took.padStart(9)}  ${line}\n`);
  };
}
