// The pure parts of minibox-runc's pause/resume, update and ps: the freezer's
// file and values, update's inputs as limits and its v1 write order, and
// ps's table filter.
import { describe, expect, it } from "vitest";
import { findV1Mounts } from "../../src/runtime/cgroups/detect.js";
import { freezerWrite } from "../../src/runtime/cgroups/freezer.js";
import { orderForUpdate } from "../../src/runtime/cgroups/update.js";
import { v1Files } from "../../src/runtime/cgroups/v1.js";
import { filterPsOutput } from "../../src/runtime/oci/ps-table.js";
import { limitsFromFlags, limitsFromResources } from "../../src/runtime/oci/update-resources.js";

describe("freezer", () => {
  it("v1 writes freezer.state FROZEN/THAWED, v2 cgroup.freeze 1/0", () => {
    expect(freezerWrite(1, true)).toEqual(["freezer.state", "FROZEN"]);
    expect(freezerWrite(1, false)).toEqual(["freezer.state", "THAWED"]);
    expect(freezerWrite(2, true)).toEqual(["cgroup.freeze", "1"]);
    expect(freezerWrite(2, false)).toEqual(["cgroup.freeze", "0"]);
  });

  it("the freezer hierarchy is found among the v1 mounts", () => {
    const mountinfo = [
      "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory",
      "31 25 0:27 / /sys/fs/cgroup/freezer rw,relatime shared:11 - cgroup cgroup rw,freezer",
    ].join("\n");
    const mounts = findV1Mounts("/sys/fs/cgroup", mountinfo);
    expect(mounts.get("freezer")?.mountPoint).toBe("/sys/fs/cgroup/freezer");
    expect(mounts.get("memory")?.mountPoint).toBe("/sys/fs/cgroup/memory");
  });
});

describe("update's limits", () => {
  it("runc's flags, sizes with units; --cpu-shares as --cpu-share", () => {
    expect(
      limitsFromFlags({ memory: "64m", memorySwap: "-1", cpuQuota: "50000", cpuShares: "512" }),
    ).toEqual({ memory: 64 * 1024 * 1024, memorySwap: -1, cpuQuota: 50000, cpuShares: 512 });
    expect(limitsFromFlags({ pidsLimit: "20", cpuPeriod: "200000" })).toEqual({
      pidsLimit: 20,
      cpuPeriod: 200000,
    });
    expect(() => limitsFromFlags({ cpuQuota: "half" })).toThrow(
      'invalid value "half" for flag --cpu-quota',
    );
  });

  it("a LinuxResources JSON: 0 is unchanged, unsupported fields refused by name", () => {
    expect(
      limitsFromResources(
        JSON.stringify({
          memory: { limit: 1048576, swap: 0, reservation: 0 },
          cpu: { shares: 1024, quota: 10000, period: 100000, cpus: "" },
          pids: { limit: 7 },
        }),
      ),
    ).toEqual({
      memory: 1048576,
      cpuShares: 1024,
      cpuQuota: 10000,
      cpuPeriod: 100000,
      pidsLimit: 7,
    });
    expect(
      limitsFromResources('{"cpu":{"cpus":"0-1","mems":"0"},"memory":{"reservation":4096}}'),
    ).toEqual({ cpusetCpus: "0-1", cpusetMems: "0", memoryReservation: 4096 });
    expect(() => limitsFromResources('{"blockIO":{"weight":500}}')).toThrow(
      /resources: blockIO\.weight is not supported/,
    );
    expect(() => limitsFromResources('{"pids":{"limit":1.5}}')).toThrow(
      "resources: pids.limit: must be an integer",
    );
    expect(() => limitsFromResources("[")).toThrow(/resources: not valid JSON/);
    expect(() => limitsFromResources("[]")).toThrow(/must be a JSON object/);
  });

  it("v1: memsw first when raising the limits, memory first when lowering them", () => {
    const writes = v1Files({ memory: 200, memorySwap: 400 }).map(([f, v]): [string, string] => [
      `/cg/memory/x/${f}`,
      v,
    ]);
    const names = (w: Array<[string, string]>) => w.map(([p]) => p.split("/").pop());
    expect(names(orderForUpdate(writes, 100))).toEqual([
      "memory.memsw.limit_in_bytes",
      "memory.limit_in_bytes",
    ]);
    expect(names(orderForUpdate(writes, 1000))).toEqual([
      "memory.limit_in_bytes",
      "memory.memsw.limit_in_bytes",
    ]);
    const unlimited = v1Files({ memory: 200, memorySwap: -1 }).map(([f, v]): [string, string] => [
      `/cg/${f}`,
      v,
    ]);
    expect(names(orderForUpdate(unlimited, 1000))[0]).toBe("memory.memsw.limit_in_bytes");
  });
});

describe("ps table", () => {
  const output = [
    "UID          PID    PPID  C STIME TTY          TIME CMD",
    "root           1       0  0 10:00 ?        00:00:01 /sbin/init",
    "root         300       1  0 10:01 ?        00:00:00 sleep 60",
    "root         301     300  0 10:01 ?        00:00:00 sleep 61",
    "",
  ].join("\n");

  it("keeps the header and the lines whose PID column is the container's", () => {
    expect(filterPsOutput(output, [300, 301])).toBe(
      [
        "UID          PID    PPID  C STIME TTY          TIME CMD",
        "root         300       1  0 10:01 ?        00:00:00 sleep 60",
        "root         301     300  0 10:01 ?        00:00:00 sleep 61",
        "",
      ].join("\n"),
    );
  });

  it("a PPID equal to a container PID is not a match; no PID column is runc's error", () => {
    expect(filterPsOutput(output, [1])).not.toMatch(/sleep/);
    expect(() => filterPsOutput("USER CMD\nroot x\n", [1])).toThrow(
      "couldn't find PID field in ps output",
    );
  });
});
