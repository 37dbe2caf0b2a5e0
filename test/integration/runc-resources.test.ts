// linux.resources minibox-runc applies on this (cgroup v1) host, read back
// from the container's own cgroup files: cpuset cpus/mems, the memory
// reservation, swappiness, the OOM killer switch, blkio weight and
// throttles; update changes them; a FIFO in linux.devices is made. What the
// host cannot do (hugetlb here) is refused at create by field, with nothing
// left in --root or /sys/fs/cgroup.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { detectCgroupVersion } from "../../src/runtime/cgroups/index.js";
import { errorOf, runcHarness } from "../support/runc-bundle.js";

const { work, root, runc, bundle, state, cgroupDirs } = runcHarness("minibox-runc-res-");
afterEach(() => {
  for (const id of existsSync(root) ? readdirSync(root) : []) runc(["delete", "--force", id]);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const MB = 1024 * 1024;
/** The first disk in /proc/partitions (a real block device for blkio's lines). */
function firstDisk(): { major: number; minor: number } {
  const line = readFileSync("/proc/partitions", "utf8")
    .split("\n")
    .slice(2)
    .find((l) => l.trim() !== "") as string;
  const [major, minor] = line.trim().split(/\s+/).map(Number);
  return { major: major as number, minor: minor as number };
}

/** The container's directory in the hierarchy of CONTROLLER, and one of its files. */
function cgroupFile(id: string, controller: string, file: string): string {
  const dir = cgroupDirs(id).find((d) => d.includes(`/${controller}/`));
  if (!dir) throw new Error(`no ${controller} cgroup for ${id}: ${cgroupDirs(id).join(" ")}`);
  return readFileSync(path.join(dir, file), "utf8").trim();
}

/** Every directory named ID under the cgroupfs (a leak, when the container is gone). */
function cgroupsNamed(id: string): string {
  return execFileSync("find", ["/sys/fs/cgroup", "-maxdepth", "8", "-type", "d", "-name", id], {
    encoding: "utf8",
  }).trim();
}

describe.runIf(detectCgroupVersion() === 1)("minibox-runc: linux.resources on cgroup v1", () => {
  it("cpus, mems, reservation, swappiness, disableOOMKiller, blkio applied; update changes them; a p device is a FIFO", () => {
    const disk = firstDisk();
    const b = bundle("res", (c) => {
      c.process.args = ["sleep", "60"];
      c.linux.resources = {
        ...c.linux.resources,
        cpu: { cpus: "0", mems: "0" },
        memory: { limit: 64 * MB, reservation: 32 * MB, swappiness: 10, disableOOMKiller: true },
        blockIO: {
          weight: 300,
          throttleReadBpsDevice: [{ ...disk, rate: MB }],
          throttleWriteIOPSDevice: [{ ...disk, rate: 100 }],
        },
      };
      c.linux.devices = [{ path: "/dev/myfifo", type: "p", fileMode: 0o640 }];
    });
    const created = runc(["create", "--bundle", b, "res1"]);
    expect(created.code, created.stderr).toBe(0);
    expect(cgroupFile("res1", "cpuset", "cpuset.cpus")).toBe("0");
    expect(cgroupFile("res1", "cpuset", "cpuset.mems")).toBe("0");
    expect(cgroupFile("res1", "memory", "memory.soft_limit_in_bytes")).toBe(String(32 * MB));
    expect(cgroupFile("res1", "memory", "memory.swappiness")).toBe("10");
    expect(cgroupFile("res1", "memory", "memory.oom_control")).toMatch(/^oom_kill_disable 1$/m);
    const dev = `${disk.major}:${disk.minor}`;
    expect(cgroupFile("res1", "blkio", "blkio.throttle.read_bps_device")).toBe(`${dev} ${MB}`);
    expect(cgroupFile("res1", "blkio", "blkio.throttle.write_iops_device")).toBe(`${dev} 100`);
    const weightFile = existsSync(
      path.join(cgroupDirs("res1").find((d) => d.includes("/blkio/")) as string, "blkio.weight"),
    )
      ? "blkio.weight"
      : "blkio.bfq.weight";
    expect(cgroupFile("res1", "blkio", weightFile)).toMatch(/\b300$/);

    expect(runc(["start", "res1"]).code).toBe(0);
    const ls = runc(["exec", "res1", "ls", "-l", "/dev/myfifo"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^prw-r----- /);

    // update: the flags, then a LinuxResources JSON on stdin (as containerd's shim sends it).
    const flags = ["update", "--memory-reservation", "16m", "--cpuset-cpus", "0-1", "res1"];
    const u = runc(flags);
    expect(u.code, u.stderr).toBe(0);
    expect(cgroupFile("res1", "memory", "memory.soft_limit_in_bytes")).toBe(String(16 * MB));
    expect(cgroupFile("res1", "cpuset", "cpuset.cpus")).toBe("0-1");
    const json = path.join(work, "resources.json");
    writeFileSync(json, JSON.stringify({ memory: { reservation: 8 * MB }, cpu: { cpus: "1" } }));
    const uj = runc(["update", "--resources", "-", "res1"], work, json);
    expect(uj.code, uj.stderr).toBe(0);
    expect(cgroupFile("res1", "memory", "memory.soft_limit_in_bytes")).toBe(String(8 * MB));
    expect(cgroupFile("res1", "cpuset", "cpuset.cpus")).toBe("1");

    const dirs = cgroupDirs("res1");
    expect(state("res1").status).toBe("running");
    expect(runc(["delete", "--force", "res1"]).code).toBe(0);
    for (const d of dirs) expect(existsSync(d), d).toBe(false);
  });

  it("hugepageLimits on a host without hugetlb: one line naming the field, nothing left behind", () => {
    const b = bundle("huge", (c) => {
      c.linux.resources = { ...c.linux.resources, hugepageLimits: [{ pageSize: "2MB", limit: 0 }] };
    });
    const r = runc(["create", "--bundle", b, "huge1"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(errorOf(r.stderr)).toBe(
      "config.json: linux.resources.hugepageLimits: this host has no hugetlb cgroup controller",
    );
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
    expect(cgroupsNamed("huge1")).toBe("");
  });
});
