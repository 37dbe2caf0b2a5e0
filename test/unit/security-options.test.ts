/**
 * --security-opt, --privileged and the seccomp step: the pure parts (the
 * option parser, the spec's fields, where the plan puts the filter).
 */
import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { buildExecPlan } from "../../src/runtime/exec.js";
import { credentialSteps } from "../../src/runtime/plan/credential-steps.js";
import { deviceSteps } from "../../src/runtime/plan/device-steps.js";
import { buildPlan } from "../../src/runtime/plan.js";
import { compileFilter } from "../../src/runtime/seccomp/compile.js";
import { defaultProfile } from "../../src/runtime/seccomp/default-profile.js";
import type { SeccompProfile } from "../../src/runtime/seccomp/profile.js";
import { parseSecurityOpts } from "../../src/runtime/security-options.js";
import {
  ALL_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  generateSpec,
  type RunSettings,
} from "../../src/runtime/spec.js";
import { context, IDMAP, layout, lines, ROOTFS, settings } from "./plan-fixtures.js";

const HOST = { arch: "x64", kernel: "6.18.0" };
const PROFILE: SeccompProfile = {
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
};
const noFile = (path: string): string => {
  throw new Error(`unexpected read of ${path}`);
};

function secured(over: Partial<RunSettings> = {}): RunSettings {
  return settings({ seccomp: PROFILE, host: HOST, ...over });
}

describe("parseSecurityOpts: Docker's syntax and messages", () => {
  it("nothing given: the default profile, no_new_privs on, nothing recorded", () => {
    expect(parseSecurityOpts([], noFile)).toEqual({
      seccomp: undefined,
      noNewPrivileges: true,
      securityOpt: [],
      warnings: [],
    });
  });

  it("seccomp=unconfined, seccomp:unconfined, seccomp=builtin", () => {
    expect(parseSecurityOpts(["seccomp=unconfined"], noFile).seccomp).toBe("unconfined");
    const colon = parseSecurityOpts(["seccomp:unconfined"], noFile);
    expect(colon.seccomp).toBe("unconfined");
    expect(colon.securityOpt).toEqual(["seccomp:unconfined"]);
    expect(parseSecurityOpts(["seccomp=builtin"], noFile).seccomp).toBeUndefined();
  });

  it("seccomp=FILE: read, parsed, recorded as its compacted JSON (Docker)", () => {
    const text = JSON.stringify(PROFILE, null, 2);
    const read = (path: string) => {
      expect(path).toBe("/p/x.json");
      return text;
    };
    const o = parseSecurityOpts(["seccomp=/p/x.json"], read);
    expect(o.seccomp).toEqual(PROFILE);
    expect(o.securityOpt).toEqual([`seccomp=${JSON.stringify(PROFILE)}`]);
  });

  it("a profile that is not JSON is refused, naming the file", () => {
    expect(() => parseSecurityOpts(["seccomp=/p/bad.json"], () => "{nope")).toThrow(
      /seccomp profile \/p\/bad\.json/,
    );
  });

  it("no-new-privileges: bare and =BOOL (Go's ParseBool); minibox's default stays on", () => {
    expect(parseSecurityOpts(["no-new-privileges"], noFile).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(["no-new-privileges=false"], noFile).noNewPrivileges).toBe(false);
    expect(parseSecurityOpts(["no-new-privileges=0"], noFile).noNewPrivileges).toBe(false);
    expect(parseSecurityOpts(["no-new-privileges=True"], noFile).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(["no-new-privileges:false"], noFile).noNewPrivileges).toBe(false);
  });

  it("unknown keys and bad values: Docker's error text", () => {
    const message = (opt: string) => {
      try {
        parseSecurityOpts([opt], noFile);
      } catch (err) {
        expect(err).toBeInstanceOf(MiniboxError);
        return (err as Error).message;
      }
      return "accepted";
    };
    expect(message("foo=bar")).toBe('invalid --security-opt 2: "foo=bar"');
    expect(message("no-new-privileges=maybe")).toBe(
      'invalid --security-opt 2: "no-new-privileges=maybe"',
    );
    expect(message("seccomp")).toBe('Invalid --security-opt: "seccomp"');
    expect(message("seccomp=")).toBe('Invalid --security-opt: "seccomp="');
  });

  it("label= and apparmor=: accepted with a warning (minibox has no LSM)", () => {
    const o = parseSecurityOpts(["label=disable", "apparmor=unconfined"], noFile);
    expect(o.securityOpt).toEqual(["label=disable", "apparmor=unconfined"]);
    expect(o.warnings).toEqual([
      "WARNING: minibox has no SELinux support: --security-opt label=disable is ignored",
      "WARNING: minibox has no AppArmor support: --security-opt apparmor=unconfined is ignored",
    ]);
  });
});

describe("generateSpec: seccomp, no_new_privs, --privileged", () => {
  it("a profile is resolved into linux.seccomp; absent or unconfined: none", () => {
    const spec = generateSpec(secured());
    expect(spec.linux.seccomp?.defaultAction).toBe("SCMP_ACT_ALLOW");
    expect(spec.linux.seccomp?.syscalls[0]?.names).toEqual(["mkdir", "mkdirat"]);
    expect(spec.linux.seccomp).not.toHaveProperty("archMap");
    expect(generateSpec(settings()).linux.seccomp).toBeUndefined();
    expect(generateSpec(secured({ seccomp: "unconfined" })).linux.seccomp).toBeUndefined();
  });

  it("minibox's default profile resolves", () => {
    const spec = generateSpec(secured({ seccomp: defaultProfile() }));
    expect(spec.linux.seccomp?.architectures.length).toBeGreaterThan(0);
  });

  it("no_new_privs: on unless turned off", () => {
    expect(generateSpec(secured()).process.noNewPrivileges).toBe(true);
    expect(generateSpec(secured({ noNewPrivileges: false })).process.noNewPrivileges).toBe(false);
  });

  it("--privileged: every capability, no seccomp, no masked or read-only paths, /sys writable", () => {
    const spec = generateSpec(secured({ privileged: true, idmap: IDMAP, capDrop: ["CAP_KILL"] }));
    expect(spec.process.capabilities.bounding).toEqual([...ALL_CAPABILITIES]);
    expect(spec.process.capabilities.effective).toEqual([...ALL_CAPABILITIES]);
    expect(spec.linux.seccomp).toBeUndefined();
    expect(spec.linux.maskedPaths).toEqual([]);
    expect(spec.linux.readonlyPaths).toEqual([]);
    expect(spec.mounts.find((m) => m.destination === "/sys")?.options).not.toContain("ro");
    const plain = generateSpec(secured());
    expect(plain.linux.maskedPaths).toEqual([...DEFAULT_MASKED_PATHS]);
    expect(plain.mounts.find((m) => m.destination === "/sys")?.options).toContain("ro");
  });

  it("--privileged without a user namespace: only the capabilities minibox holds", () => {
    const held = ALL_CAPABILITIES.filter((c) => c !== "CAP_SYS_RESOURCE");
    const caps = generateSpec(secured({ privileged: true, callerCapabilities: held })).process
      .capabilities;
    expect(caps.bounding).toEqual(held);
    // In a user namespace its root gets them all, whatever minibox holds.
    const inUserns = generateSpec(
      secured({ privileged: true, idmap: IDMAP, callerCapabilities: held }),
    ).process.capabilities;
    expect(inUserns.bounding).toContain("CAP_SYS_RESOURCE");
  });

  it("--privileged: the host's devices become linux.devices; otherwise none", () => {
    const tun = { path: "/dev/net/tun", type: "c" as const, major: 10, minor: 200 };
    const dev = { ...tun, fileMode: 0o600, uid: 0, gid: 0 };
    expect(generateSpec(secured({ privileged: true, hostDevices: [dev] })).linux.devices).toEqual([
      dev,
    ]);
    expect(generateSpec(secured({ hostDevices: [dev] })).linux.devices).toBeUndefined();
  });

  it("the capability-dependent rules are resolved against the bounding set", () => {
    expect(() => generateSpec(settings({ seccomp: PROFILE }))).toThrow(/RunSettings.host/);
  });
});

describe("plan: the seccomp step", () => {
  const resolved = generateSpec(secured()).linux.seccomp;
  if (!resolved) throw new Error("no linux.seccomp");
  const filter = compileFilter(resolved, "x64");
  const hex = Buffer.from(filter.program).toString("hex");
  const user = { uid: 0, gid: 0, additionalGids: [] };

  it("with no_new_privs: the last privilege step, after no-new-privs", () => {
    const ops = credentialSteps({ user, noNewPrivileges: true, seccomp: filter }).map((s) => s.op);
    expect(ops).toEqual([
      "closefds",
      "groups",
      "bounding",
      "user",
      "caps",
      "no-new-privs",
      "seccomp",
    ]);
  });

  it("without no_new_privs: before any capability is dropped (runc's order)", () => {
    const rlimits = [{ type: "RLIMIT_NOFILE", soft: 1, hard: 1 }];
    const ops = credentialSteps({ user, rlimits, noNewPrivileges: false, seccomp: filter }).map(
      (s) => s.op,
    );
    expect(ops).toEqual(["closefds", "rlimit", "seccomp", "groups", "bounding", "user", "caps"]);
  });

  it("one hex field, described with its size for --trace", () => {
    const plan = buildPlan(generateSpec(secured()), layout({ arch: "x64", seccomp: filter }));
    const i = plan.child.findIndex((s) => s.op === "seccomp");
    const step = plan.child[i];
    expect(step?.args).toEqual([hex]);
    expect(step?.describe).toBe(
      `seccomp filter: ${filter.instructions} instructions, ${filter.allowed} syscalls allowed`,
    );
    // After no-new-privs, then only the program's own steps (env … exec): descriptors were closed before it.
    expect(plan.child[i - 1]?.op).toBe("no-new-privs");
    expect(plan.child.slice(i + 1).map((s) => s.op)).not.toContain("closefds");
    expect(plan.child.findIndex((s) => s.op === "closefds")).toBeLessThan(i);
  });

  it("no step when the spec has no filter (unconfined, --privileged)", () => {
    for (const over of [{ seccomp: "unconfined" as const }, { privileged: true }]) {
      const plan = buildPlan(generateSpec(secured(over)), layout());
      expect(plan.child.some((s) => s.op === "seccomp")).toBe(false);
    }
  });

  it("exec runs under the container's filter; --privileged gives every capability", () => {
    const spec = generateSpec(secured({ idmap: IDMAP }));
    const opts = { command: ["id"], tty: false, interactive: false, env: [], detach: false };
    const plain = buildExecPlan(spec, 42, [], opts, user, filter);
    expect(plain.child.find((s) => s.op === "seccomp")?.args).toEqual([hex]);
    const priv = buildExecPlan(spec, 42, [], { ...opts, privileged: true }, user, filter);
    const caps = priv.child.find((s) => s.op === "caps");
    expect(caps?.op === "caps" && caps.effective).toEqual([...ALL_CAPABILITIES]);
    expect(priv.child.some((s) => s.op === "seccomp")).toBe(true);
    const unconfined = generateSpec(secured({ idmap: IDMAP, seccomp: "unconfined" }));
    const none = buildExecPlan(unconfined, 42, [], opts, user);
    expect(none.child.some((s) => s.op === "seccomp")).toBe(false);
  });

  it("a spec with a filter but no compiled program is refused, never planned without the filter", () => {
    expect(() => buildPlan(generateSpec(secured()), layout())).toThrow(/no compiled filter/);
    const spec = generateSpec(secured({ idmap: IDMAP }));
    const opts = { command: ["id"], tty: false, interactive: false, env: [], detach: false };
    expect(() => buildExecPlan(spec, 42, [], opts, user)).toThrow(/no compiled filter/);
  });
});

describe("device steps: --privileged's host devices", () => {
  const dev = (path: string, type: "c" | "b", major: number, minor: number) => ({
    path,
    type,
    major,
    minor,
    fileMode: 0o660,
    uid: 0,
    gid: 6,
  });

  it("mknod'd as on the host (type, numbers, mode), parents made, not chowned; defaults kept", () => {
    const ctx = context({
      privileged: true,
      idmap: IDMAP,
      hostDevices: [
        dev("/dev/net/tun", "c", 10, 200),
        dev("/dev/vda", "b", 254, 0),
        dev("/dev/null", "c", 1, 3),
        dev("/dev/ptmx", "c", 5, 2),
      ],
    });
    const text = lines(deviceSteps(ctx));
    expect(text).toContain(`mkdir ${ROOTFS}/dev/net 0755`);
    expect(text).toContain(`mknod ${ROOTFS}/dev/net/tun 020660 10 200`);
    expect(text).toContain(`mknod ${ROOTFS}/dev/vda 060660 254 0`);
    expect(text.filter((l) => l.startsWith(`mknod ${ROOTFS}/dev/null `))).toHaveLength(1);
    expect(text.some((l) => l.startsWith(`mknod ${ROOTFS}/dev/ptmx`))).toBe(false);
    expect(text.some((l) => l.startsWith(`chown ${ROOTFS}/dev/vda`))).toBe(false);
  });
});
