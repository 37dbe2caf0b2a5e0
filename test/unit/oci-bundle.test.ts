// An OCI bundle's config.json into minibox's Spec (bundle-spec.ts), where its
// cgroup goes (bundle-launch.ts), and the plan the executor gets for it: pure
// functions, so every rule is checked here without a kernel.
import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import {
  cgroupMountFor,
  cgroupPlace,
  deviceRulesOf,
  limitsOf,
} from "../../src/runtime/oci/bundle-launch.js";
import { bundleSpec } from "../../src/runtime/oci/bundle-spec.js";
import { starterSpec } from "../../src/runtime/oci/default-spec.js";
import { buildPlan, type PlanLayout } from "../../src/runtime/plan.js";

/** config.json as the tests edit it: any shape, on purpose (bad input included). */
// biome-ignore lint/suspicious/noExplicitAny: a config.json is edited freely here
type Config = Record<string, any>;

const HOST = { arch: "x64", kernel: "6.1.0" };

/** `runc spec`'s config (minibox's equal), changed by `edit`. */
function config(edit: (c: Config) => void = () => undefined): Config {
  const c = JSON.parse(JSON.stringify(starterSpec({})));
  edit(c);
  return c;
}

function errorOf(c: unknown): string {
  try {
    bundleSpec(c, "/b", HOST);
  } catch (err) {
    expect(err).toBeInstanceOf(MiniboxError);
    return (err as Error).message;
  }
  throw new Error("no error");
}

describe("bundleSpec: config.json checked, field by field", () => {
  it("runc spec's starter config: rootfs resolved against the bundle, namespaces made", () => {
    const { spec, rootfs, hooks } = bundleSpec(config(), "/bundles/a", HOST);
    expect(rootfs).toBe("/bundles/a/rootfs");
    expect(spec.root).toEqual({ path: "/bundles/a/rootfs", readonly: true });
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual(
      ["ipc", "mount", "network", "pid", "uts"].sort(),
    );
    expect(spec.process.args).toEqual(["sh"]);
    expect(hooks).toEqual({});
  });

  it.each([
    ["no root", (c: Config) => delete c.root, "config.json: root: is required"],
    ["no process", (c: Config) => delete c.process, "config.json: process: is required"],
    [
      "empty args",
      (c: Config) => (c.process.args = []),
      "config.json: process.args: must not be empty",
    ],
    [
      "relative cwd",
      (c: Config) => (c.process.cwd = "x"),
      'config.json: process.cwd: "x" must be an absolute path',
    ],
    [
      "unknown namespace",
      (c: Config) => c.linux.namespaces.push({ type: "time2" }),
      'config.json: linux.namespaces[5].type: unknown namespace type "time2" (pid, network, mount, ipc, uts, user, cgroup)',
    ],
    [
      "a namespace twice",
      (c: Config) => c.linux.namespaces.push({ type: "pid" }),
      "config.json: linux.namespaces[5].type: namespace pid is listed twice",
    ],
    [
      "joining a user namespace",
      (c: Config) => c.linux.namespaces.push({ type: "user", path: "/proc/1/ns/user" }),
      "config.json: linux.namespaces[5].path: joining an existing user namespace is not supported by minibox-runc",
    ],
    [
      "relative mount destination",
      (c: Config) => c.mounts.push({ destination: "tmp", type: "tmpfs", source: "tmpfs" }),
      'config.json: mounts[7].destination: "tmp" must be an absolute path',
    ],
    [
      "relative bind source",
      (c: Config) => c.mounts.push({ destination: "/x", source: "rel", options: ["rbind"] }),
      'config.json: mounts[7].source: "rel" must be an absolute path for a bind mount',
    ],
    [
      "unknown capability",
      (c: Config) => c.process.capabilities.bounding.push("CAP_FLY"),
      'config.json: process.capabilities.bounding[3]: unknown capability "CAP_FLY"',
    ],
    [
      "a hook with a relative path",
      (c: Config) => (c.hooks = { prestart: [{ path: "hook" }] }),
      'config.json: hooks.prestart[0].path: "hook" must be an absolute path',
    ],
    [
      "a hostname without a uts namespace",
      (c: Config) =>
        (c.linux.namespaces = c.linux.namespaces.filter((n: Config) => n.type !== "uts")),
      "config.json: hostname: setting a hostname needs a uts namespace (new or joined)",
    ],
    [
      "no mount namespace (runc would mount into the caller's)",
      (c: Config) =>
        (c.linux.namespaces = c.linux.namespaces.filter((n: Config) => n.type !== "mount")),
      "config.json: linux.namespaces: minibox-runc needs a mount namespace (a new one, or one to join by path): without one the container's mounts would be made in the caller's",
    ],
    [
      "a user namespace without mappings",
      (c: Config) => c.linux.namespaces.push({ type: "user" }),
      "config.json: linux.uidMappings: a user namespace needs uidMappings and gidMappings",
    ],
  ])("%s", (_what, edit, message) => {
    expect(errorOf(config(edit))).toBe(message);
  });

  it("a mount with bind options and no type is a bind; oomScoreAdj and hooks are kept", () => {
    const { spec, hooks } = bundleSpec(
      config((c) => {
        c.mounts.push({ destination: "/data", source: "/srv/data", options: ["rbind", "ro"] });
        c.process.oomScoreAdj = 500;
        c.hooks = { poststop: [{ path: "/bin/true", args: ["true"], timeout: 3 }] };
      }),
      "/b",
      HOST,
    );
    expect(spec.mounts.at(-1)).toEqual({
      destination: "/data",
      type: "bind",
      source: "/srv/data",
      options: ["rbind", "ro"],
    });
    expect(spec.process.oomScoreAdj).toBe(500);
    expect(hooks.poststop).toEqual([{ path: "/bin/true", args: ["true"], timeout: 3 }]);
  });
});

describe("where the container's cgroup goes, and what it allows", () => {
  it("cgroupsPath: runc's absolute path, minibox's place when absent, systemd's form refused", () => {
    expect(cgroupPlace("/default/abc", "abc")).toEqual({ parent: "/default", name: "abc" });
    expect(cgroupPlace("/libpod_parent/libpod-1", "1")).toEqual({
      parent: "/libpod_parent",
      name: "libpod-1",
    });
    expect(cgroupPlace("", "abc")).toEqual({ name: "abc" });
    expect(() => cgroupPlace("machine.slice:libpod:abc", "abc")).toThrow(
      /systemd's slice:prefix:name form/,
    );
  });

  it("the spec's device rules, then runc's standard devices (ptys among them), then linux.devices", () => {
    const { spec } = bundleSpec(
      config((c) => {
        c.linux.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229 }];
      }),
      "/b",
      HOST,
    );
    const rules = deviceRulesOf(spec) ?? [];
    expect(rules[0]).toEqual({ allow: false, type: "a", access: "rwm" });
    expect(rules).toContainEqual({ allow: true, type: "c", major: 136, access: "rwm" });
    expect(rules.at(-1)).toEqual({ allow: true, type: "c", major: 10, minor: 229, access: "rwm" });
    expect(limitsOf(spec).devices).toEqual(rules);
  });

  it("a cgroup mount is cgroup2 on a v2 host, left for the planner on v1", () => {
    const m = { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro"] };
    expect(cgroupMountFor(m, 2)).toMatchObject({ type: "cgroup2", source: "cgroup2" });
    expect(cgroupMountFor(m, 1)).toBe(m);
  });
});

describe("the plan for a bundle", () => {
  const layout: PlanLayout = {
    containerDir: "/run/r/c1",
    layers: [],
    idmappedLayers: false,
    cgroupProcs: ["/sys/fs/cgroup/pids/c1/cgroup.procs"],
    waitForGo: false,
    init: false,
    interactive: true,
    rootfsBind: "/b/rootfs",
    startFifo: "/run/r/c1/exec.fifo",
    cgroupV1Dirs: ["/sys/fs/cgroup/memory/x/c1", "/sys/fs/cgroup/pids/x/c1"],
    passFds: 2,
  };
  const { spec } = bundleSpec(
    config((c) => {
      c.linux.namespaces = c.linux.namespaces.map((n: Config) =>
        n.type === "network" ? { ...n, path: "/run/netns/pod" } : n,
      );
      c.mounts.push({
        destination: "/sys/fs/cgroup",
        type: "cgroup",
        source: "cgroup",
        options: ["ro"],
      });
    }),
    "/b",
    HOST,
  );
  const plan = buildPlan(spec, layout);
  const ops = (section: typeof plan.setup) => section.map((s) => s.op);

  it("binds the bundle's rootfs where run's overlay goes; no overlay", () => {
    const mount = plan.setup.find((s) => s.op === "mount");
    expect(mount).toMatchObject({
      source: "/b/rootfs",
      target: "/run/r/c1/rootfs",
      flags: 0x1000 | 0x4000,
    });
    expect(plan.setup.some((s) => s.op === "mount" && s.fstype === "overlay")).toBe(false);
  });

  it("joins a namespace given by path before the clone, and does not create it", () => {
    const setup = ops(plan.setup);
    expect(setup.slice(-3)).toEqual(["join-ns", "base", "clone"]);
    expect(plan.setup.at(-3)).toMatchObject({ path: "/run/netns/pod", type: "net" });
    const clone = plan.setup.at(-1) as { flags: number };
    expect(clone.flags & 0x40000000).toBe(0); // no CLONE_NEWNET
    expect(clone.flags & 0x20000000).not.toBe(0); // CLONE_NEWPID
    expect(ops(plan.child)).not.toContain("ifup"); // the joined netns is set up by its owner
  });

  it("create: the FIFO is made in setup; the init waits for start last, then gets the passed descriptors", () => {
    expect(ops(plan.setup)).toContain("exec-fifo");
    const child = ops(plan.child);
    expect(child.indexOf("closefds")).toBeLessThan(child.indexOf("wait-start"));
    expect(child.indexOf("pass-fds")).toBe(child.indexOf("exec") - 1);
  });

  it("a cgroup mount on v1: a tmpfs, each of the container's hierarchies bound by name, read-only", () => {
    const targets = plan.child
      .filter((s) => s.op === "mount")
      .map((s: Config) => [s.source, s.target]);
    expect(targets).toContainEqual(["cgroup", "/run/r/c1/rootfs/sys/fs/cgroup"]);
    expect(targets).toContainEqual([
      "/sys/fs/cgroup/memory/x/c1",
      "/run/r/c1/rootfs/sys/fs/cgroup/memory",
    ]);
    expect(targets).toContainEqual([
      "/sys/fs/cgroup/pids/x/c1",
      "/run/r/c1/rootfs/sys/fs/cgroup/pids",
    ]);
    const ro = plan.child.filter((s) => s.op === "remount-ro").map((s: Config) => s.value);
    expect(ro).toContain("/run/r/c1/rootfs/sys/fs/cgroup/memory");
    expect(ro).toContain("/run/r/c1/rootfs/sys/fs/cgroup");
  });
});

describe("security labels (process.apparmorProfile, selinuxLabel, linux.mountLabel)", () => {
  const labelled = () =>
    config((c) => {
      c.process.apparmorProfile = "docker-default";
      c.linux.mountLabel = "system_u:object_r:container_file_t:s0";
    });

  it("are accepted where the host enforces neither module (nothing to confine with)", () => {
    const lsms = { apparmor: false, selinux: false };
    expect(() => bundleSpec(labelled(), "/b", { ...HOST, lsms })).not.toThrow();
  });

  it("are refused, naming the field, where the host enforces the module minibox-runc does not apply", () => {
    const refused = (lsms: { apparmor: boolean; selinux: boolean }) => {
      try {
        bundleSpec(labelled(), "/b", { ...HOST, lsms });
      } catch (err) {
        return (err as Error).message;
      }
      return "accepted";
    };
    expect(refused({ apparmor: true, selinux: false })).toBe(
      "config.json: process.apparmorProfile: this host enforces AppArmor and minibox-runc applies no AppArmor labels: remove the field, or use runc",
    );
    expect(refused({ apparmor: false, selinux: true })).toMatch(
      /^config\.json: linux\.mountLabel: this host enforces SELinux/,
    );
  });
});
