// --ulimit, --group-add, --sysctl, --device and the device cgroup: Docker's
// parsing and errors, what lands in the spec, and the plan steps and cgroup
// files they become.
import { describe, expect, test } from "vitest";
import { v1Files } from "../../src/runtime/cgroups/index.js";
import {
  DEFAULT_DEVICE_RULES,
  deviceRules,
  gatherDevices,
  parseDeviceFlag,
  type SpecDevice,
  v1DeviceRule,
} from "../../src/runtime/devices.js";
import { parseHardLimits } from "../../src/runtime/limits.js";
import { childMountSteps } from "../../src/runtime/plan/child-mount-steps.js";
import { deviceSteps } from "../../src/runtime/plan/device-steps.js";
import { buildPlan } from "../../src/runtime/plan.js";
import { generateSpec } from "../../src/runtime/spec.js";
import { checkSysctl, parseSysctlFlag, sysctlsFrom } from "../../src/runtime/sysctls.js";
import {
  checkUlimitsInUserns,
  mergeUlimits,
  parseUlimit,
  withUlimits,
} from "../../src/runtime/ulimits.js";
import { resolveGroupAdd } from "../../src/runtime/user.js";
import { context, errorOf, IDMAP, layout, lines, ROOTFS, settings } from "./plan-fixtures.js";

/** A character device node as gatherDevices reports it: owned by root, group `gid`. */
function charNode(
  path: string,
  major: number,
  minor: number,
  fileMode: number,
  gid = 0,
): SpecDevice {
  return { path, type: "c", major, minor, fileMode, uid: 0, gid };
}

describe("--ulimit", () => {
  test("NAME=SOFT:HARD, NAME=SOFT (hard = soft), -1 for unlimited", () => {
    expect(parseUlimit("nofile=1024:2048")).toEqual({ Name: "nofile", Soft: 1024, Hard: 2048 });
    expect(parseUlimit("core=0")).toEqual({ Name: "core", Soft: 0, Hard: 0 });
    expect(parseUlimit("memlock=-1:-1")).toEqual({ Name: "memlock", Soft: -1, Hard: -1 });
    expect(parseUlimit("stack=8192:-1")).toEqual({ Name: "stack", Soft: 8192, Hard: -1 });
  });

  test("Docker's errors: soft above hard, unknown name, no '=', three values, not a number", () => {
    expect(errorOf(() => parseUlimit("nofile=20:10")).message).toBe(
      'invalid argument "nofile=20:10" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 20 > 10',
    );
    expect(errorOf(() => parseUlimit("as=1")).message).toContain("invalid ulimit type: as");
    expect(errorOf(() => parseUlimit("nofile")).message).toContain("invalid ulimit argument");
    expect(errorOf(() => parseUlimit("nofile=1:2:3")).message).toContain(
      "too many limit value arguments",
    );
    expect(errorOf(() => parseUlimit("nofile=lots")).message).toContain('invalid limit "lots"');
    expect(errorOf(() => parseUlimit("nofile=-1:10")).message).toContain("-1 > 10");
    expect(errorOf(() => parseUlimit("nofile=-2")).message).toContain("out of range");
  });

  test("a repeated name: the last wins; each replaces the default of its resource (nofile too)", () => {
    const list = mergeUlimits([
      parseUlimit("nofile=10"),
      parseUlimit("core=0"),
      parseUlimit("nofile=20:30"),
    ]);
    expect(list).toEqual([
      { Name: "nofile", Soft: 20, Hard: 30 },
      { Name: "core", Soft: 0, Hard: 0 },
    ]);
    const defaults = [{ type: "RLIMIT_NOFILE", soft: 1024, hard: 1024 }];
    expect(withUlimits(defaults, list)).toEqual([
      { type: "RLIMIT_NOFILE", soft: 20, hard: 30 },
      { type: "RLIMIT_CORE", soft: 0, hard: 0 },
    ]);
  });

  test("in a user namespace a hard limit above minibox's own is refused with the one allowed", () => {
    const e = errorOf(() =>
      checkUlimitsInUserns([{ Name: "nofile", Soft: 10, Hard: 2_000_000 }], { nofile: 1048576 }),
    );
    expect(e.message).toContain("the hard limit 2000000 is above minibox's own (1048576)");
    expect(e.hint).toContain("--userns=host");
    expect(() =>
      checkUlimitsInUserns([{ Name: "core", Soft: -1, Hard: -1 }], { core: -1 }),
    ).not.toThrow();
    expect(() =>
      checkUlimitsInUserns([{ Name: "nofile", Soft: 1, Hard: -1 }], { nofile: 4096 }),
    ).toThrow(/unlimited is above/);
  });

  test("/proc/self/limits: hard limits by Docker name", () => {
    const text = [
      "Limit                     Soft Limit           Hard Limit           Units     ",
      "Max cpu time              unlimited            unlimited            seconds   ",
      "Max open files            1024                 524288               files     ",
      "Max core file size        0                    unlimited            bytes     ",
    ].join("\n");
    expect(parseHardLimits(text)).toEqual({ cpu: -1, nofile: 524288, core: -1 });
  });

  test("the spec's rlimits and the plan's setrlimit steps (-1 reaches the executor as -1: RLIM_INFINITY)", () => {
    const spec = generateSpec(
      settings({
        ulimits: [
          { Name: "nofile", Soft: 100, Hard: 200 },
          { Name: "core", Soft: -1, Hard: -1 },
        ],
      }),
    );
    expect(spec.process.rlimits).toEqual([
      { type: "RLIMIT_NOFILE", soft: 100, hard: 200 },
      { type: "RLIMIT_CORE", soft: -1, hard: -1 },
    ]);
    const steps = lines(buildPlan(spec, layout()).child).filter((l) => l.startsWith("rlimit"));
    expect(steps).toEqual(["rlimit 7 100 200", "rlimit 4 -1 -1"]);
  });
});

describe("--group-add", () => {
  const group = "root:x:0:\naudio:x:29:\nvideo:x:44:alice\n";
  test("names from the image's /etc/group, numbers as they are, each once", () => {
    expect(resolveGroupAdd(["audio", "1234", "44", "audio"], group)).toEqual([29, 1234, 44]);
  });
  test("an unknown name: Docker's error", () => {
    expect(errorOf(() => resolveGroupAdd(["nosuch"], group)).message).toBe(
      "unable to find group nosuch: no matching entries in group file",
    );
    expect(errorOf(() => resolveGroupAdd(["4294967295"], group)).message).toContain("out of range");
  });
  test("added to the user's supplementary groups in the spec", () => {
    const user = { uid: 0, gid: 0, additionalGids: [0, 10], home: "/root" };
    const spec = generateSpec(settings({ user, groupAdd: [29, 10] }));
    expect(spec.process.user.additionalGids).toEqual([0, 10, 29]);
  });
});

describe("--sysctl", () => {
  const own = { network: true, ipc: true, uts: true };
  test("NAME=VALUE, the value taken whole (spaces, '=')", () => {
    expect(parseSysctlFlag("net.ipv4.ip_local_port_range=1024 2048")).toEqual([
      "net.ipv4.ip_local_port_range",
      "1024 2048",
    ]);
    expect(parseSysctlFlag("kernel.domainname=a=b")).toEqual(["kernel.domainname", "a=b"]);
    expect(errorOf(() => parseSysctlFlag("net.ipv4.ip_forward")).message).toContain(
      "use NAME=VALUE",
    );
    expect(errorOf(() => parseSysctlFlag("net/../../x=1")).message).toContain("use NAME=VALUE");
  });

  test("namespaced ones pass: net.*, the IPC ones, fs.mqueue.*, kernel.domainname", () => {
    for (const name of [
      "net.ipv4.ip_forward",
      "kernel.shmmax",
      "kernel.shm_rmid_forced",
      "kernel.msgmnb",
      "kernel.sem",
      "fs.mqueue.msg_max",
      "kernel.domainname",
    ]) {
      expect(() => checkSysctl(name, own), name).not.toThrow();
    }
  });

  test("others are refused in one line that lists what is allowed", () => {
    const e = errorOf(() => checkSysctl("vm.swappiness", own));
    expect(e.message).toBe(
      'sysctl "vm.swappiness" is not allowed: it is not in one of the container\'s own namespaces, so setting it would change the host',
    );
    expect(e.hint).toContain("net.*");
    expect(e.hint).toContain("kernel.shmmax");
    expect(errorOf(() => checkSysctl("kernel.hostname", own)).hint).toBe("use --hostname");
    expect(() => checkSysctl("kernel.shmmaxx", own)).toThrow(/not allowed/);
  });

  test("net.* with --network host: runc's error", () => {
    expect(
      errorOf(() => sysctlsFrom(["net.ipv4.ip_forward=1"], { ...own, network: false })).message,
    ).toBe('sysctl "net.ipv4.ip_forward" not allowed in host network namespace');
  });

  test("spec linux.sysctl; the plan writes each under the container's /proc after it is mounted, before /proc/sys goes read-only", () => {
    const sysctls = sysctlsFrom(
      ["kernel.shmmax=65536", "net.ipv4.ip_local_port_range=1024 2048"],
      own,
    );
    const ctx = context({ sysctls });
    expect(ctx.spec.linux.sysctl).toEqual(sysctls);
    const steps = lines(childMountSteps(ctx));
    const proc = steps.indexOf(`mount proc ${ROOTFS}/proc proc 0xe -`);
    const shm = steps.indexOf(`write ${ROOTFS}/proc/sys/kernel/shmmax 65536`);
    const net = steps.indexOf(`write ${ROOTFS}/proc/sys/net/ipv4/ip_local_port_range 1024 2048`);
    const ro = steps.indexOf(`remount-ro ${ROOTFS}/proc/sys`);
    expect(proc).toBeGreaterThanOrEqual(0);
    expect(shm).toBeGreaterThan(proc);
    expect(net).toBeGreaterThan(proc);
    expect(ro).toBeGreaterThan(Math.max(shm, net));
  });

  test("kernel.domainname goes through setdomainname(2): its /proc file is the host root's even in a UTS namespace of the container's own", () => {
    const steps = lines(
      childMountSteps(context({ sysctls: { "kernel.domainname": "example.test" } })),
    );
    expect(steps).toContain("setdomainname example.test");
    expect(steps.some((l) => l.includes("/proc/sys/kernel/domainname"))).toBe(false);
  });

  test("no --sysctl: no linux.sysctl and no write step", () => {
    const ctx = context();
    expect(ctx.spec.linux.sysctl).toBeUndefined();
    expect(lines(childMountSteps(ctx)).some((l) => l.startsWith("write"))).toBe(false);
  });
});

describe("--device", () => {
  test("docker/cli's forms", () => {
    expect(parseDeviceFlag("/dev/fuse")).toEqual({
      PathOnHost: "/dev/fuse",
      PathInContainer: "/dev/fuse",
      CgroupPermissions: "rwm",
    });
    expect(parseDeviceFlag("/dev/zero:r")).toMatchObject({
      PathInContainer: "/dev/zero",
      CgroupPermissions: "r",
    });
    expect(parseDeviceFlag("/dev/zero:/dev/myzero")).toMatchObject({
      PathInContainer: "/dev/myzero",
      CgroupPermissions: "rwm",
    });
    expect(parseDeviceFlag("/dev/zero:/dev/myzero:rw")).toMatchObject({
      PathInContainer: "/dev/myzero",
      CgroupPermissions: "rw",
    });
  });

  test("bad forms: Docker's errors", () => {
    expect(errorOf(() => parseDeviceFlag("/dev/zero:/dev/z:rwx")).message).toContain(
      "bad mode specified: rwx",
    );
    expect(errorOf(() => parseDeviceFlag("/dev/zero:/dev/z:rr")).message).toContain(
      "bad mode specified: rr",
    );
    expect(errorOf(() => parseDeviceFlag("/dev/zero:zero")).message).toContain(
      "zero is not an absolute path",
    );
    expect(errorOf(() => parseDeviceFlag("a:b:c:d")).message).toContain("bad format for path");
  });

  test("the host's node: type, numbers, mode, owner; a missing path is Docker's error", () => {
    const [zero] = gatherDevices(parseDeviceFlag("/dev/zero:/dev/myzero:r"));
    expect(zero).toMatchObject({ path: "/dev/myzero", type: "c", major: 1, minor: 5, uid: 0 });
    expect((zero as SpecDevice).fileMode).toBe(0o666);
    expect(errorOf(() => gatherDevices(parseDeviceFlag("/dev/nope"))).message).toBe(
      'error gathering device information while adding custom device "/dev/nope": no such file or directory',
    );
    expect(errorOf(() => gatherDevices(parseDeviceFlag("/etc/hostname"))).message).toContain(
      "not a device node",
    );
  });

  test("the device cgroup: deny all, runc's defaults, then each --device with its permissions", () => {
    const node = charNode("/dev/myzero", 1, 5, 0o666);
    const rules = deviceRules([{ node, access: "r" }]);
    expect(rules[0]).toEqual({ allow: false, access: "rwm" });
    expect(rules.slice(1, -1)).toEqual(DEFAULT_DEVICE_RULES);
    expect(rules.at(-1)).toEqual({ allow: true, type: "c", major: 1, minor: 5, access: "r" });
    expect(rules.map(v1DeviceRule).slice(0, 4)).toEqual([
      "a *:* rwm",
      "c *:* m",
      "b *:* m",
      "c 1:3 rwm",
    ]);
    expect(v1DeviceRule({ allow: true, type: "c", major: 136, access: "rwm" })).toBe("c 136:* rwm");
  });

  test("cgroup v1 files: devices.deny first, then the allows, after the other limits", () => {
    const files = v1Files({ pidsLimit: 10, devices: deviceRules([]) });
    expect(files[0]).toEqual(["pids.max", "10"]);
    expect(files[1]).toEqual(["devices.deny", "a *:* rwm"]);
    expect(files.slice(2).every(([f]) => f === "devices.allow")).toBe(true);
    expect(v1Files({ pidsLimit: 10 })).toEqual([["pids.max", "10"]]);
  });

  test("every new container's spec has the device cgroup, and the --device node", () => {
    const node = charNode("/dev/snd/controlC0", 116, 2, 0o660, 29);
    const spec = generateSpec(settings({ devices: [{ node, access: "rw" }] }));
    expect(spec.linux.devices).toEqual([node]);
    expect(spec.linux.resources.devices?.at(-1)).toEqual({
      allow: true,
      type: "c",
      major: 116,
      minor: 2,
      access: "rw",
    });
    expect(generateSpec(settings()).linux.devices).toBeUndefined();
  });

  test("plan: the node is made in /dev with its directory, owned as on the host, or by the container's root under a user namespace", () => {
    const node = charNode("/dev/snd/controlC0", 116, 2, 0o660, 29);
    const host = lines(deviceSteps(context({ devices: [{ node, access: "rw" }] })));
    expect(host).toContain(`mkdir ${ROOTFS}/dev/snd 0755`);
    expect(host).toContain(`mknod ${ROOTFS}/dev/snd/controlC0 020660 116 2`);
    expect(host).toContain(`chown ${ROOTFS}/dev/snd/controlC0 0 29`);
    const userns = lines(deviceSteps(context({ idmap: IDMAP, devices: [{ node, access: "rw" }] })));
    expect(userns).toContain(`chown ${ROOTFS}/dev/snd/controlC0 ${IDMAP.hostID} ${IDMAP.hostID}`);
    expect(userns).toContain(`chown ${ROOTFS}/dev/snd ${IDMAP.hostID} ${IDMAP.hostID}`);
  });

  test("a --device at a default node's path replaces it", () => {
    const node = charNode("/dev/null", 1, 5, 0o666);
    const steps = lines(deviceSteps(context({ devices: [{ node, access: "r" }] })));
    expect(steps.filter((l) => l.startsWith(`mknod ${ROOTFS}/dev/null`))).toEqual([
      `mknod ${ROOTFS}/dev/null 020666 1 5`,
    ]);
  });
});
