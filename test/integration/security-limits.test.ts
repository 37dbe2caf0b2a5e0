// --ulimit, --group-add, --sysctl and --device against the real kernel: each
// flag's effect as the container's process sees it, bad values refused in
// one line with 125 and nothing left behind, and the inspect fields.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { baseBox } from "../support/base-box.js";
import { oneLineError } from "../support/minibox.js";

const base = baseBox();
const IMAGE = base.image;
const { sh } = base;

/** A refused run: exit 125, one error line, and no container left. */
async function refused(flags: string[], cmd = ["true"]): Promise<string> {
  const r = await base.box.run(["run", "--network", "none", ...flags, IMAGE, ...cmd]);
  expect(r.code, r.stderr).toBe(125);
  const line = oneLineError(r);
  const ps = await base.box.run(["ps", "-aq"]);
  expect(ps.stdout.trim()).toBe("");
  return line;
}

/** This process's hard RLIMIT_NOFILE, which the minibox it starts inherits. */
function ownNofile(): number {
  return Number(
    /Max open files\s+\d+\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1],
  );
}

describe("--ulimit", () => {
  test("nofile and core as the process sees them (ulimit -n, -Hn, -c)", async () => {
    const r = await sh("ulimit -n; ulimit -Hn; ulimit -c", [
      "--ulimit",
      "nofile=100:200",
      "--ulimit",
      "core=0",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("100\n200\n0\n");
  });

  test("-1 is unlimited", async () => {
    const r = await sh("ulimit -c; ulimit -Hc", ["--ulimit", "core=-1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("unlimited\nunlimited\n");
  });

  test("soft above hard: Docker's error", async () => {
    expect(await refused(["--ulimit", "nofile=20:10"])).toContain(
      "ulimit soft limit must be less than or equal to hard limit: 20 > 10",
    );
  });

  test("in the user namespace, a hard limit above minibox's own is refused before anything is made", async () => {
    const own = ownNofile();
    const line = await refused(["--ulimit", `nofile=100:${own + 1}`]);
    expect(line).toContain(`above minibox's own (${own})`);
    expect(line).toContain("--userns=host");
  });

  test("--userns=host: raised if minibox holds CAP_SYS_RESOURCE, else the kernel's EPERM explained; past fs.nr_open never", async () => {
    const status = readFileSync("/proc/self/status", "utf8");
    const capEff = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(status)?.[1]}`);
    const sysResource = (capEff >> 24n) & 1n; // CAP_SYS_RESOURCE (some VMs withhold it even from root)
    const flags = ["--userns=host", "--ulimit", `nofile=100:${ownNofile() + 1}`];
    if (sysResource) {
      const ok = await sh("ulimit -Hn", flags);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.trim()).toBe(String(ownNofile() + 1));
    } else {
      expect(await refused(["--rm", ...flags])).toContain("Operation not permitted");
    }
    const nrOpen = Number(readFileSync("/proc/sys/fs/nr_open", "utf8"));
    const line = await refused(["--rm", "--userns=host", "--ulimit", `nofile=${nrOpen + 1}`]);
    expect(line).toContain("setrlimit RLIMIT_NOFILE");
    expect(line).toContain("Operation not permitted");
    expect(line).toContain("fs/nr_open");
  });
});

describe("--group-add", () => {
  test("a name from the image's /etc/group and a bare number: id shows both", async () => {
    const r = await sh("id", ["--group-add", "staff", "--group-add", "4242"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("uid=0(root) gid=0(root) groups=0(root),50(staff),4242");
  });

  test("with -u: added to the user's own groups", async () => {
    const r = await sh("id -G", ["-u", "app", "--group-add", "nogroup"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split(" ").sort()).toEqual(["1000", "50", "65534"].sort());
  });

  test("exec, with or without -u, gets the container's --group-add too", async () => {
    const r = await base.box.run([
      "run",
      "-d",
      "--name",
      "grouped",
      "--network",
      "none",
      "--group-add",
      "staff",
      IMAGE,
      "sleep",
      "60",
    ]);
    expect(r.code, r.stderr).toBe(0);
    try {
      const plain = await base.box.run(["exec", "grouped", "id", "-G"]);
      expect(plain.stdout.trim().split(" ")).toContain("50");
      const asApp = await base.box.run(["exec", "-u", "nobody", "grouped", "id", "-G"]);
      expect(asApp.code, asApp.stderr).toBe(0);
      expect(asApp.stdout.trim().split(" ").sort()).toEqual(["50", "65534"]);
    } finally {
      await base.box.run(["rm", "-f", "grouped"]);
    }
  });

  test("an unknown name: Docker's error", async () => {
    expect(await refused(["--group-add", "nosuch"])).toContain(
      "unable to find group nosuch: no matching entries in group file",
    );
  });
});

describe("--sysctl", () => {
  const hostPortRange = () => readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
  const hostShmmax = () => readFileSync("/proc/sys/kernel/shmmax", "utf8");

  test("net.ipv4.ip_local_port_range and kernel.shmmax are set inside; the host's stay as they were", async () => {
    const before = [hostPortRange(), hostShmmax()];
    const r = await sh(
      "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/kernel/shmmax; echo 1 > /proc/sys/kernel/shmmax",
      ["--sysctl", "net.ipv4.ip_local_port_range=1024 2048", "--sysctl", "kernel.shmmax=65536"],
    );
    const [range, shmmax] = r.stdout.trim().split("\n");
    expect(range?.split(/\s+/)).toEqual(["1024", "2048"]);
    expect(shmmax).toBe("65536");
    // /proc/sys is read-only again once the values are written.
    expect(r.stderr).toContain("Read-only file system");
    expect([hostPortRange(), hostShmmax()]).toEqual(before);
  });

  test("the UTS and IPC ones: kernel.domainname, fs.mqueue.msg_max, kernel.sem", async () => {
    const before = readFileSync("/proc/sys/kernel/domainname", "utf8");
    const r = await sh(
      "cat /proc/sys/kernel/domainname /proc/sys/fs/mqueue/msg_max /proc/sys/kernel/sem",
      [
        "--sysctl",
        "kernel.domainname=example.test",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        "--sysctl",
        "kernel.sem=250 32000 32 128",
      ],
    );
    expect(r.code, r.stderr).toBe(0);
    const [domain, msgMax, sem] = r.stdout.trim().split("\n");
    expect(domain).toBe("example.test");
    expect(msgMax).toBe("20");
    expect(sem?.split(/\s+/)).toEqual(["250", "32000", "32", "128"]);
    expect(readFileSync("/proc/sys/kernel/domainname", "utf8")).toBe(before);
  });

  test("--userns=host too (the values go to the container's namespaces, not the host's)", async () => {
    const before = hostShmmax();
    const r = await sh("cat /proc/sys/kernel/shmmax", [
      "--userns=host",
      "--sysctl",
      "kernel.shmmax=70000",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("70000");
    expect(hostShmmax()).toBe(before);
  });

  test("a setting outside the container's namespaces is refused, naming what is allowed", async () => {
    const line = await refused(["--sysctl", "vm.swappiness=1"]);
    expect(line).toContain('sysctl "vm.swappiness" is not allowed');
    expect(line).toContain("net.*");
  });

  test("net.* with --network host is refused (runc's error)", async () => {
    const r = await base.box.run([
      "run",
      "--network",
      "host",
      "--sysctl",
      "net.ipv4.ip_forward=1",
      IMAGE,
      "true",
    ]);
    expect(r.code).toBe(125);
    expect(oneLineError(r)).toContain(
      'sysctl "net.ipv4.ip_forward" not allowed in host network namespace',
    );
  });

  test("a value the kernel refuses: one line naming the sysctl, nothing left", async () => {
    const line = await refused(["--rm", "--sysctl", "kernel.shmmax=lots"]);
    expect(line).toContain("sysctl kernel.shmmax=lots");
    expect(line).toContain("Invalid argument");
  });
});

describe("--device", () => {
  test("/dev/zero:/dev/myzero:r — the node (c 1,5) under another name, readable", async () => {
    for (const userns of [[], ["--userns=host"]]) {
      const r = await sh("ls -l /dev/myzero; head -c 4 /dev/myzero | wc -c", [
        ...userns,
        "--device",
        "/dev/zero:/dev/myzero:r",
      ]);
      expect(r.code, r.stderr).toBe(0);
      const [ls, count] = r.stdout.trim().split("\n");
      expect(ls, userns.join()).toMatch(/^crw-rw-rw-\s+1 root\s+root\s+1,\s+5 .* \/dev\/myzero$/);
      expect(count).toBe("4");
    }
  });

  test("PERMS reach the device cgroup: /dev/hwrng:r can be read, not opened for writing (EPERM, where rw gets the driver's EINVAL)", async () => {
    const script = "head -c 4 /dev/rng | wc -c; echo x > /dev/rng";
    const r = await sh(script, ["--device", "/dev/hwrng:/dev/rng:r"]);
    expect(r.stdout.trim()).toBe("4");
    expect(r.stderr).toContain("Operation not permitted");
    const rw = await sh(script, ["--device", "/dev/hwrng:/dev/rng:rw"]);
    expect(rw.stdout.trim()).toBe("4");
    expect(rw.stderr).toContain("Invalid argument");
  });

  test("a directory adds every device under it", async () => {
    const r = await sh("ls /dev/hostpts | sort -n | head -1", [
      "--device",
      "/dev/pts:/dev/hostpts",
    ]);
    // The host's /dev/pts has at least ptmx (5:2) as a node.
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).not.toBe("");
  });

  test("a missing host path: Docker's error", async () => {
    expect(await refused(["--device", "/dev/nope"])).toBe(
      'minibox: error gathering device information while adding custom device "/dev/nope": no such file or directory; give the path of a device node on this host, or a directory of them',
    );
  });

  test("bad permissions and a path outside /dev are refused", async () => {
    expect(await refused(["--device", "/dev/zero:/dev/z:rwx"])).toContain(
      "bad mode specified: rwx",
    );
    expect(await refused(["--device", "/dev/zero:/z"])).toContain("is not under /dev");
  });
});

describe("inspect", () => {
  test("HostConfig.Ulimits, GroupAdd, Sysctls, Devices", async () => {
    const r = await base.box.run([
      "run",
      "--name",
      "limits",
      "--network",
      "none",
      "--ulimit",
      "nofile=100:200",
      "--group-add",
      "staff",
      "--sysctl",
      "kernel.shmmax=65536",
      "--device",
      "/dev/zero:/dev/myzero:r",
      IMAGE,
      "true",
    ]);
    expect(r.code, r.stderr).toBe(0);
    try {
      const i = await base.box.run(["inspect", "limits"]);
      const [c] = JSON.parse(i.stdout) as { HostConfig: Record<string, unknown> }[];
      expect(c?.HostConfig.Ulimits).toEqual([{ Name: "nofile", Soft: 100, Hard: 200 }]);
      expect(c?.HostConfig.GroupAdd).toEqual(["staff"]);
      expect(c?.HostConfig.Sysctls).toEqual({ "kernel.shmmax": "65536" });
      expect(c?.HostConfig.Devices).toEqual([
        { PathOnHost: "/dev/zero", PathInContainer: "/dev/myzero", CgroupPermissions: "r" },
      ]);
    } finally {
      await base.box.run(["rm", "-f", "limits"]);
    }
  });

  test("none given: Ulimits and GroupAdd null, Devices [], no Sysctls", async () => {
    const r = await base.box.run(["run", "--name", "plain", "--network", "none", IMAGE, "true"]);
    expect(r.code, r.stderr).toBe(0);
    try {
      const i = await base.box.run(["inspect", "plain"]);
      const [c] = JSON.parse(i.stdout) as { HostConfig: Record<string, unknown> }[];
      expect(c?.HostConfig.Ulimits).toBeNull();
      expect(c?.HostConfig.GroupAdd).toBeNull();
      expect(c?.HostConfig.Devices).toEqual([]);
      expect(c?.HostConfig).not.toHaveProperty("Sysctls");
    } finally {
      await base.box.run(["rm", "-f", "plain"]);
    }
  });
});

describe("the device cgroup's directory", () => {
  /** This minibox's devices cgroup is the hierarchy's root ("/"), so a container's is minibox/<id> under the mount. */
  const devicesDir = (id: string) => `/sys/fs/cgroup/devices/minibox/${id}`;

  test("holds the rules while the container runs, again after start, and goes with rm", async () => {
    const r = await base.box.run(["run", "-d", "--network", "none", IMAGE, "sleep", "60"]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    try {
      const rules = () => readFileSync(`${devicesDir(id)}/devices.list`, "utf8").split("\n");
      expect(rules()).toContain("c 1:5 rwm");
      expect(rules()).not.toContain("a *:* rwm");
      expect((await base.box.run(["stop", "-t", "0", id])).code).toBe(0);
      expect(existsSync(devicesDir(id))).toBe(false);
      expect((await base.box.run(["start", id])).code).toBe(0);
      expect(rules()).toContain("c 1:5 rwm");
      expect(rules()).not.toContain("a *:* rwm");
    } finally {
      await base.box.run(["rm", "-f", id]);
    }
    expect(existsSync(devicesDir(id))).toBe(false);
  });

  test("a foreground run whose minibox is SIGKILLed: the next command removes it", async () => {
    const { child, done } = base.box.spawn(["run", "--network", "none", IMAGE, "sleep", "60"]);
    let id = "";
    for (let i = 0; i < 100 && !id; i++) {
      await new Promise((res) => setTimeout(res, 100));
      id = (await base.box.run(["ps", "-q", "--no-trunc"])).stdout.trim();
    }
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(devicesDir(id))).toBe(true);
    child.kill("SIGKILL");
    await done;
    // The container dies with its executor (PR_SET_PDEATHSIG); the next command sweeps.
    for (let i = 0; i < 50 && existsSync(devicesDir(id)); i++) {
      await base.box.run(["ps", "-a"]);
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(existsSync(devicesDir(id))).toBe(false);
    await base.box.run(["rm", "-f", id]);
  });
});
