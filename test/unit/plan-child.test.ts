import { describe, expect, it } from "vitest";
import { childMountSteps } from "../../src/runtime/plan/child-mount-steps.js";
import { credentialSteps } from "../../src/runtime/plan/credential-steps.js";
import { execSteps } from "../../src/runtime/plan/exec-steps.js";
import {
  CLONE,
  enterNamespaceSteps,
  utsAndNetworkSteps,
} from "../../src/runtime/plan/namespace-steps.js";
import { parentSteps, warmCgroupSteps } from "../../src/runtime/plan/parent-steps.js";
import { consoleSteps, stdinSteps } from "../../src/runtime/plan/stdio-steps.js";
import { buildPlan } from "../../src/runtime/plan.js";
import { generateSpec } from "../../src/runtime/spec.js";
import { context, HOST_ROOT, IDMAP, layout, lines, settings } from "./plan-fixtures.js";

describe("parentSteps", () => {
  it("writes the id maps, joins the cgroup, reports the PID, waits for go when asked", () => {
    const steps = lines(parentSteps(context({ idmap: IDMAP }, { waitForGo: true })));
    expect(steps).toEqual([
      `write /proc/{pid}/uid_map 0 ${HOST_ROOT} 65536\n`,
      `write /proc/{pid}/gid_map 0 ${HOST_ROOT} 65536\n`,
      "write /cg/cgroup.procs {pid}",
      "report-pid",
      "wait-go",
    ]);
    expect(lines(parentSteps(context()))).toEqual(["write /cg/cgroup.procs {pid}", "report-pid"]);
  });

  it("has setup warm up cgroup moves in the first cgroup the init joins, and not without one", () => {
    expect(lines(warmCgroupSteps(["/cg/a/cgroup.procs", "/cg/b/cgroup.procs"]))).toEqual([
      "warm-cgroup /cg/a/cgroup.procs",
    ]);
    expect(warmCgroupSteps([])).toEqual([]);
    const plan = buildPlan(generateSpec(settings()), layout({ cgroupProcs: [] }));
    expect(plan.setup.some((s) => s.op === "warm-cgroup")).toBe(false);
  });
});

describe("enterNamespaceSteps, utsAndNetworkSteps", () => {
  it("unshares the cgroup namespace, then becomes the user namespace's root", () => {
    expect(lines(enterNamespaceSteps(context({ idmap: IDMAP })))).toEqual([
      "unshare 0x2000000",
      "user 0 0",
    ]);
    expect(lines(enterNamespaceSteps(context()))).toEqual(["unshare 0x2000000"]);
  });

  it("sets the hostname, brings up lo only in a network namespace of its own", () => {
    expect(lines(utsAndNetworkSteps(context()))).toEqual(["sethostname box", "ifup lo"]);
    expect(lines(utsAndNetworkSteps(context({ network: "host" })))).toEqual(["sethostname box"]);
  });
});

describe("stdinSteps, consoleSteps", () => {
  it("reads /dev/null without -i and -t; a console with -t", () => {
    expect(lines(stdinSteps(false, false))).toEqual(["stdin-null"]);
    expect(stdinSteps(true, false)).toEqual([]);
    expect(stdinSteps(false, true)).toEqual([]);
    expect(lines(consoleSteps(true))).toEqual(["console"]);
    expect(consoleSteps(false)).toEqual([]);
  });
});

describe("childMountSteps", () => {
  it("mounts proc and the rest inside, masks, makes paths read-only, ends with pivot_root", () => {
    const steps = lines(childMountSteps(context()));
    expect(steps[0]).toBe("mount proc /c/rootfs/proc proc 0xe -");
    // /dev, filled in setup and set aside there, comes back at its turn in mounts[]: after /proc.
    expect(steps[1]).toBe("mount /c/staged/1 /c/rootfs/dev - 0x5000 -");
    expect(steps.filter((l) => l.includes(" /c/rootfs/dev "))).toHaveLength(1);
    expect(steps).toContain("mask /c/rootfs/proc/kcore /dev/null");
    expect(steps).toContain("remount-ro /c/rootfs/proc/sys");
    expect(steps.at(-1)).toBe("pivot_root /c/rootfs");
  });

  it("binds the host's /sys read-only with --network host (sysfs needs the netns' owner)", () => {
    const steps = lines(childMountSteps(context({ network: "host" })));
    const at = steps.indexOf("mount /sys /c/rootfs/sys - 0x5000 -");
    expect(at).toBeGreaterThan(0);
    expect(steps[at + 1]).toBe("remount-ro /c/rootfs/sys");
  });
});

describe("credentialSteps", () => {
  const user = { uid: 1000, gid: 100, additionalGids: [10, 20] };
  const capabilities = {
    bounding: ["CAP_CHOWN", "CAP_KILL"],
    effective: ["CAP_KILL"],
    permitted: ["CAP_KILL"],
    inheritable: [],
  };

  it("rlimits, groups, bounding set, user, capabilities, no_new_privs — in that order", () => {
    const steps = credentialSteps({
      user,
      capabilities,
      noNewPrivileges: true,
      rlimits: [{ type: "RLIMIT_NOFILE", soft: 10, hard: 20 }],
    });
    expect(lines(steps)).toEqual([
      "closefds",
      "rlimit 7 10 20",
      "groups 10 20",
      "bounding 21",
      "user 1000 100",
      "caps 20 20 0",
      "no-new-privs",
    ]);
    expect(steps.map((s) => s.describe)).toEqual([
      "mark every descriptor above 2 close-on-exec",
      "setrlimit RLIMIT_NOFILE soft=10 hard=20",
      "setgroups [10, 20]",
      "capability bounding set: CHOWN KILL",
      "switch to uid 1000, gid 100",
      "effective capabilities: KILL",
      "prctl(PR_SET_NO_NEW_PRIVS)",
    ]);
  });

  it("without rlimits or no_new_privs, those steps are left out", () => {
    // closefds first: before any seccomp filter, which need not allow close_range.
    expect(lines(credentialSteps({ user, capabilities })).slice(0, 2)).toEqual([
      "closefds",
      "groups 10 20",
    ]);
    expect(lines(credentialSteps({ user, capabilities })).at(-1)).toBe("caps 20 20 0");
  });

  it("refuses an unknown rlimit", () => {
    const rlimits = [{ type: "RLIMIT_NOPE", soft: 1, hard: 1 }];
    expect(() => credentialSteps({ user, rlimits })).toThrow(/unknown rlimit RLIMIT_NOPE/);
  });
});

describe("execSteps", () => {
  it("sets the environment, runs the init with --init, then execs", () => {
    expect(lines(execSteps({ argv: ["sh", "-c", "x"], env: ["A=1"], init: true }))).toEqual([
      "env A=1",
      "init",
      "exec sh -c x",
    ]);
    expect(lines(execSteps({ argv: ["true"], env: [] }))).toEqual(["exec true"]);
  });

  it("refuses an empty command", () => {
    expect(() => execSteps({ argv: [], env: [] })).toThrow(/no command specified/);
  });
});

describe("namespaces given by path (minibox-runc)", () => {
  function joined(paths: Record<string, string>) {
    const spec = generateSpec(settings());
    spec.linux.namespaces = spec.linux.namespaces.map((n) =>
      paths[n.type] ? { ...n, path: paths[n.type] } : n,
    );
    return buildPlan(spec, layout({ idmappedLayers: false }));
  }
  const text = (steps: readonly { op: string; args: readonly string[] }[]) =>
    steps.map((s) => [s.op, ...s.args].join(" "));

  it("a mount namespace is joined first of all, instead of the executor's own, and not cloned", () => {
    const plan = joined({ mount: "/proc/42/ns/mnt", uts: "/proc/42/ns/uts" });
    const setup = text(plan.setup);
    // Only the cgroup warm-up's fork comes before: its child touches nothing but a cgroup file.
    expect(setup.slice(0, 2)).toEqual([
      "warm-cgroup /cg/cgroup.procs",
      "join-ns /proc/42/ns/mnt mnt",
    ]);
    expect(setup).not.toContain("mountns");
    // The others just before the clone (and its base), which makes no new mount or uts namespace.
    expect(setup.slice(-3, -1)).toEqual(["join-ns /proc/42/ns/uts uts", "base /c"]);
    const clone = plan.setup.at(-1);
    expect(clone?.op).toBe("clone");
    expect(Number(clone?.args[0]) & (CLONE.NEWNS | CLONE.NEWUTS)).toBe(0);
    // runc sets the hostname in a joined uts namespace too.
    expect(text(plan.child)).toContain("sethostname box");
  });

  it("without paths: the executor's own mount namespace, nothing joined", () => {
    const setup = text(joined({}).setup);
    expect(setup.slice(0, 2)).toEqual(["warm-cgroup /cg/cgroup.procs", "mountns"]);
    expect(setup.some((l) => l.startsWith("join-ns"))).toBe(false);
  });
});
