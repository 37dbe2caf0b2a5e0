// Profiles: parsing with errors that name the field, resolution for one
// container (capabilities, architectures, kernel), both input forms.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { decode } from "../../src/runtime/seccomp/bpf.js";
import { compileFilter } from "../../src/runtime/seccomp/compile.js";
import { defaultProfile } from "../../src/runtime/seccomp/default-profile.js";
import { kernelAtLeast, parseProfile, resolveProfile } from "../../src/runtime/seccomp/profile.js";
import { ARCHES } from "../../src/runtime/seccomp/tables.js";
import { DEFAULT_CAPABILITIES } from "../../src/runtime/spec.js";
import { checkProgram, runFilter } from "../support/bpf.js";
import { ALLOW, AUDIT, errno } from "./seccomp-reference.js";

const HOST = { arch: "x64", capabilities: DEFAULT_CAPABILITIES, kernel: "6.18.44" };

function parseError(profile: unknown): string {
  try {
    parseProfile(typeof profile === "string" ? profile : JSON.stringify(profile), "/x.json");
  } catch (err) {
    expect(err).toBeInstanceOf(MiniboxError);
    return (err as MiniboxError).message;
  }
  throw new Error("parsed");
}

const rule = (extra: object) => ({ names: ["read"], action: "SCMP_ACT_ALLOW", ...extra });
const withRule = (r: object, at = 3) => ({
  defaultAction: "SCMP_ACT_ERRNO",
  syscalls: [...Array.from({ length: at }, () => rule({})), r],
});

describe("parseProfile", () => {
  it("names the bad field", () => {
    expect(parseError(withRule(rule({ action: "SCMP_ACT_FOO" })))).toBe(
      'seccomp profile /x.json: syscalls[3].action: unknown action "SCMP_ACT_FOO"',
    );
    expect(
      parseError(withRule(rule({ args: [{ index: 6, value: 0, op: "SCMP_CMP_EQ" }] }), 0)),
    ).toBe(
      "seccomp profile /x.json: syscalls[0].args[0].index: must be an integer from 0 to 5, not 6",
    );
    expect(
      parseError(withRule(rule({ args: [{ index: 0, value: 0, op: "SCMP_CMP_ABOUT" }] }), 1)),
    ).toBe('seccomp profile /x.json: syscalls[1].args[0].op: unknown operator "SCMP_CMP_ABOUT"');
    expect(parseError(withRule({ names: "read", action: "SCMP_ACT_ALLOW" }, 0))).toBe(
      "seccomp profile /x.json: syscalls[0].names: must be an array of strings",
    );
    expect(parseError(withRule(rule({ errnoRet: -1 }), 0))).toMatch(
      /syscalls\[0\]\.errnoRet: must be an integer/,
    );
    expect(parseError(withRule(rule({ includes: { minKernel: "new" } }), 0))).toMatch(
      /syscalls\[0\]\.includes\.minKernel: must be a kernel version/,
    );
    expect(parseError({ defaultAction: "SCMP_ACT_NOTIFY", syscalls: [] })).toMatch(
      /defaultAction: SCMP_ACT_NOTIFY is not supported/,
    );
    expect(parseError({ syscalls: [] })).toBe(
      "seccomp profile /x.json: defaultAction: unknown action undefined",
    );
    expect(
      parseError({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_65"] }),
    ).toMatch(/architectures\[0\]: unknown architecture "SCMP_ARCH_X86_65"/);
    expect(parseError("{nope")).toMatch(/^seccomp profile \/x\.json: not valid JSON/);
    expect(parseError("[]")).toBe("seccomp profile /x.json: must be an object");
    expect(
      parseError({
        defaultAction: "SCMP_ACT_ALLOW",
        architectures: ["SCMP_ARCH_X86_64"],
        archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: [] }],
      }),
    ).toMatch(/both 'architectures' and 'archMap'/);
  });

  it("accepts Docker's older single 'name' and ignores unknown fields (comment, errno)", () => {
    const p = parseProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrno: "ENOSYS",
        syscalls: [
          { name: "read", action: "SCMP_ACT_ALLOW", comment: "x", errno: "EPERM", args: null },
        ],
      }),
      "/x.json",
    );
    expect(p.syscalls).toEqual([{ names: ["read"], action: "SCMP_ACT_ALLOW" }]);
  });

  it("reads minibox's own profile back unchanged", () => {
    const text = readFileSync(
      new URL("../../src/runtime/seccomp/default.json", import.meta.url),
      "utf8",
    );
    const parsed = parseProfile(text, "default.json");
    const stripped = defaultProfile();
    for (const r of stripped.syscalls) delete r.comment;
    expect(parsed).toEqual(stripped);
  });
});

describe("the default profile's names", () => {
  it("are syscalls minibox's tables know, or of an architecture minibox has no table for", () => {
    // A typo in default.json would silently allow or refuse nothing.
    const otherArches = [
      "arm_fadvise64_64",
      "arm_sync_file_range",
      "breakpoint",
      "cacheflush",
      "recv",
      "riscv_hwprobe",
      "send",
      "set_tls",
      "sync_file_range2",
    ];
    const known = new Set(Object.values(ARCHES).flatMap((a) => Object.keys(a.syscalls)));
    const unknown = [...new Set(defaultProfile().syscalls.flatMap((r) => r.names))].filter(
      (n) => !known.has(n),
    );
    expect(unknown.sort()).toEqual(otherArches);
  });
});

describe("resolveProfile", () => {
  it("keeps the host's archMap entry, native first, and applies capabilities", () => {
    const spec = resolveProfile(defaultProfile(), HOST);
    expect(spec.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    expect(spec.defaultErrnoRet).toBe(38);
    const names = spec.syscalls.flatMap((r) => r.names);
    expect(names).not.toContain("cacheflush"); // arm only
    expect(names).toContain("arch_prctl");
    expect(JSON.stringify(spec)).not.toMatch(/includes|excludes|comment/);
    const arm = resolveProfile(defaultProfile(), { ...HOST, arch: "arm64" });
    expect(arm.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    expect(arm.syscalls.flatMap((r) => r.names)).toContain("cacheflush");
  });

  it("takes a profile in the OCI form (architectures, no conditions) as it is", () => {
    const oci = parseProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        architectures: ["SCMP_ARCH_X86_64"],
        syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ALLOW" }],
      }),
      "/oci.json",
    );
    const spec = resolveProfile(oci, HOST);
    expect(spec).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: ["getppid"], action: "SCMP_ACT_ALLOW" }],
    });
    const program = decode(compileFilter(spec, "x64").program);
    const getppid = ARCHES.SCMP_ARCH_X86_64?.syscalls.getppid as number;
    expect(runFilter(program, { arch: AUDIT.x86_64, nr: getppid }).ret).toBe(ALLOW);
    expect(runFilter(program, { arch: AUDIT.x86_64, nr: 0 }).ret).toBe(errno(1));
  });

  it("compares kernel versions by major and minor", () => {
    expect(kernelAtLeast("6.18.44-fc-v1045", "4.8")).toBe(true);
    expect(kernelAtLeast("4.8.0", "4.8")).toBe(true);
    expect(kernelAtLeast("4.7.10", "4.8")).toBe(false);
    expect(kernelAtLeast("5.4.0-100-generic", "5.10")).toBe(false);
  });
});

describe.skipIf(!existsSync("/usr/share/containers/seccomp.json"))("podman's profile", () => {
  it("loads, resolves and compiles to a program the kernel accepts", () => {
    const podman = parseProfile(
      readFileSync("/usr/share/containers/seccomp.json", "utf8"),
      "podman",
    );
    const compiled = compileFilter(resolveProfile(podman, HOST), "x64");
    checkProgram(decode(compiled.program));
    expect(compiled.allowed).toBeGreaterThan(300);
  });
});
