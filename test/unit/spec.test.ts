import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import type { ImageConfig } from "../../src/image/manifest.js";
import { deviceRules } from "../../src/runtime/devices.js";
import { buildPlan } from "../../src/runtime/plan.js";
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH,
  generateSpec,
  mergeLabels,
  type RunSettings,
} from "../../src/runtime/spec.js";
import { errorOf } from "./plan-fixtures.js";

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const IMAGE_ID = `sha256:${"a".repeat(64)}`;

function imageConfig(config: ImageConfig["config"]): ImageConfig {
  return { architecture: "amd64", os: "linux", config, rootfs: { type: "layers", diff_ids: [] } };
}

function settings(over: Partial<RunSettings> = {}, image: ImageConfig["config"] = {}): RunSettings {
  return {
    id: ID,
    name: "happy_turing",
    image: { id: IMAGE_ID, ref: "docker.io/library/alpine:3.8", config: imageConfig(image) },
    rootfs: `/var/lib/minibox/containers/${ID}/rootfs`,
    command: ["echo", "hi"],
    env: [],
    user: { uid: 0, gid: 0, additionalGids: [], home: "/root", name: "root" },
    hostname: ID.slice(0, 12),
    tty: false,
    interactive: false,
    readOnly: false,
    capAdd: [],
    capDrop: [],
    limits: {},
    network: "bridge",
    init: false,
    labels: {},
    hostFiles: { hostname: "/c/hostname", hosts: "/c/hosts", resolvConf: "/c/resolv.conf" },
    rlimitHard: { nofile: 20000 },
    ...over,
  };
}

describe("generateSpec: args (Docker's ENTRYPOINT/CMD table)", () => {
  const ep = ["/docker-entrypoint.sh"];
  const cmd = ["nginx", "-g", "daemon off;"];
  const cases: {
    name: string;
    image: { Entrypoint?: string[] | null; Cmd?: string[] | null };
    command: string[];
    entrypoint?: string;
    args: string[] | "error";
  }[] = [
    { name: "image CMD only", image: { Cmd: ["/bin/sh"] }, command: [], args: ["/bin/sh"] },
    { name: "command replaces CMD", image: { Cmd: ["/bin/sh"] }, command: ["ls"], args: ["ls"] },
    {
      name: "ENTRYPOINT + CMD",
      image: { Entrypoint: ep, Cmd: cmd },
      command: [],
      args: [...ep, ...cmd],
    },
    {
      name: "ENTRYPOINT + command (CMD replaced)",
      image: { Entrypoint: ep, Cmd: cmd },
      command: ["sh"],
      args: [...ep, "sh"],
    },
    { name: "ENTRYPOINT only", image: { Entrypoint: ep }, command: [], args: ep },
    {
      name: "null Entrypoint/Cmd",
      image: { Entrypoint: null, Cmd: null },
      command: ["x"],
      args: ["x"],
    },
    {
      name: "--entrypoint drops image CMD",
      image: { Entrypoint: ep, Cmd: cmd },
      entrypoint: "/bin/ls",
      command: [],
      args: ["/bin/ls"],
    },
    {
      name: "--entrypoint + command",
      image: { Entrypoint: ep, Cmd: cmd },
      entrypoint: "/bin/ls",
      command: ["-l", "/"],
      args: ["/bin/ls", "-l", "/"],
    },
    {
      name: "--entrypoint is one argv element (not split)",
      image: {},
      entrypoint: "sh -c",
      command: [],
      args: ["sh -c"],
    },
    {
      name: '--entrypoint "" + command',
      image: { Entrypoint: ep, Cmd: cmd },
      entrypoint: "",
      command: ["echo", "x"],
      args: ["echo", "x"],
    },
    {
      name: '--entrypoint "" and no command',
      image: { Entrypoint: ep, Cmd: cmd },
      entrypoint: "",
      command: [],
      args: "error",
    },
    { name: "nothing at all", image: {}, command: [], args: "error" },
    { name: "empty Cmd", image: { Cmd: [] }, command: [], args: "error" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = settings({ command: c.command, entrypoint: c.entrypoint }, c.image);
      if (c.args === "error") {
        const e = errorOf(() => generateSpec(s));
        expect(e.message).toBe("no command specified");
        expect(e.hint).toBe("give a command after the image name");
      } else {
        expect(generateSpec(s).process.args).toEqual(c.args);
      }
    });
  }

  it("does not alias the image config's arrays", () => {
    const s = settings({ command: [] }, { Entrypoint: ["a"], Cmd: ["b"] });
    const spec = generateSpec(s);
    spec.process.args.push("c");
    expect(s.image.config.config?.Entrypoint).toEqual(["a"]);
    expect(s.image.config.config?.Cmd).toEqual(["b"]);
  });
});

describe("generateSpec: env", () => {
  it("defaults: PATH, HOSTNAME, HOME (Docker's order)", () => {
    expect(generateSpec(settings()).process.env).toEqual([
      `PATH=${DEFAULT_PATH}`,
      "HOSTNAME=0123456789ab",
      "HOME=/root",
    ]);
  });

  it("TERM=xterm with a tty only", () => {
    expect(generateSpec(settings({ tty: true })).process.env).toEqual([
      `PATH=${DEFAULT_PATH}`,
      "HOSTNAME=0123456789ab",
      "TERM=xterm",
      "HOME=/root",
    ]);
    expect(
      generateSpec(settings({ tty: false })).process.env.some((e) => e.startsWith("TERM=")),
    ).toBe(false);
  });

  it("image Env replaces defaults in place and appends the rest", () => {
    const env = generateSpec(
      settings({}, { Env: ["PATH=/opt/bin:/bin", "LANG=C.UTF-8", "NGINX_VERSION=1.25"] }),
    ).process.env;
    expect(env).toEqual([
      "PATH=/opt/bin:/bin",
      "HOSTNAME=0123456789ab",
      "LANG=C.UTF-8",
      "NGINX_VERSION=1.25",
      "HOME=/root",
    ]);
  });

  it("-e overrides image Env and defaults, one entry per key, order stable", () => {
    const env = generateSpec(
      settings(
        { tty: true, env: ["NGINX_VERSION=2", "FOO=bar", "TERM=vt100", "FOO=baz", "HOSTNAME=web"] },
        { Env: ["LANG=C", "NGINX_VERSION=1.25"] },
      ),
    ).process.env;
    expect(env).toEqual([
      `PATH=${DEFAULT_PATH}`,
      "HOSTNAME=web",
      "TERM=vt100",
      "LANG=C",
      "NGINX_VERSION=2",
      "FOO=baz",
      "HOME=/root",
    ]);
  });

  it("duplicate keys in the image Env collapse to the last value", () => {
    const env = generateSpec(settings({}, { Env: ["A=1", "B=2", "A=3"] })).process.env;
    expect(env.filter((e) => e.startsWith("A="))).toEqual(["A=3"]);
    expect(env.indexOf("A=3")).toBeLessThan(env.indexOf("B=2"));
  });

  it("values keep their '=' and spaces", () => {
    const env = generateSpec(settings({ env: ["X=a=b c ", "EMPTY="] })).process.env;
    expect(env).toContain("X=a=b c ");
    expect(env).toContain("EMPTY=");
  });

  it("a bare key unsets it (Docker's ReplaceOrAppendEnvValues)", () => {
    const env = generateSpec(settings({ env: ["LANG"] }, { Env: ["LANG=C"] })).process.env;
    expect(env.some((e) => e.startsWith("LANG"))).toBe(false);
  });

  it("HOME comes from the user unless the image or -e sets it", () => {
    const nobody = { uid: 65534, gid: 65534, additionalGids: [], home: "/nonexistent" };
    expect(generateSpec(settings({ user: nobody })).process.env).toContain("HOME=/nonexistent");
    expect(generateSpec(settings({}, { Env: ["HOME=/srv"] })).process.env).toContain("HOME=/srv");
    const env = generateSpec(settings({ env: ["HOME=/x"] }, { Env: ["HOME=/srv"] })).process.env;
    expect(env.filter((e) => e.startsWith("HOME="))).toEqual(["HOME=/x"]);
  });
});

describe("generateSpec: cwd, user, terminal, root, hostname", () => {
  it("cwd: -w, else WorkingDir, else /", () => {
    expect(generateSpec(settings({ workdir: "/w" }, { WorkingDir: "/app" })).process.cwd).toBe(
      "/w",
    );
    expect(generateSpec(settings({}, { WorkingDir: "/app" })).process.cwd).toBe("/app");
    expect(generateSpec(settings({}, { WorkingDir: "" })).process.cwd).toBe("/");
    expect(generateSpec(settings()).process.cwd).toBe("/");
  });

  it("cwd: an image's relative WorkingDir is taken from /; a relative -w is refused, as Docker", () => {
    expect(generateSpec(settings({}, { WorkingDir: "../../" })).process.cwd).toBe("/");
    expect(generateSpec(settings({}, { WorkingDir: "app" })).process.cwd).toBe("/app");
    const e = errorOf(() => generateSpec(settings({ workdir: "../etc" })));
    expect(e.message).toBe(
      'the working directory "../etc" is invalid, it needs to be an absolute path',
    );
    expect(e.hint).toBe("use -w /etc");
  });

  it("user ids and supplementary groups", () => {
    const spec = generateSpec(
      settings({ user: { uid: 1000, gid: 1000, additionalGids: [10, 20], home: "/home/u" } }),
    );
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 20] });
  });

  it("terminal, root, hostname, noNewPrivileges, version", () => {
    const spec = generateSpec(settings({ tty: true, readOnly: true, hostname: "box" }));
    expect(spec.ociVersion).toBe("1.0.2");
    expect(spec.process.terminal).toBe(true);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.root).toEqual({ path: `/var/lib/minibox/containers/${ID}/rootfs`, readonly: true });
    expect(spec.hostname).toBe("box");
    expect(generateSpec(settings()).root.readonly).toBe(false);
  });
});

describe("generateSpec: capabilities", () => {
  const caps = (over: Partial<RunSettings>) => generateSpec(settings(over)).process.capabilities;

  it("Docker's 14 defaults in all of bounding/effective/permitted; none inheritable or ambient", () => {
    const c = caps({});
    expect(DEFAULT_CAPABILITIES).toHaveLength(14);
    expect(c.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(c.effective).toEqual([...DEFAULT_CAPABILITIES]);
    expect(c.permitted).toEqual([...DEFAULT_CAPABILITIES]);
    expect(c.inheritable).toEqual([]);
    expect(c.ambient).toEqual([]);
  });

  it("add and drop", () => {
    const c = caps({
      capAdd: ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"],
      capDrop: ["CAP_MKNOD", "CAP_KILL"],
    });
    expect(c.bounding).toEqual([
      ...DEFAULT_CAPABILITIES.filter((x) => x !== "CAP_MKNOD" && x !== "CAP_KILL"),
      "CAP_NET_ADMIN",
      "CAP_SYS_PTRACE",
    ]);
    expect(c.effective).toEqual(c.bounding);
  });

  it("adding a default one does not duplicate it", () => {
    expect(caps({ capAdd: ["CAP_CHOWN"] }).bounding).toEqual([...DEFAULT_CAPABILITIES]);
  });

  it("--cap-add ALL: every capability but the dropped ones", () => {
    const c = caps({ capAdd: ["ALL"], capDrop: ["CAP_SYS_ADMIN"] });
    expect(c.bounding).toEqual(ALL_CAPABILITIES.filter((x) => x !== "CAP_SYS_ADMIN"));
    expect(caps({ capAdd: ["ALL"] }).bounding).toHaveLength(41);
  });

  it("--cap-drop ALL: only the added ones", () => {
    expect(caps({ capDrop: ["ALL"] }).bounding).toEqual([]);
    expect(caps({ capDrop: ["ALL"], capAdd: ["CAP_NET_BIND_SERVICE"] }).bounding).toEqual([
      "CAP_NET_BIND_SERVICE",
    ]);
  });

  it("a non-root user keeps the bounding set but no effective/permitted", () => {
    const c = caps({ user: { uid: 1000, gid: 1000, additionalGids: [], home: "/" } });
    expect(c.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(c.effective).toEqual([]);
    expect(c.permitted).toEqual([]);
  });

  it("an unnormalised name is rejected", () => {
    expect(errorOf(() => caps({ capAdd: ["net_admin"] })).message).toMatch(/unknown capability/);
  });
});

describe("generateSpec: rlimits", () => {
  it("RLIMIT_NOFILE clamped to the caller's hard limit", () => {
    expect(generateSpec(settings()).process.rlimits).toEqual([
      { type: "RLIMIT_NOFILE", soft: 20000, hard: 20000 },
    ]);
  });
  it("at most 1048576", () => {
    expect(generateSpec(settings({ rlimitHard: { nofile: 4194304 } })).process.rlimits).toEqual([
      { type: "RLIMIT_NOFILE", soft: 1048576, hard: 1048576 },
    ]);
  });
});

describe("generateSpec: mounts", () => {
  it("Docker's order and options, then the per-container /etc files", () => {
    expect(generateSpec(settings()).mounts).toEqual([
      {
        destination: "/proc",
        type: "proc",
        source: "proc",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/etc/hostname",
        type: "bind",
        source: "/c/hostname",
        options: ["rbind", "rprivate"],
      },
      {
        destination: "/etc/hosts",
        type: "bind",
        source: "/c/hosts",
        options: ["rbind", "rprivate"],
      },
      {
        destination: "/etc/resolv.conf",
        type: "bind",
        source: "/c/resolv.conf",
        options: ["rbind", "rprivate"],
      },
    ]);
  });

  it("--read-only makes the /etc files read-only too", () => {
    const binds = generateSpec(settings({ readOnly: true })).mounts.filter(
      (m) => m.type === "bind",
    );
    expect(binds.map((m) => m.options)).toEqual([
      ["rbind", "rprivate", "ro"],
      ["rbind", "rprivate", "ro"],
      ["rbind", "rprivate", "ro"],
    ]);
  });

  it("user namespace + host network: /sys is a read-only bind of the host's", () => {
    const idmap = { containerID: 0 as const, hostID: 100000, size: 65536 };
    const sys = generateSpec(settings({ idmap, network: "host" })).mounts.find(
      (m) => m.destination === "/sys",
    );
    expect(sys).toEqual({
      destination: "/sys",
      type: "bind",
      source: "/sys",
      options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
    });
    expect(
      generateSpec(settings({ idmap, network: "bridge" })).mounts.find(
        (m) => m.destination === "/sys",
      )?.type,
    ).toBe("sysfs");
  });
});

describe("generateSpec: linux", () => {
  const idmap = { containerID: 0 as const, hostID: 100000, size: 65536 };

  it("namespaces without userns, new network", () => {
    const linux = generateSpec(settings()).linux;
    expect(linux.namespaces.map((n) => n.type)).toEqual([
      "pid",
      "ipc",
      "uts",
      "mount",
      "cgroup",
      "network",
    ]);
    expect(linux.uidMappings).toBeUndefined();
    expect(linux.gidMappings).toBeUndefined();
  });

  it("namespaces with userns and maps", () => {
    const linux = generateSpec(settings({ idmap, network: "none" })).linux;
    expect(linux.namespaces.map((n) => n.type)).toEqual([
      "pid",
      "ipc",
      "uts",
      "mount",
      "cgroup",
      "user",
      "network",
    ]);
    expect(linux.uidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
    expect(linux.gidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
  });

  it("network host: no network namespace", () => {
    const types = generateSpec(settings({ idmap, network: "host" })).linux.namespaces.map(
      (n) => n.type,
    );
    expect(types).not.toContain("network");
    expect(types).toContain("user");
    expect(types).toHaveLength(6);
  });

  it("masked and read-only paths are moby's lists", () => {
    const linux = generateSpec(settings()).linux;
    expect(linux.maskedPaths).toEqual([
      "/proc/acpi",
      "/proc/asound",
      "/proc/interrupts",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/sys/devices/virtual/powercap",
      "/sys/firmware",
    ]);
    expect(linux.readonlyPaths).toEqual([
      "/proc/bus",
      "/proc/fs",
      "/proc/irq",
      "/proc/sys",
      "/proc/sysrq-trigger",
    ]);
  });

  it("cgroupsPath", () => {
    expect(generateSpec(settings()).linux.cgroupsPath).toBe(`minibox/${ID}`);
  });

  /** linux.resources without the device cgroup's rules (which every container has). */
  function limitsOf(s: RunSettings["limits"]) {
    const { devices: _devices, ...rest } = generateSpec(settings({ limits: s })).linux.resources;
    return rest;
  }

  it("resources: only the device cgroup's rules by default", () => {
    expect(generateSpec(settings()).linux.resources).toEqual({ devices: deviceRules([]) });
  });

  it("resources from limits", () => {
    const r = limitsOf({
      memory: 64 * 1024 * 1024,
      memorySwap: 128 * 1024 * 1024,
      cpuQuota: 50000,
      cpuPeriod: 100000,
      cpuShares: 512,
      pidsLimit: 100,
    });
    expect(r).toEqual({
      memory: { limit: 64 * 1024 * 1024, swap: 128 * 1024 * 1024 },
      cpu: { shares: 512, quota: 50000, period: 100000 },
      pids: { limit: 100 },
    });
  });

  it("resources: memory alone, unlimited swap, pids 0 means unlimited", () => {
    expect(limitsOf({ memory: 10485760 })).toEqual({ memory: { limit: 10485760 } });
    expect(limitsOf({ memory: 10485760, memorySwap: -1 })).toEqual({
      memory: { limit: 10485760, swap: -1 },
    });
    expect(limitsOf({ pidsLimit: 0 })).toEqual({ pids: { limit: -1 } });
    expect(limitsOf({ cpuQuota: 20000 })).toEqual({ cpu: { quota: 20000 } });
  });

  it("resources: Docker's validation", () => {
    const bad: RunSettings["limits"][] = [
      { memory: 1024 },
      { memorySwap: 100 * 1024 * 1024 },
      { memory: 100 * 1024 * 1024, memorySwap: 50 * 1024 * 1024 },
      { cpuQuota: 999 },
      { cpuPeriod: 999 },
      { cpuPeriod: 1000001 },
      { cpuShares: -1 },
    ];
    for (const limits of bad) {
      expect(() => generateSpec(settings({ limits }))).toThrow(MiniboxError);
    }
  });
});

describe("generateSpec: annotations and labels", () => {
  it("labels as-is plus minibox.*", () => {
    const spec = generateSpec(
      settings({ init: true, labels: { "org.example.team": "blue", a: "" } }),
    );
    expect(spec.annotations).toEqual({
      "org.example.team": "blue",
      a: "",
      "minibox.image": IMAGE_ID,
      "minibox.image.ref": "docker.io/library/alpine:3.8",
      "minibox.name": "happy_turing",
      "minibox.init": "true",
    });
    expect(generateSpec(settings()).annotations["minibox.init"]).toBe("false");
  });

  it("the image's STOPSIGNAL is kept for `stop`", () => {
    expect(
      generateSpec(settings({}, { StopSignal: "SIGQUIT" })).annotations["minibox.stopsignal"],
    ).toBe("SIGQUIT");
    expect(generateSpec(settings()).annotations["minibox.stopsignal"]).toBeUndefined();
  });

  it("mergeLabels: flags win over the image's", () => {
    expect(mergeLabels({ a: "1", b: "2" }, { b: "3", c: "4" })).toEqual({ a: "1", b: "3", c: "4" });
    expect(mergeLabels(null, { c: "4" })).toEqual({ c: "4" });
    expect(mergeLabels(undefined, {})).toEqual({});
  });
});

describe("generateSpec: determinism", () => {
  it("same input → deep-equal output, input untouched", () => {
    const s = settings(
      {
        tty: true,
        env: ["A=1"],
        capAdd: ["CAP_NET_ADMIN"],
        capDrop: ["CAP_KILL"],
        limits: { memory: 10485760, pidsLimit: 5 },
        idmap: { containerID: 0, hostID: 100000, size: 65536 },
        labels: { x: "y" },
        init: true,
      },
      { Entrypoint: ["/e"], Cmd: ["c"], Env: ["B=2"], WorkingDir: "/w" },
    );
    const before = JSON.stringify(s);
    const a = generateSpec(s);
    const b = generateSpec(s);
    expect(a).toEqual(b);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(s)).toBe(before);
    a.process.capabilities.bounding.push("X");
    a.linux.maskedPaths.push("/x");
    a.linux.uidMappings?.push({ containerID: 1, hostID: 1, size: 1 });
    expect(generateSpec(s)).toEqual(b);
  });
});

describe("generateSpec: volumes and bind mounts", () => {
  it("appends them after the /etc files, as runc takes them (rbind, ro/rw; idmap when mapped)", () => {
    const spec = generateSpec(
      settings({
        idmap: { containerID: 0, hostID: 1 << 20, size: 65536 },
        volumes: [
          { source: "/srv/site", destination: "/etc/files", readOnly: true, idmap: true },
          { source: "/v/data/_data", destination: "/data", readOnly: false, idmap: false },
        ],
      }),
    );
    expect(spec.mounts.slice(-3)).toEqual([
      {
        destination: "/etc/resolv.conf",
        type: "bind",
        source: "/c/resolv.conf",
        options: ["rbind", "rprivate"],
      },
      {
        destination: "/etc/files",
        type: "bind",
        source: "/srv/site",
        options: ["bind", "rprivate", "ro", "idmap"],
      },
      {
        destination: "/data",
        type: "bind",
        source: "/v/data/_data",
        options: ["rbind", "rprivate", "rw"],
      },
    ]);
  });

  it("puts a tmpfs before the mounts inside it, else after the volumes; --shm-size sizes /dev/shm", () => {
    const spec = generateSpec(
      settings({
        volumes: [
          { source: "/h", destination: "/d", readOnly: false, idmap: false },
          { source: "/s", destination: "/run/secrets", readOnly: true, idmap: false },
        ],
        tmpfs: [
          { destination: "/run", options: ["noexec"] },
          { destination: "/scratch", options: ["size=1m"] },
        ],
        shmSize: 8 * 1024 * 1024,
      }),
    );
    expect(spec.mounts.slice(-4).map((m) => `${m.type} ${m.destination}`)).toEqual([
      "bind /d",
      "tmpfs /run",
      "bind /run/secrets",
      "tmpfs /scratch",
    ]);
    expect(spec.mounts.find((m) => m.destination === "/dev/shm")?.options).toContain("size=8m");
  });

  it("--read-only leaves volumes writable (Docker)", () => {
    const spec = generateSpec(
      settings({
        readOnly: true,
        volumes: [{ source: "/h", destination: "/d", readOnly: false, idmap: false }],
      }),
    );
    expect(spec.mounts.at(-1)?.options).toEqual(["rbind", "rprivate", "rw"]);
  });
});

describe("buildPlan: volumes and bind mounts", () => {
  const layout = (idmappedLayers: boolean) => ({
    containerDir: "/c",
    layers: ["/l/0"],
    idmappedLayers,
    cgroupProcs: [],
    waitForGo: false,
    init: false,
    interactive: false,
  });
  const withVolumes = (idmap: boolean) =>
    generateSpec(
      settings({
        rootfs: "/c/rootfs",
        idmap: { containerID: 0, hostID: 1 << 20, size: 65536 },
        volumes: [
          { source: "/v/etc/_data", destination: "/etc", readOnly: false, idmap },
          { source: "/srv", destination: "/srv/site", readOnly: true, idmap },
        ],
      }),
    );
  const lines = (plan: ReturnType<typeof buildPlan>) =>
    plan.setup.map((s) => [s.op, ...s.args].join(" "));

  it("idmaps them, shallowest first, remounts :ro read-only, and remakes hidden mount points", () => {
    const setup = lines(buildPlan(withVolumes(true), layout(true)));
    const at = (prefix: string) => setup.findIndex((l) => l.startsWith(prefix));
    expect(at("idmap-mount /v/etc/_data /c/rootfs/etc")).toBeGreaterThan(at("idmap-userns"));
    // /etc/hostname is hidden by the volume on /etc: made again in the volume, owned by (host) 0.
    expect(at("touch /v/etc/_data/hostname 0644 0 0")).toBeGreaterThan(
      at("idmap-mount /v/etc/_data"),
    );
    expect(at("mount /c/hostname /c/rootfs/etc/hostname")).toBeGreaterThan(
      at("touch /v/etc/_data/hostname"),
    );
    const ro = at("idmap-mount /srv /c/rootfs/srv/site");
    expect(setup[ro + 1]).toBe("mount - /c/rootfs/srv/site - 0x1021 -"); // MS_BIND|MS_REMOUNT|MS_RDONLY
  });

  it("without idmapped mounts: plain binds, mount points owned by the container's root", () => {
    const setup = lines(buildPlan(withVolumes(true), layout(false)));
    expect(setup.some((l) => l.startsWith("idmap"))).toBe(false);
    expect(setup).toContain("mount /v/etc/_data /c/rootfs/etc - 0x1000 -");
    expect(setup).toContain(`touch /v/etc/_data/hostname 0644 ${1 << 20} ${1 << 20}`);
  });
});
