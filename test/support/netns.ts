// Network set-up for integration tests with iproute2 (tests may run `ip`;
// minibox itself never does): names unique to a test run, and the few calls
// every network test makes.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

/** "mbt" and 6 hex digits: room for a suffix within a 15-character interface name. */
export function testPrefix(): string {
  return `mbt${randomBytes(3).toString("hex")}`;
}

/** `ip ARGS…`, throwing its stderr on failure. */
export function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

/** `ip -j ARGS…` parsed (an empty array when the object does not exist). */
export function ipJson<T>(...args: string[]): T[] {
  const r = spawnSync("ip", ["-j", ...args], { encoding: "utf8" });
  if (r.status !== 0 || !r.stdout.trim()) return [];
  return JSON.parse(r.stdout) as T[];
}

/** Whether a link of that name exists in the host's namespace. */
export function linkExists(name: string): boolean {
  return spawnSync("ip", ["link", "show", "dev", name], { stdio: "ignore" }).status === 0;
}

/** The host's value of a sysctl under /proc/sys ("net/ipv4/ip_forward"). */
export function readSysctl(key: string): string {
  return readFileSync(`/proc/sys/${key}`, "utf8").trim();
}

export function writeSysctl(key: string, value: string): void {
  writeFileSync(`/proc/sys/${key}`, value);
}
