/** `container inspect` (and `inspect` of a container): the JSON shape of `docker container inspect`. */
import type { Command } from "commander";
import { containerPaths, NETWORK_ROOT } from "../layout.js";
import { readHealth } from "../runtime/health/probe.js";
import { type ContainerView, findContainer, readSpec } from "../runtime/lifecycle.js";
import { networkSettings } from "../runtime/network/attachments.js";
import { listNetworks } from "../runtime/network/networks.js";
import { hostConfigPortBindings, networkSettingsPorts } from "../runtime/network/ports.js";
import type { Spec } from "../runtime/spec.js";
import { labelsOf } from "../runtime/spec-summary.js";
import { DEFAULT_SHM_SIZE } from "../runtime/tmpfs-size.js";
import { contextFrom } from "./context.js";
import { printInspect } from "./list-format.js";

export function registerContainerInspect(container: Command): void {
  container
    .command("inspect")
    .description("Show a container's state and configuration as JSON")
    .argument("<container...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.State.Pid}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const results = [];
      for (const name of names)
        results.push(await inspectContainer(store.root, await findContainer(store.root, name)));
      printInspect(results, opts.format);
    });
}

export async function inspectContainer(
  root: string,
  c: ContainerView,
): Promise<Record<string, unknown>> {
  const spec = await readSpec(root, c.id);
  const paths = containerPaths(root, c.id);
  const health = await readHealth(paths, c.healthcheck, c.running);
  return {
    Id: c.id,
    Created: c.created,
    Path: spec.process.args[0],
    Args: spec.process.args.slice(1),
    // State.Health only with a health check, as Docker.
    State: health ? { ...stateJson(c), Health: health } : stateJson(c),
    Image: c.imageId,
    ResolvConfPath: paths.resolvConf,
    HostnamePath: paths.hostname,
    HostsPath: paths.hosts,
    LogPath: c.monitorPid ? paths.log : "",
    Name: `/${c.name}`,
    HostConfig: hostConfigJson(c, spec),
    Config: configJson(c, spec),
    Mounts: c.mounts ?? [],
    NetworkSettings: {
      ...networkSettings(
        networkMode(c, spec),
        c,
        c.running,
        Object.fromEntries((await listNetworks(NETWORK_ROOT)).map((n) => [n.name, n.id])),
      ),
      Ports: c.running ? networkSettingsPorts(c.ports ?? [], c.exposedPorts) : {},
    },
    GraphDriver: {
      Name: "overlay",
      Data: {
        LowerDir: (await lowerDirs(root, c.imageId)).join(":"),
        MergedDir: paths.rootfs,
        UpperDir: paths.upper,
        WorkDir: paths.work,
      },
    },
  };
}

/** Docker's HostConfig.NetworkMode: bridge or a network's name, host (no netns of its own) or none. */
export function networkMode(c: ContainerView, spec: Spec): string {
  return networkModeOf(c, spec.linux.namespaces?.some((n) => n.type === "network") ?? false);
}

/** HostConfig.NetworkMode: the state's, else none or host by whether it has its own network namespace. */
export function networkModeOf(c: ContainerView, ownNetwork: boolean): string {
  if (c.networkMode) return c.networkMode;
  return ownNetwork ? "none" : "host";
}

function stateJson(c: ContainerView): Record<string, unknown> {
  return {
    Status: c.running ? "running" : c.status,
    Running: c.running,
    Paused: false,
    Restarting: false,
    OOMKilled: Boolean(c.oomKilled),
    Dead: false,
    Pid: c.running ? (c.pid ?? 0) : 0,
    ExitCode: c.running ? 0 : (c.exitCode ?? 0),
    Error: c.error ?? "",
    StartedAt: c.startedAt ?? "0001-01-01T00:00:00Z",
    FinishedAt: c.finishedAt ?? "0001-01-01T00:00:00Z",
  };
}

function hostConfigJson(c: ContainerView, spec: Spec): Record<string, unknown> {
  const res = spec.linux.resources;
  return {
    AutoRemove: c.autoRemove,
    Memory: res.memory?.limit ?? 0,
    MemorySwap: res.memory?.swap ?? 0,
    NanoCpus: res.cpu?.quota ? Math.round((res.cpu.quota / (res.cpu.period ?? 100_000)) * 1e9) : 0,
    CpuShares: res.cpu?.shares ?? 0,
    PidsLimit: res.pids?.limit ?? 0,
    ReadonlyRootfs: spec.root.readonly,
    CgroupParent: c.cgroupParent ?? "",
    CapAdd: null,
    CapDrop: null,
    ...securityJson(c),
    Binds: c.binds?.length ? c.binds : null,
    ...mountsJson(c),
    NetworkMode: networkMode(c, spec),
    Dns: c.dns?.servers ?? [],
    DnsOptions: c.dns?.options ?? [],
    DnsSearch: c.dns?.search ?? [],
    ExtraHosts: c.extraHosts ?? null,
    PortBindings: hostConfigPortBindings(c.portRequests ?? []),
    PublishAllPorts: Boolean(c.publishAll),
    ...securityLimitsJson(c, spec),
  };
}

/** --ulimit, --group-add, --sysctl, --device as Docker shows them (Sysctls only when set). */
function securityLimitsJson(c: ContainerView, spec: Spec): Record<string, unknown> {
  const sysctl = spec.linux.sysctl;
  return {
    Ulimits: c.ulimits ?? null,
    GroupAdd: c.groupAdd ?? null,
    Devices: c.devices ?? [],
    ...(sysctl && Object.keys(sysctl).length > 0 ? { Sysctls: sysctl } : {}),
  };
}

/** --tmpfs, --shm-size, --volumes-from and the --mount tmpfs mounts, as Docker's HostConfig shows them. */
function mountsJson(c: ContainerView): Record<string, unknown> {
  const tmpfsMounts = (c.mounts ?? []).filter((m) => m.Type === "tmpfs");
  return {
    Tmpfs: c.tmpfs ?? null,
    ShmSize: c.shmSize ?? DEFAULT_SHM_SIZE,
    VolumesFrom: c.volumesFrom ?? null,
    ...(tmpfsMounts.length > 0
      ? {
          Mounts: tmpfsMounts.map((m) => ({
            Type: "tmpfs",
            Target: m.Destination,
            ...(m.RW ? {} : { ReadOnly: true }),
          })),
        }
      : {}),
  };
}

/** Docker's HostConfig.SecurityOpt (null when none) and Privileged. */
function securityJson(c: ContainerView): Record<string, unknown> {
  return { SecurityOpt: c.securityOpt?.length ? c.securityOpt : null, Privileged: !!c.privileged };
}

function configJson(c: ContainerView, spec: Spec): Record<string, unknown> {
  return {
    Hostname: spec.hostname,
    User: `${spec.process.user.uid}:${spec.process.user.gid}`,
    Tty: spec.process.terminal,
    Env: spec.process.env,
    Cmd: spec.process.args,
    Image: c.imageRef,
    WorkingDir: spec.process.cwd,
    Entrypoint: null,
    ...(c.exposedPorts
      ? { ExposedPorts: Object.fromEntries(c.exposedPorts.map((k) => [k, {}])) }
      : {}),
    Labels: labelsOf(spec.annotations),
    ...(c.healthcheck ? { Healthcheck: c.healthcheck } : {}),
  };
}

/** The image's layer directories, top first (overlayfs' lowerdir order). */
async function lowerDirs(root: string, imageId: string): Promise<string[]> {
  const { Store } = await import("../image/store.js");
  const store = new Store(root);
  const image = (await store.readIndex()).images[imageId];
  return (image?.layers ?? []).map((l) => store.layerDiffDir(l.chainId)).reverse();
}
