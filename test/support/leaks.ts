// The suite's promise: tests leave nothing behind. Take a snapshot of what
// minibox could leak before the tests, compare after, and name every leftover.
// No vitest imports: usable from benchmarks too.
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { NETWORK_ROOT, networkPaths, rootLayout } from "../../src/layout.js";
import { currentFirewall } from "../../src/runtime/network/firewall.js";

export interface LeakSnapshot {
  cgroups: Set<string>;
  mounts: Set<string>;
  tmpEntries: Set<string>;
  processes: Set<string>;
  links: Set<string>;
  netns: Set<string>;
  leases: Set<string>;
  firewall: boolean;
  ipForward: string;
}

/** Network devices on the host. */
function links(): string[] {
  return readdirSync("/sys/class/net");
}

/** Named network namespaces (ip netns). */
function netns(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

/**
 * Every address lease of minibox's networks held for a container of a test
 * store (temporary roots named minibox-*: networks are shared by every
 * --root, and a minibox running beside the tests is not theirs), as
 * "network-id container-id (store)".
 */
function leases(): string[] {
  const out: string[] = [];
  const layout = rootLayout(NETWORK_ROOT);
  let ids: string[] = [];
  try {
    ids = readdirSync(layout.networks);
  } catch {
    return out;
  }
  for (const id of ids) {
    try {
      const file = networkPaths(layout.network(id)).leases;
      const held = JSON.parse(readFileSync(file, "utf8")) as Record<string, { root: string }>;
      for (const [c, l] of Object.entries(held)) {
        if (l.root?.startsWith(path.join(tmpdir(), "minibox-"))) {
          out.push(`${id.slice(0, 12)} ${c} (${l.root})`);
        }
      }
    } catch {
      // no lease file yet
    }
  }
  return out;
}

function ipForward(): string {
  return readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
}

/** Mount points (field 5 of mountinfo). */
function mounts(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[4] as string);
}

/** Container cgroups (…/minibox/<id>) in any hierarchy. */
function cgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const full = path.join(dir, e.name);
      if (path.basename(dir) === "minibox") out.push(full);
      else if (depth < 4) walk(full, depth + 1);
    }
  };
  walk("/sys/fs/cgroup", 0);
  return out;
}

/** Temporary roots and sandboxes tests create (minibox-*). */
function tmpEntries(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith("minibox-"));
}

/** Processes running minibox's CLI, or a network's resolver (minibox-dns), by "pid cmdline". */
function processes(cliPath: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const cmd = raw.replace(/\0/g, " ");
      const resolver = path.basename(raw.split("\0")[0] ?? "") === "minibox-dns";
      if (cmd.includes(cliPath) || resolver) out.push(`${pid} ${cmd.trim()}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function snapshot(cliPath: string): LeakSnapshot {
  return {
    cgroups: new Set(cgroups()),
    mounts: new Set(mounts()),
    tmpEntries: new Set(tmpEntries()),
    processes: new Set(processes(cliPath)),
    links: new Set(links()),
    netns: new Set(netns()),
    leases: new Set(leases()),
    firewall: currentFirewall() !== undefined,
    ipForward: ipForward(),
  };
}

/** What exists now and did not before; empty when the tests cleaned up. */
export function leaksSince(before: LeakSnapshot, cliPath: string): string[] {
  const leaks: string[] = [];
  // Only mounts of ours (every test directory is named minibox-*): a benchmark
  // or another tool running on the machine meanwhile is not a leak of the tests.
  for (const m of mounts())
    if (!before.mounts.has(m) && m.includes("minibox")) leaks.push(`mount ${m}`);
  for (const c of cgroups()) if (!before.cgroups.has(c)) leaks.push(`cgroup ${c}`);
  for (const t of tmpEntries()) {
    if (!before.tmpEntries.has(t)) leaks.push(`temporary directory ${path.join(tmpdir(), t)}`);
  }
  for (const p of processes(cliPath)) if (!before.processes.has(p)) leaks.push(`process ${p}`);
  return [...leaks, ...networkLeaks(before)];
}

/** Devices, namespaces, leases, the firewall table and ip_forward as they were. */
function networkLeaks(before: LeakSnapshot): string[] {
  const leaks: string[] = [];
  for (const l of links()) if (!before.links.has(l)) leaks.push(`network device ${l}`);
  for (const n of netns()) if (!before.netns.has(n)) leaks.push(`network namespace ${n}`);
  for (const l of leases()) if (!before.leases.has(l)) leaks.push(`address lease ${l}`);
  if (!before.firewall && currentFirewall() !== undefined)
    leaks.push("nftables table inet minibox");
  const forward = ipForward();
  if (forward !== before.ipForward) {
    leaks.push(`net.ipv4.ip_forward is ${forward}, was ${before.ipForward}`);
  }
  return leaks;
}
