/**
 * Every path under minibox's root directory (`--root`, default
 * /var/lib/minibox), named once. Nothing else joins `<root>` with a literal
 * folder name: a reader finds the whole on-disk layout here, and moving a
 * folder is a one-line change.
 *
 *   <root>/
 *     images.json          tags → image ID, image ID → record (src/image/store.ts)
 *     blob-sources.json    blob digest → repositories it came from (cross-repo mount)
 *     build-cache.json     build cache: parent + instruction → image (src/build/)
 *     userns.json          the host uid/gid range kept for user namespaces
 *     blobs/sha256/<hex>   content-addressed blobs (layers, configs, manifests)
 *     layers/<chainID>/    unpacked layers, shared by every image and container
 *     layers-shifted/<uid>/<hex>/   copies of layers shifted into a uid range
 *                          (only where idmapped mounts do not work)
 *     tmp/                 work in progress; renamed into place when complete
 *     locks/<name>.lock    flock files (blobs, layers, containers, volumes)
 *     names/<name>         container name → container ID
 *     containers/<id>/     one container (see containerPaths)
 *     volumes/<name>/      named and anonymous volumes (_data inside)
 *     config.json          minibox's settings, if any ({"bridge": {"subnet": …}})
 *     events.jsonl         the event journal, one JSON object a line (src/events/journal.ts)
 *     events.jsonl.1       its previous generation, kept when it rotates
 *
 * Networks are the host's, not a store's: the bridge names, their subnets,
 * the nftables table and net.ipv4.ip_forward are one per host whatever
 * --root a command uses, so the state that decides them lives in one place,
 * the default root (NETWORK_ROOT), for every store — as podman keeps its
 * networks outside its storage root. There:
 *
 *     networks/<id>/       one network (see networkPaths)
 *     locks/network-*.lock the networks' locks; tmp/ for their rewrites
 *     host-sysctls.json    host settings minibox changed for its networks
 *                          (ip_forward, route_localnet) and their previous values
 */
import { join } from "node:path";

/** Where minibox keeps its state unless --root says otherwise. */
export const DEFAULT_ROOT = "/var/lib/minibox";

/** The root whose networks/, locks and host-sysctls.json every store's networking uses (see above). */
export const NETWORK_ROOT = DEFAULT_ROOT;

export function rootLayout(root: string) {
  return {
    root,
    images: join(root, "images.json"),
    blobSources: join(root, "blob-sources.json"),
    buildCache: join(root, "build-cache.json"),
    userns: join(root, "userns.json"),
    /** Host sysctls changed for networking and their values before (NETWORK_ROOT's; src/runtime/network/sysctl.ts). */
    hostSysctls: join(root, "host-sysctls.json"),
    blobs: join(root, "blobs", "sha256"),
    layers: join(root, "layers"),
    layersShifted: join(root, "layers-shifted"),
    tmp: join(root, "tmp"),
    /** Resolved profiles and compiled seccomp filters (src/runtime/seccomp/cache.ts). */
    seccompCache: join(root, "seccomp"),
    locks: join(root, "locks"),
    lock: (name: string) => join(root, "locks", `${name}.lock`),
    names: join(root, "names"),
    name: (name: string) => join(root, "names", name),
    containers: join(root, "containers"),
    volumes: join(root, "volumes"),
    config: join(root, "config.json"),
    /** `minibox events`' journal and its rotated predecessor (src/events/journal.ts). */
    events: join(root, "events.jsonl"),
    eventsRotated: join(root, "events.jsonl.1"),
    networks: join(root, "networks"),
    network: (id: string) => join(root, "networks", id),
  };
}

export type RootLayout = ReturnType<typeof rootLayout>;

/**
 * One unpacked layer's directory — <root>/layers/<chainID>/, or the staging
 * directory under tmp/ it is built in before the rename:
 *
 *     diff/        the layer's files (an overlayfs lower directory)
 *     layer.json   its record (digest, diffID, sizes, opaque directories)
 */
export function layerPaths(dir: string) {
  return {
    dir,
    diff: join(dir, "diff"),
    record: join(dir, "layer.json"),
  };
}

/**
 * A network's directory, <NETWORK_ROOT>/networks/<id>/ (or its staging copy in tmp/):
 *
 *     network.json   its record (name, subnet, gateway, bridge device…)
 *     leases.json    container ID → address (src/runtime/network/ipam.ts)
 *     dns-records    names → addresses, read by the network's resolver
 *     dns.pid        the resolver's PID while the network has containers
 *     dns.lock       held while the resolver is started, stopped or fed
 *                    (src/runtime/network/dns.ts)
 *     ports/<id>.json   a running container's published ports (src/runtime/network/publish.ts)
 */
export function networkPaths(dir: string) {
  return {
    dir,
    record: join(dir, "network.json"),
    leases: join(dir, "leases.json"),
    dnsRecords: join(dir, "dns-records"),
    dnsPid: join(dir, "dns.pid"),
    dnsLock: join(dir, "dns.lock"),
    ports: join(dir, "ports"),
    portsOf: (containerId: string) => join(dir, "ports", `${containerId}.json`),
  };
}

/**
 * A container's directory:
 *
 *   <root>/containers/<id>/
 *     config.json   the OCI runtime spec (read it: it is the whole container)
 *     state.json    status, pids, exit code
 *     upper/ work/  overlayfs' writable layer and its scratch directory
 *     lower/<n>/    mount points for the idmapped layers (top layer = 0)
 *     rootfs/       where the overlay is mounted — inside the executor's
 *                   private mount namespace, so it looks empty from outside
 *     hostname hosts resolv.conf   bind-mounted over /etc/… in the container
 *     <id>-json.log the json-file log (Docker's name)
 *     exit.json     written by the monitor when the init exits (native/monitor.c)
 *     health.json   State.Health, written by the monitor (native/health.c)
 */
export function containerPaths(root: string, id: string) {
  // One join (it normalises), then plain concatenation: ps, the sweep and
  // findContainer call this per container, several times, and ~20 joins
  // each (with rootLayout's 18 more) were ~10 ms of `ps` over 100 containers.
  const dir = join(root, "containers", id);
  return {
    /** The root it lies under (to find its name in <root>/names). */
    root,
    dir,
    config: `${dir}/config.json`,
    state: `${dir}/state.json`,
    upper: `${dir}/upper`,
    work: `${dir}/work`,
    rootfs: `${dir}/rootfs`,
    lower: (i: number) => join(dir, "lower", String(i)),
    /** The parent of every lower/<n>/. */
    lowers: `${dir}/lower`,
    /** Setup's mounts moved aside until the child binds them back (plan/stage-steps.ts). */
    staged: `${dir}/staged`,
    hostname: `${dir}/hostname`,
    /** Docker's name for the json-file log. */
    log: `${dir}/${id}-json.log`,
    /** Written by the monitor when the container's init exits (see native/monitor.c). */
    exit: `${dir}/exit.json`,
    hosts: `${dir}/hosts`,
    resolvConf: `${dir}/resolv.conf`,
    /** The plan the executor ran last (kept for reading, --trace shows it too). */
    plan: `${dir}/plan.txt`,
    execPlan: `${dir}/exec-plan.txt`,
    /** The health check's exec plan, written by minibox once the container runs (health/probe.ts). */
    healthPlan: `${dir}/health-plan.txt`,
    /** Docker's State.Health, written by the monitor (native/health.c). */
    health: `${dir}/health.json`,
  };
}

export type ContainerPaths = ReturnType<typeof containerPaths>;
