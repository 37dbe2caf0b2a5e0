/**
 * `ps`'s table, as runc makes it: the host's `ps` output (header kept),
 * only the lines whose PID column names a process of the container.
 */
import { MiniboxError } from "../../errors.js";

/** The lines of OUTPUT (a `ps` listing) whose PID is one of PIDS, after its header. */
export function filterPsOutput(output: string, pids: number[]): string {
  const lines = output.split("\n");
  const header = lines[0] ?? "";
  const pidIndex = header.trim().split(/\s+/).indexOf("PID");
  if (pidIndex < 0) throw new MiniboxError("couldn't find PID field in ps output");
  const wanted = new Set(pids);
  const kept = lines.slice(1).filter((line) => {
    if (line.length === 0) return false;
    const pid = Number(line.trim().split(/\s+/)[pidIndex]);
    return Number.isInteger(pid) && wanted.has(pid);
  });
  return `${[header, ...kept].join("\n")}\n`;
}
