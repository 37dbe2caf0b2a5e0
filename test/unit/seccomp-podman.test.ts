// minibox's default seccomp profile against podman's
// (/usr/share/containers/seccomp.json, from Debian's containers-common):
// every syscall name either profile mentions, for Docker's 14 default
// capabilities, then with CAP_SYS_ADMIN, then with CAP_SYS_PTRACE added. Every
// difference must be in seccomp-podman-differences.ts with its reason, and
// that list is the table in docs/security.md. Skipped (the title says so)
// only where podman's profile is not installed.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { defaultProfile } from "../../src/runtime/seccomp/default-profile.js";
import {
  parseProfile,
  resolveProfile,
  type SpecSeccomp,
} from "../../src/runtime/seccomp/profile.js";
import { ARCHES } from "../../src/runtime/seccomp/tables.js";
import { ALL, CAPSETS, KNOWN, render } from "./seccomp-podman-differences.js";

const PODMAN = "/usr/share/containers/seccomp.json";
const DOC = path.resolve(__dirname, "..", "..", "docs", "security.md");

const action = (a: string, e?: number) =>
  a === "SCMP_ACT_ALLOW"
    ? "allow"
    : a === "SCMP_ACT_ERRNO"
      ? (({ 1: "EPERM", 38: "ENOSYS" } as Record<number, string>)[e ?? 1] ?? `errno ${e}`)
      : a;

/** allow / EPERM / ENOSYS / conditional: the first rule naming the syscall decides. */
function decision(s: SpecSeccomp, name: string): string {
  const rule = s.syscalls.find((r) => r.names.includes(name));
  if (!rule) return action(s.defaultAction, s.defaultErrnoRet);
  return rule.args?.length ? "conditional" : action(rule.action, rule.errnoRet);
}

/** Names that are syscalls on this host (x86_64 or i386): others name nothing here. */
const onHost = (name: string) =>
  name in (ARCHES.SCMP_ARCH_X86_64?.syscalls ?? {}) ||
  name in (ARCHES.SCMP_ARCH_X86?.syscalls ?? {});

describe.skipIf(!existsSync(PODMAN))(
  `minibox's default profile against podman's (${PODMAN})`,
  () => {
    it("differs only where the list of known differences says, and every listed difference still exists", () => {
      const podman = parseProfile(readFileSync(PODMAN, "utf8"), PODMAN);
      const minibox = defaultProfile();
      const names = new Set(
        [...podman.syscalls, ...minibox.syscalls].flatMap((r) => r.names).filter(onHost),
      );
      const actual: Record<string, string> = {};
      for (const capset of ALL) {
        const target = { arch: "x64", capabilities: CAPSETS[capset], kernel: "6.18" };
        const [a, b] = [resolveProfile(minibox, target), resolveProfile(podman, target)];
        for (const name of names) {
          const [x, y] = [decision(a, name), decision(b, name)];
          if (x !== y) actual[`${name} (${capset})`] = `minibox ${x}, podman ${y}`;
        }
      }
      const expected: Record<string, string> = {};
      for (const k of KNOWN) {
        for (const name of k.names) {
          for (const capset of k.caps)
            expected[`${name} (${capset})`] = `minibox ${k.minibox}, podman ${k.podman}`;
        }
      }
      expect(actual).toEqual(expected);
    });
  },
);

describe("docs/security.md", () => {
  it("lists the same differences with the same reasons", () => {
    const doc = readFileSync(DOC, "utf8");
    const section = doc.slice(doc.indexOf("## seccomp"));
    const rows = section
      .slice(0, section.indexOf("\n## ", 1) === -1 ? undefined : section.indexOf("\n## ", 1))
      .split("\n")
      .filter((line) => line.startsWith("| ") && !/^\| (Syscalls|---)/.test(line));
    const table = rows.filter((line) => line.split(" | ").length === 5);
    expect(
      table,
      `expected docs/security.md's table to be:\n${KNOWN.map(render).join("\n")}`,
    ).toEqual(KNOWN.map(render));
  });
});
