/**
 * From an OCI runtime spec to the executor's plan: the exact list of kernel
 * steps, in order, that native/minibox-exec performs. A pure function — the
 * same spec and layout always give the same plan — so the order of
 * operations can be read (and tested) here, in one place.
 *
 * The plan has three sections (see native/minibox-exec.c):
 *   setup   the executor, as real root, in a private mount namespace: it
 *           idmaps the layers, mounts the overlay and /dev, binds the
 *           per-container /etc files; then clones the container's init
 *   parent  the executor, after the clone: uid/gid maps, cgroup membership
 *   child   the init, in its new namespaces: /proc, /sys, devpts, masked
 *           paths, pivot_root, hostname, loopback, user, capabilities, exec
 * Mounts made in setup live in the executor's private mount namespace, so
 * they vanish with the container's processes even if minibox is SIGKILLed.
 */
import { MiniboxError } from "../errors.js";
import type { Spec, SpecMount } from "./spec.js";

export interface PlanStep {
  op: string;
  args: string[];
  /** What the step does, in words, for --trace and error messages. */
  describe: string;
}

export interface Plan {
  setup: PlanStep[];
  parent: PlanStep[];
  child: PlanStep[];
}

export interface PlanLayout {
  /** The container's directory: lower/<n>, upper/, work/, rootfs/ live here. */
  containerDir: string;
  /** Layer directories (overlay form), lowest first. */
  layers: string[];
  /** Use idmapped mounts for the layers (else they are already shifted or shared with the host's ids). */
  idmappedLayers: boolean;
  /** cgroup.procs files the init's PID is written to before it runs. */
  cgroupProcs: string[];
  /** Stop after the clone until minibox says go (network set-up). */
  waitForGo: boolean;
  /** Run a minimal init as PID 1 (--init). */
  init: boolean;
  /** Keep stdin (-i); otherwise the container reads /dev/null. */
  interactive: boolean;
  /**
   * -d: the executor outlives minibox as the container's monitor: output
   * into a json-file log, the exit status into a file, then the hook runs.
   */
  detach?: { exitFile: string; hook: string[] };
  /**
   * The container's stdout/stderr go through the executor into a json-file
   * log (and, in the foreground, on to minibox's own stdout/stderr).
   * --log-opt max-size (bytes, 0 = never rotate) and max-file.
   */
  log?: { file: string; maxSize?: number; maxFiles?: number };
  /** Bind-mount destinations whose source is a file (a file, not a directory, is their mount point). */
  fileMounts?: string[];
}

export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

const NAMESPACE_FLAGS: Record<string, number> = {
  mount: CLONE.NEWNS,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  user: CLONE.NEWUSER,
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
};

export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  NOATIME: 0x400,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

/** Mount options that are flags (the rest are filesystem data, like "mode=755"). */
const OPTION_FLAGS: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  noatime: MS.NOATIME,
  relatime: MS.RELATIME,
  strictatime: MS.STRICTATIME,
  bind: MS.BIND,
  rbind: MS.BIND | MS.REC,
};
const IGNORED_OPTIONS = new Set([
  "rw",
  "idmap", // handled by the plan (an idmap-mount step), not a mount(2) flag
  "private",
  "rprivate",
  "slave",
  "rslave",
  "shared",
  "rshared",
]);

/** Capability numbers from linux/capability.h. */
export const CAPABILITIES: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** The devices every container gets in its /dev, as in Docker. */
const DEVICES: { name: string; major: number; minor: number }[] = [
  { name: "null", major: 1, minor: 3 },
  { name: "zero", major: 1, minor: 5 },
  { name: "full", major: 1, minor: 7 },
  { name: "random", major: 1, minor: 8 },
  { name: "urandom", major: 1, minor: 9 },
  { name: "tty", major: 5, minor: 0 },
];
const DEV_LINKS: [string, string][] = [
  ["pts/ptmx", "ptmx"],
  ["/proc/self/fd", "fd"],
  ["/proc/self/fd/0", "stdin"],
  ["/proc/self/fd/1", "stdout"],
  ["/proc/self/fd/2", "stderr"],
];

export function flagNames(flags: number): string {
  const names = Object.entries(MS)
    .filter(([, bit]) => flags & bit)
    .map(([name]) => `MS_${name}`);
  return names.length ? names.join("|") : "0";
}

export function cloneFlagNames(flags: number): string {
  return Object.entries(CLONE)
    .filter(([, bit]) => flags & bit)
    .map(([name]) => `CLONE_${name}`)
    .join("|");
}

export function step(op: string, args: (string | number)[], describe: string): PlanStep {
  return { op, args: args.map(String), describe };
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

function mountStep(
  source: string,
  target: string,
  type: string,
  flags: number,
  data: string,
): PlanStep {
  return step(
    "mount",
    [source || "-", target, type || "-", `0x${flags.toString(16)}`, data || "-"],
    `mount ${source || "none"} on ${target} type=${type || "none"} flags=${flagNames(flags)}${data ? ` data=${data}` : ""}`,
  );
}

function splitOptions(options: string[] = []): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    if (o in OPTION_FLAGS) flags |= OPTION_FLAGS[o] as number;
    else if (!IGNORED_OPTIONS.has(o)) data.push(o);
  }
  return { flags, data: data.join(",") };
}

export function capMask(names: string[] = []): string {
  let mask = 0n;
  for (const name of names) {
    const bit = CAPABILITIES[name];
    if (bit === undefined) throw new MiniboxError(`unknown capability ${name}`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16);
}

/** Every directory from the rootfs down to `path`, for mkdir -p. */
function parents(root: string, path: string): string[] {
  const parts = path.split("/").filter(Boolean);
  return parts.map((_, i) => `${root}/${parts.slice(0, i + 1).join("/")}`);
}

function hostIdOf(mappings: { containerID: number; hostID: number }[] | undefined): number {
  return mappings?.find((m) => m.containerID === 0)?.hostID ?? 0;
}

function mapText(mappings: { containerID: number; hostID: number; size: number }[]): string {
  return mappings.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("");
}

export function buildPlan(spec: Spec, layout: PlanLayout): Plan {
  const rootfs = `${layout.containerDir}/rootfs`;
  const namespaces = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  const userns = namespaces.has("user");
  const hostRoot = userns ? hostIdOf(spec.linux?.uidMappings) : 0;
  const hostRootGid = userns ? hostIdOf(spec.linux?.gidMappings) : 0;
  const process = spec.process;
  const mounts = spec.mounts ?? [];

  // ---- setup: the root filesystem, assembled by real root ------------------
  const setup: PlanStep[] = [
    step(
      "mountns",
      [],
      "unshare(CLONE_NEWNS) and make / rprivate: our mounts stay ours and die with us",
    ),
  ];
  const lowerDirs: string[] = [];
  // The idmapping user namespace serves the layers and idmapped volumes alike.
  const idmapReady = layout.idmappedLayers && userns;
  if (idmapReady) {
    const uidMap = mapText(spec.linux?.uidMappings ?? []);
    const gidMap = mapText(spec.linux?.gidMappings ?? []);
    setup.push(
      step(
        "idmap-userns",
        [uidMap, gidMap],
        `user namespace for idmapped mounts: uid_map "${uidMap.trim()}"`,
      ),
    );
    // overlayfs wants the top layer first.
    [...layout.layers].reverse().forEach((layer, i) => {
      const target = `${layout.containerDir}/lower/${i}`;
      setup.push(
        step(
          "idmap-mount",
          [layer, target],
          `idmapped mount of ${layer} on ${target} (host 0 → ${hostRoot})`,
        ),
      );
      lowerDirs.push(target);
    });
  } else {
    lowerDirs.push(...[...layout.layers].reverse());
  }
  const overlayData = `lowerdir=${lowerDirs.join(":")},upperdir=${layout.containerDir}/upper,workdir=${layout.containerDir}/work`;
  if (overlayData.length > 4000) {
    throw new MiniboxError(
      `image has too many layers (${layout.layers.length}) for one overlay mount`,
    );
  }
  setup.push(mountStep("overlay", rootfs, "overlay", 0, overlayData));

  // Mount points the image may lack, created through the overlay (so in the
  // container's upper layer) and owned by the container's root.
  const needDirs = new Set<string>();
  const needFiles = new Set<string>();
  for (const m of mounts) {
    const isFile =
      m.type === "bind" &&
      (/^\/etc\/(hostname|hosts|resolv\.conf)$/.test(m.destination) ||
        (layout.fileMounts ?? []).includes(m.destination));
    const chain = parents(rootfs, m.destination);
    if (isFile) {
      chain.pop();
      needFiles.add(`${rootfs}${m.destination}`);
    }
    for (const dir of chain) needDirs.add(dir);
  }
  for (const dir of parents(rootfs, process.cwd)) needDirs.add(dir);
  for (const dir of needDirs) {
    if (dir.startsWith(`${rootfs}/dev/`)) continue; // made in the /dev tmpfs below
    // Created through the overlay, so into the container's layer: owned by its root.
    setup.push(step("mkdir", [dir, "0755", hostRoot, hostRootGid], `mkdir ${dir} (if missing)`));
  }
  for (const file of needFiles) {
    setup.push(step("touch", [file, "0644", hostRoot, hostRootGid], `create ${file} (if missing)`));
  }

  // /dev: a tmpfs with the usual devices, made here because mknod is not
  // allowed inside a user namespace.
  const dev = mounts.find((m) => m.destination === "/dev");
  if (dev) {
    const { flags, data } = splitOptions(dev.options);
    const owner = userns ? `,uid=${hostRoot},gid=${hostRootGid}` : "";
    setup.push(
      mountStep(
        dev.source || "tmpfs",
        `${rootfs}/dev`,
        dev.type ?? "tmpfs",
        flags,
        `${data}${owner}`,
      ),
    );
    for (const d of DEVICES) {
      const path = `${rootfs}/dev/${d.name}`;
      setup.push(
        step(
          "mknod",
          [path, octal(0o20000 | 0o666), d.major, d.minor],
          `mknod ${path} c ${d.major} ${d.minor}`,
        ),
      );
      if (userns)
        setup.push(
          step("chown", [path, hostRoot, hostRootGid], `chown ${path} to the container's root`),
        );
    }
    for (const [target, name] of DEV_LINKS) {
      const path = `${rootfs}/dev/${name}`;
      setup.push(step("symlink", [target, path], `symlink /dev/${name} → ${target}`));
      if (userns)
        setup.push(
          step("chown", [path, hostRoot, hostRootGid], `chown ${path} to the container's root`),
        );
    }
    for (const m of mounts.filter((x) => x.destination.startsWith("/dev/"))) {
      setup.push(
        step("mkdir", [`${rootfs}${m.destination}`, "0755"], `mkdir ${rootfs}${m.destination}`),
      );
    }
  }
  if (userns) {
    for (const dir of needDirs) {
      if (!dir.startsWith(`${rootfs}/dev/`)) continue;
      setup.push(
        step("chown", [dir, hostRoot, hostRootGid], `chown ${dir} to the container's root`),
      );
    }
  }
  // Bind mounts: the per-container /etc files, volumes and -v host paths.
  // Shallow destinations first (as Docker sorts them), so a volume on /etc
  // does not hide the /etc/hosts bound after it. Done here, by real root,
  // before the clone: in the container's user namespace these mounts are
  // then locked — its root cannot unmount them or remount them read-write.
  const binds = mounts.filter((x) => x.type === "bind");
  const depth = (m: SpecMount) => m.destination.split("/").filter(Boolean).length;
  binds.sort((a, b) => depth(a) - depth(b));
  const mounted: SpecMount[] = [];
  for (const m of binds) {
    const { flags, data } = splitOptions(m.options);
    const target = `${rootfs}${m.destination}`;
    // A mount point under an earlier mount (/etc/hosts under a volume on
    // /etc) was hidden by it: make it again, in that mount's source (an
    // idmapped mount refuses files from real root: its uid is unmapped there).
    const under = [...mounted].reverse().find((u) => m.destination.startsWith(`${u.destination}/`));
    if (under) {
      const idmapped = (under.options ?? []).includes("idmap") && idmapReady;
      const [uid, gid] = idmapped ? [0, 0] : [hostRoot, hostRootGid];
      const chain = parents("", m.destination.slice(under.destination.length)).map(
        (p) => `${under.source}${p}`,
      );
      const last = needFiles.has(target) ? chain.pop() : undefined;
      for (const dir of chain)
        setup.push(step("mkdir", [dir, "0755", uid, gid], `mkdir ${dir} (if missing)`));
      if (last) setup.push(step("touch", [last, "0644", uid, gid], `create ${last} (if missing)`));
    }
    mounted.push(m);
    if ((m.options ?? []).includes("idmap") && idmapReady) {
      // Host uid 0 appears as the container's root, as with the layers.
      setup.push(
        step(
          "idmap-mount",
          [m.source, target],
          `idmapped bind mount of ${m.source} on ${target} (host 0 → ${hostRoot})`,
        ),
      );
    } else {
      setup.push(mountStep(m.source, target, "", flags | MS.BIND, data));
    }
    if (flags & MS.RDONLY) {
      setup.push(
        mountStep("", `${rootfs}${m.destination}`, "", MS.BIND | MS.REMOUNT | MS.RDONLY, ""),
      );
    }
  }
  if (spec.root.readonly) {
    setup.push(step("remount-ro", [rootfs], `remount ${rootfs} read-only (--read-only)`));
  }
  if (process.terminal)
    setup.push(step("pty", [], "socket pair to receive the container's terminal (-t)"));
  if (layout.log) {
    const { file: logFile, maxSize: logMaxSize = 0, maxFiles: logMaxFiles = 1 } = layout.log;
    const rotation = logMaxSize
      ? `, rotated at ${logMaxSize} bytes, ${logMaxFiles} files kept`
      : "";
    setup.push(
      step(
        "log",
        [logFile, logMaxSize, logMaxFiles, process.terminal ? "tty" : "pipes"],
        `container output → pipes → ${logFile} (json-file${rotation})`,
      ),
    );
  }
  if (layout.detach) {
    const { exitFile, hook } = layout.detach;
    setup.push(step("exit-file", [exitFile], `on exit, write the status to ${exitFile}`));
    setup.push(step("on-exit", hook, `on exit, run ${hook.slice(-2).join(" ")}`));
  }

  let cloneFlags = 0;
  for (const ns of namespaces) cloneFlags |= NAMESPACE_FLAGS[ns] ?? 0;
  setup.push(
    step("clone", [`0x${cloneFlags.toString(16)}`], `clone(${cloneFlagNames(cloneFlags)})`),
  );

  // ---- parent: what must be done to the child from outside -----------------
  const parent: PlanStep[] = [];
  if (userns) {
    const uidMap = mapText(spec.linux?.uidMappings ?? []);
    const gidMap = mapText(spec.linux?.gidMappings ?? []);
    parent.push(
      step("write", ["/proc/{pid}/uid_map", uidMap], `write /proc/{pid}/uid_map: ${uidMap.trim()}`),
    );
    parent.push(
      step("write", ["/proc/{pid}/gid_map", gidMap], `write /proc/{pid}/gid_map: ${gidMap.trim()}`),
    );
  }
  for (const file of layout.cgroupProcs) {
    parent.push(step("write", [file, "{pid}"], `join cgroup: write {pid} to ${file}`));
  }
  parent.push(step("report-pid", [], "tell minibox the init's PID"));
  if (layout.waitForGo) parent.push(step("wait-go", [], "wait for minibox to set up the network"));

  // ---- child: inside the new namespaces ------------------------------------
  const child: PlanStep[] = [];
  if (namespaces.has("cgroup")) {
    // Now that the init is in its cgroup, a new cgroup namespace makes that cgroup its root.
    child.push(step("unshare", [`0x${CLONE.NEWCGROUP.toString(16)}`], "unshare(CLONE_NEWCGROUP)"));
  }
  // Become the namespace's root now, so what the child mounts (devpts,
  // mqueue, shm) belongs to the container's root, not to an unmapped id.
  if (userns)
    child.push(
      step("user", ["0", "0"], "become root of the user namespace (setresuid 0, setresgid 0)"),
    );
  if (!process.terminal && !layout.interactive) {
    child.push(step("stdin-null", [], "stdin from /dev/null (no -i)"));
  }

  for (const m of mounts) {
    if (m.type === "bind" || m.destination === "/dev") continue;
    child.push(...childMount(m, rootfs, namespaces));
  }
  for (const path of spec.linux?.maskedPaths ?? []) {
    child.push(step("mask", [`${rootfs}${path}`, `${rootfs}/dev/null`], `mask ${path}`));
  }
  for (const path of spec.linux?.readonlyPaths ?? []) {
    child.push(step("remount-ro", [`${rootfs}${path}`], `make ${path} read-only`));
  }
  child.push(step("pivot_root", [rootfs], `pivot_root to ${rootfs}, old root detached`));
  if (process.terminal) {
    child.push(
      step(
        "console",
        [],
        "open a pty in the container's /dev/pts, send its master to minibox, make it our terminal",
      ),
    );
  }
  if (namespaces.has("uts") && spec.hostname) {
    child.push(step("sethostname", [spec.hostname], `sethostname ${spec.hostname}`));
  }
  if (namespaces.has("network"))
    child.push(step("ifup", ["lo"], "bring up the loopback interface"));
  child.push(step("chdir", [process.cwd], `chdir ${process.cwd}`));
  for (const r of process.rlimits ?? []) {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new MiniboxError(`unknown rlimit ${r.type}`);
    child.push(
      step(
        "rlimit",
        [resource, r.soft, r.hard],
        `setrlimit ${r.type} soft=${r.soft} hard=${r.hard}`,
      ),
    );
  }
  const user = process.user;
  child.push(
    step(
      "groups",
      (user.additionalGids ?? []).map(String),
      `setgroups [${(user.additionalGids ?? []).join(", ")}]`,
    ),
  );
  const caps = process.capabilities ?? {};
  const kept = (caps.bounding ?? []).map((c) => c.replace(/^CAP_/, "")).join(" ") || "none";
  child.push(step("bounding", [capMask(caps.bounding)], `capability bounding set: ${kept}`));
  child.push(step("user", [user.uid, user.gid], `switch to uid ${user.uid}, gid ${user.gid}`));
  child.push(
    step(
      "caps",
      [capMask(caps.effective), capMask(caps.permitted), capMask(caps.inheritable)],
      `effective capabilities: ${(caps.effective ?? []).map((c) => c.replace(/^CAP_/, "")).join(" ") || "none"}`,
    ),
  );
  if (process.noNewPrivileges) child.push(step("no-new-privs", [], "prctl(PR_SET_NO_NEW_PRIVS)"));
  child.push(step("closefds", [], "mark every descriptor above 2 close-on-exec"));
  for (const e of process.env ?? []) child.push(step("env", [e], `env ${e}`));
  if (layout.init)
    child.push(step("init", [], "fork: a minimal init stays PID 1, the program runs as PID 2"));
  if (!process.args.length) throw new MiniboxError("no command specified");
  child.push(step("exec", process.args, `execve ${JSON.stringify(process.args)}`));
  return { setup, parent, child };
}

/** A mount made inside the container's namespaces (proc, sysfs, devpts, mqueue, tmpfs). */
function childMount(m: SpecMount, rootfs: string, namespaces: Set<string>): PlanStep[] {
  const target = `${rootfs}${m.destination}`;
  const { flags, data } = splitOptions(m.options);
  if (m.type === "sysfs" && !namespaces.has("network")) {
    // sysfs can only be mounted by the owner of the network namespace; with
    // --network host, bind the host's (read-only), as runc does.
    return [
      mountStep("/sys", target, "", MS.BIND | MS.REC, ""),
      step("remount-ro", [target], `make ${m.destination} read-only`),
    ];
  }
  return [mountStep(m.source || m.type || "none", target, m.type ?? "", flags, data)];
}

/** Escape one field of the plan's text format (TAB-separated, one step per line). */
function escapeField(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n");
}

export function serialisePlan(plan: Plan): { text: string; byLine: Map<number, PlanStep> } {
  const lines: string[] = [];
  const byLine = new Map<number, PlanStep>();
  const section = (name: string, steps: PlanStep[]) => {
    lines.push(`[${name}]`);
    for (const s of steps) {
      lines.push([s.op, ...s.args].map(escapeField).join("\t"));
      byLine.set(lines.length, s);
    }
  };
  section("setup", plan.setup);
  section("child", plan.child);
  section("parent", plan.parent);
  return { text: `${lines.join("\n")}\n`, byLine };
}
