// linux.resources minibox-runc applies (cpuset, memory reservation,
// swappiness, the OOM killer switch, blkio) and those it refuses by field on
// a host that cannot apply them; linux.devices' FIFOs. Pure functions: the
// spec checked, the limits, the cgroup files and values, the refusal.
import { describe, expect, it } from "vitest";
import { validateLimits } from "../../src/runtime/cgroups/common.js";
import { v1Files, v2Files, v2Unsupported } from "../../src/runtime/cgroups/index.js";
import { deviceRulesOf, limitsOf } from "../../src/runtime/oci/bundle-launch.js";
import { bundleSpec } from "../../src/runtime/oci/bundle-spec.js";
import { starterSpec } from "../../src/runtime/oci/default-spec.js";
import { type HostCgroups, refusedResource } from "../../src/runtime/oci/host-resources.js";
import { limitsFromFlags } from "../../src/runtime/oci/update-resources.js";
import { deviceSteps } from "../../src/runtime/plan/device-steps.js";
import type { SpecResources } from "../../src/runtime/spec.js";
import { context, lines } from "./plan-fixtures.js";

// biome-ignore lint/suspicious/noExplicitAny: a config.json is edited freely here
type Config = Record<string, any>;
const HOST = { arch: "x64", kernel: "6.1.0" };

function specOf(edit: (c: Config) => void) {
  const c = JSON.parse(JSON.stringify(starterSpec({})));
  edit(c);
  return bundleSpec(c, "/b", HOST).spec;
}

const RESOURCES = {
  cpu: { cpus: "0", mems: "0" },
  memory: { limit: 64 << 20, reservation: 32 << 20, swappiness: 10, disableOOMKiller: true },
  blockIO: {
    weight: 300,
    weightDevice: [{ major: 8, minor: 0, weight: 400 }],
    throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
    throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
  },
};

describe("linux.resources: checked, then as the cgroup module's limits", () => {
  it("cpus, mems, reservation, swappiness, disableOOMKiller and blockIO become limits", () => {
    const spec = specOf((c) => Object.assign(c.linux, { resources: RESOURCES }));
    expect(limitsOf(spec)).toEqual({
      memory: 64 << 20,
      memoryReservation: 32 << 20,
      memorySwappiness: 10,
      disableOomKiller: true,
      cpusetCpus: "0",
      cpusetMems: "0",
      blkioWeight: 300,
      blkioDevices: [
        { file: "weight_device", major: 8, minor: 0, value: 400 },
        { file: "throttle.read_bps_device", major: 8, minor: 0, value: 1048576 },
        { file: "throttle.write_iops_device", major: 8, minor: 0, value: 100 },
      ],
    });
  });

  it("swappiness 0 is kept, -1 (the kernel's default) and an empty cpus are not set", () => {
    const limits = (memory: Config, cpu: Config) =>
      limitsOf(specOf((c) => Object.assign(c.linux, { resources: { memory, cpu } })));
    expect(limits({ swappiness: 0 }, {}).memorySwappiness).toBe(0);
    expect(limits({ swappiness: -1 }, { cpus: "" })).toEqual({});
  });

  it.each([
    [{ cpu: { cpus: "0-" } }, 'linux.resources.cpu.cpus: "0-" is not a list'],
    [{ cpu: { mems: 0 } }, "linux.resources.cpu.mems: must be a string"],
    [{ memory: { swappiness: 101 } }, "linux.resources.memory.swappiness: 101 is not between"],
    [{ memory: { disableOOMKiller: 1 } }, "linux.resources.memory.disableOOMKiller: must be"],
    [
      { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0 }] } },
      "linux.resources.blockIO.throttleReadBpsDevice[0].rate: is required",
    ],
    [{ hugepageLimits: [{ pageSize: "2MB" }] }, "linux.resources.hugepageLimits[0].limit"],
  ])("refuses %j by field", (resources, message) => {
    expect(() => specOf((c) => Object.assign(c.linux, { resources }))).toThrow(message);
  });
});

describe("the files and values written", () => {
  const limits = limitsOf(specOf((c) => Object.assign(c.linux, { resources: RESOURCES })));

  it("v1: cpuset, soft limit, swappiness, oom_control and blkio lines", () => {
    const files = v1Files(limits, { blkioWeightFile: "blkio.bfq.weight" });
    expect(files).toEqual([
      ["cpuset.cpus", "0"],
      ["cpuset.mems", "0"],
      ["memory.limit_in_bytes", String(64 << 20)],
      ["memory.memsw.limit_in_bytes", String(128 << 20)],
      ["memory.soft_limit_in_bytes", String(32 << 20)],
      ["memory.swappiness", "10"],
      ["memory.oom_control", "1"],
      ["blkio.bfq.weight", "300"],
      ["blkio.bfq.weight_device", "8:0 400"],
      ["blkio.throttle.read_bps_device", "8:0 1048576"],
      ["blkio.throttle.write_iops_device", "8:0 100"],
    ]);
    expect(v1Files({ blkioWeight: 500 })).toEqual([["blkio.weight", "500"]]);
  });

  it("v2: cpuset and memory.low; swappiness, the OOM switch and blkio refused", () => {
    expect(v2Files({ cpusetCpus: "0-1", cpusetMems: "0", memoryReservation: 4096 })).toEqual([
      ["cpuset.cpus", "0-1"],
      ["cpuset.mems", "0"],
      ["memory.low", "4096"],
    ]);
    expect(v2Unsupported({ memorySwappiness: 0 })).toMatch(/swappiness/);
    expect(v2Unsupported({ disableOomKiller: true })).toMatch(/OOM killer/);
    expect(v2Unsupported({ blkioWeight: 100 })).toMatch(/blkio/);
    expect(v2Unsupported({ cpusetCpus: "0", memoryReservation: 1 })).toBeUndefined();
  });

  it("bad values are refused before any cgroup is made", () => {
    expect(() => validateLimits({ cpusetCpus: "a" })).toThrow('invalid --cpuset-cpus value "a"');
    expect(() => validateLimits({ memorySwappiness: 200 })).toThrow(/between 0 and 100/);
    expect(() => validateLimits({ blkioWeight: 5 })).toThrow(/between 10 and 1000/);
  });

  it("update's flags: --cpuset-cpus, --cpuset-mems, --memory-reservation", () => {
    expect(limitsFromFlags({ cpusetCpus: "0", cpusetMems: "0", memoryReservation: "32m" })).toEqual(
      { cpusetCpus: "0", cpusetMems: "0", memoryReservation: 32 << 20 },
    );
  });
});

describe("refusedResource: what this host cannot apply, named by field", () => {
  const v1: HostCgroups = {
    version: 1,
    controllers: new Set(["cpu", "cpuset", "memory", "pids", "devices", "blkio", "freezer"]),
  };
  const v2: HostCgroups = { version: 2, controllers: new Set(["cpu", "memory", "pids", "io"]) };

  it.each([
    [
      { hugepageLimits: [{ pageSize: "2MB", limit: 1 }] },
      v1,
      "linux.resources.hugepageLimits: this host has no hugetlb cgroup controller",
    ],
    [
      { network: { classID: 1 } },
      v1,
      "linux.resources.network.classID: this host has no net_cls cgroup controller",
    ],
    [
      { network: { priorities: [{ name: "eth0", priority: 1 }] } },
      v2,
      "linux.resources.network.priorities: this host has no net_prio cgroup controller",
    ],
    [{ memory: { swappiness: 10 } }, v2, "linux.resources.memory.swappiness: cgroup v2 has no"],
    [{ memory: { disableOOMKiller: true } }, v2, "linux.resources.memory.disableOOMKiller"],
    [{ blockIO: { weight: 10 } }, v2, "linux.resources.blockIO: minibox-runc does not apply"],
    [
      { blockIO: { weight: 10 } },
      { version: 1, controllers: new Set(["memory"]) },
      "linux.resources.blockIO: this host has no blkio cgroup controller",
    ],
    [{ blockIO: { leafWeight: 10 } }, v1, "linux.resources.blockIO.leafWeight"],
  ] as const)("%j on %j", (resources, host, message) => {
    expect(refusedResource(resources as SpecResources, host)).toContain(message);
  });

  it("what the host can do passes", () => {
    expect(refusedResource(RESOURCES, v1)).toBeUndefined();
    expect(refusedResource({ memory: { reservation: 1 }, cpu: { cpus: "0" } }, v2)).toBe(undefined);
  });
});

describe("linux.devices of type p: a FIFO", () => {
  const fifo = { path: "/dev/myfifo", type: "p", fileMode: 0o640 };

  it("is accepted without numbers, gets no device cgroup rule", () => {
    const spec = specOf((c) => {
      c.linux.devices = [fifo];
      c.linux.resources = { devices: [{ allow: false, access: "rwm" }] };
    });
    expect(spec.linux.devices).toEqual([{ ...fifo, major: 0, minor: 0 }]);
    const rules = deviceRulesOf(spec) ?? [];
    expect(rules.some((r) => (r.type as string) === "p")).toBe(false);
  });

  it("is made with mknod S_IFIFO in the container's /dev", () => {
    const ctx = context();
    ctx.spec.linux.devices = [{ ...fifo, type: "p", major: 0, minor: 0 }];
    expect(lines(deviceSteps(ctx))).toContain("mknod /c/rootfs/dev/myfifo 010640 0 0");
  });

  it("an unknown type is still refused by field", () => {
    expect(() => specOf((c) => (c.linux.devices = [{ ...fifo, type: "x" }]))).toThrow(
      'linux.devices[0].type: must be c, u, b or p, not "x"',
    );
  });
});
