// The suite's promise: tests leave nothing behind. Take a snapshot of what
// minibox could leak before the tests, compare after, and name every leftover.
// No vitest imports: usable from benchmarks too.
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface LeakSnapshot {
  cgroups: Set<string>;
  mounts: Set<string>;
  tmpEntries: Set<string>;
  processes: Set<string>;
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
  return leaks;
}
