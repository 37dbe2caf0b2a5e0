// The compiled filter on the real kernel: the kernel accepts the programs
// compileFilter makes (the default profile's, podman's, one big enough to need
// trampolines), and refuses or allows what the profile says. A small C probe
// loads the program as the executor does and makes the syscalls.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileFilter } from "../../src/runtime/seccomp/compile.js";
import { defaultProfile } from "../../src/runtime/seccomp/default-profile.js";
import {
  parseProfile,
  resolveProfile,
  type SpecSeccomp,
} from "../../src/runtime/seccomp/profile.js";
import { ARCHES } from "../../src/runtime/seccomp/tables.js";
import { DEFAULT_CAPABILITIES } from "../../src/runtime/spec.js";

const nr = (name: string) => ARCHES.SCMP_ARCH_X86_64?.syscalls[name] as number;
const EPERM = 1;
const ENOSYS = 38;

let dir: string;
let probe: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "minibox-seccomp-"));
  probe = path.join(dir, "seccomp-probe");
  const source = path.resolve(__dirname, "..", "support", "seccomp-probe.c");
  execFileSync("cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", probe, source]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Load `spec`'s filter and make each call; [return value, errno] per call. */
function calls(spec: SpecSeccomp, list: [number, bigint?, bigint?, bigint?][]): [number, number][] {
  const file = path.join(dir, `filter-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(file, compileFilter(spec, "x64").program);
  const args = list.flatMap(([n, a = 0n, b = 0n, c = 0n]) =>
    [n, a, b, c].map((v) => `0x${v.toString(16)}`),
  );
  const out = execFileSync(probe, [file, ...args], { encoding: "utf8" });
  return out
    .trim()
    .split("\n")
    .map((line) => line.split(" ").map(Number) as [number, number]);
}

const errnoOf = (results: [number, number][]) => results.map(([ret, e]) => (ret === -1 ? e : 0));

describe.skipIf(process.arch !== "x64")("the compiled default profile on the kernel", () => {
  const spec = (caps: readonly string[] = DEFAULT_CAPABILITIES) =>
    resolveProfile(defaultProfile(), { arch: "x64", capabilities: caps, kernel: "6.18" });

  it("loads, and /proc/self/status says Seccomp: 2", () => {
    const file = path.join(dir, "default.bin");
    writeFileSync(file, compileFilter(spec(), "x64").program);
    expect(execFileSync(probe, [file], { encoding: "utf8" })).toMatch(/^Seccomp:\s+2$/m);
  });

  it("allows ordinary calls and refuses the dangerous ones with EPERM, unknown ones with ENOSYS", () => {
    const results = calls(spec(), [
      [nr("getppid")],
      [nr("keyctl"), 0n], // KEYCTL_GET_KEYRING_ID
      [nr("unshare"), 0x10000000n], // CLONE_NEWUSER
      [nr("clone"), 0x10000000n], // CLONE_NEWUSER (refused before any child exists)
      [nr("clone3"), 0n, 0n],
      [nr("socket"), 38n, 5n, 0n], // AF_ALG, SOCK_SEQPACKET
      [nr("socket"), 0x100000026n, 5n, 0n], // AF_ALG with high bits set
      [nr("personality"), 0xffffffffn],
      [nr("personality"), 0x400000n], // READ_IMPLIES_EXEC
      [nr("io_uring_setup"), 1n, 0n],
      [nr("ptrace"), 0x4206n], // PTRACE_SEIZE of pid 0
      [1000],
      [0x40000000 | nr("getppid")], // x32
    ]);
    expect(errnoOf(results)).toEqual([
      0,
      EPERM,
      EPERM,
      EPERM,
      ENOSYS,
      EPERM,
      EPERM,
      0,
      EPERM,
      EPERM,
      EPERM,
      ENOSYS,
      EPERM,
    ]);
  });

  it("lets CAP_SYS_PTRACE reach ptrace (the kernel's own answer, not the filter's EPERM)", () => {
    const [[ret, e]] = calls(spec([...DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"]), [
      [nr("ptrace"), 0x4206n, 0n],
    ]) as [[number, number]];
    expect(ret).toBe(-1);
    expect(e).toBe(3); // ESRCH: no process 0 to seize
  });
});

describe.skipIf(process.arch !== "x64")("other programs the kernel must accept", () => {
  it("podman's profile", () => {
    const file = "/usr/share/containers/seccomp.json";
    if (!existsSync(file)) return;
    const spec = resolveProfile(parseProfile(readFileSync(file, "utf8"), file), {
      arch: "x64",
      capabilities: DEFAULT_CAPABILITIES,
      kernel: "6.18",
    });
    expect(errnoOf(calls(spec, [[nr("getppid")], [nr("kexec_load")]]))).toEqual([0, EPERM]);
  });

  it("a profile of over 1000 instructions, with trampolines", () => {
    const names = Object.keys(ARCHES.SCMP_ARCH_X86_64?.syscalls ?? {});
    const spec: SpecSeccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [
        ...names
          .filter((n) => n !== "getppid")
          .map((name, i): SpecSeccomp["syscalls"][number] => ({
            names: [name],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 5, value: 0x1000 + i, op: "SCMP_CMP_NE" }],
          })),
        {
          names: ["getppid"],
          action: "SCMP_ACT_ERRNO",
          args: [{ index: 0, value: 7, op: "SCMP_CMP_EQ" }],
        },
      ],
    };
    expect(compileFilter(spec, "x64").instructions).toBeGreaterThan(1000);
    expect(
      errnoOf(
        calls(spec, [
          [nr("getppid"), 7n],
          [nr("getppid"), 8n],
        ]),
      ),
    ).toEqual([EPERM, 0]);
  });
});
