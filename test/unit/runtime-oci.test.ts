// minibox-runc's pure parts: the starter spec, the features report, the log
// formats, container IDs, list's printers and --version's shape.
import { describe, expect, it } from "vitest";
import { checkContainerId } from "../../src/runtime/oci/container-id.js";
import { formatListJson, formatListTable } from "../../src/runtime/oci/container-list.js";
import { starterSpec } from "../../src/runtime/oci/default-spec.js";
import { runtimeFeatures } from "../../src/runtime/oci/features.js";
import { formatLogLine, logTime, parseLogFormat } from "../../src/runtime/oci/runtime-log.js";
import { versionText } from "../../src/runtime/oci/version.js";
import { CAPABILITIES } from "../../src/runtime/plan/capabilities.js";
import { propagationSteps, splitOptions } from "../../src/runtime/plan/mount-options.js";
import { ARCHES } from "../../src/runtime/seccomp/tables.js";
import { OCI_VERSION } from "../../src/runtime/spec.js";

// biome-ignore lint/suspicious/noExplicitAny: the spec is JSON, read back field by field
type Json = Record<string, any>;

describe("starterSpec (runc spec's config.json)", () => {
  it("is runc's starter: sh, three capabilities, a read-only rootfs, every device denied", () => {
    const spec = starterSpec() as Json;
    expect(spec.ociVersion).toBe(OCI_VERSION);
    expect(spec.process.args).toEqual(["sh"]);
    expect(spec.process.capabilities.bounding).toEqual([
      "CAP_AUDIT_WRITE",
      "CAP_KILL",
      "CAP_NET_BIND_SERVICE",
    ]);
    expect(spec.root).toEqual({ path: "rootfs", readonly: true });
    expect(spec.linux.resources.devices).toEqual([{ allow: false, access: "rwm" }]);
    expect(spec.linux.namespaces.map((n: Json) => n.type)).toEqual([
      "pid",
      "network",
      "ipc",
      "uts",
      "mount",
    ]);
    expect(spec.linux.uidMappings).toBeUndefined();
  });

  it("--rootless maps root to the caller, adds a user namespace, drops network and the device cgroup", () => {
    const spec = starterSpec({ rootless: { uid: 1000, gid: 1001 } }) as Json;
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 1000, size: 1 }]);
    expect(spec.linux.gidMappings).toEqual([{ containerID: 0, hostID: 1001, size: 1 }]);
    expect(spec.linux.namespaces.map((n: Json) => n.type)).toEqual([
      "pid",
      "ipc",
      "uts",
      "mount",
      "user",
    ]);
    expect(spec.linux.resources).toBeUndefined();
    const sys = spec.mounts.find((m: Json) => m.destination === "/sys");
    expect(sys).toMatchObject({ type: "none", source: "/sys" });
    expect(sys.options).toContain("rbind");
    const devpts = spec.mounts.find((m: Json) => m.destination === "/dev/pts");
    expect(devpts.options).not.toContain("gid=5");
  });

  it("returns a new object each time (a caller's edit does not leak into the next spec)", () => {
    const a = starterSpec() as Json;
    a.process.capabilities.bounding.push("CAP_SYS_ADMIN");
    a.linux.maskedPaths.length = 0;
    expect(starterSpec()).toEqual(starterSpec());
    expect((starterSpec() as Json).process.capabilities.bounding).toHaveLength(3);
    expect((starterSpec() as Json).linux.maskedPaths.length).toBeGreaterThan(0);
  });
});

describe("runtimeFeatures", () => {
  const f = runtimeFeatures();

  it("claims every mount option as one minibox turns into mount(2) flags, none as filesystem data", () => {
    expect(f.mountOptions.length).toBeGreaterThan(5);
    for (const option of f.mountOptions) expect(splitOptions([option]).data).toBe("");
    // Propagation is applied by a step of its own after the mount (mount-options.ts propagationSteps).
    expect(f.mountOptions).toEqual(
      expect.arrayContaining(["rshared", "rslave", "rprivate", "runbindable"]),
    );
    expect(propagationSteps(["rbind", "rslave"], "/r/x")).toEqual([
      expect.objectContaining({ source: "", target: "/r/x", flags: 0x80000 | 0x4000 }),
    ]);
    // private/rprivate need no step: the executor's mount namespace is rprivate already.
    expect(propagationSteps(["rbind", "rprivate"], "/r/x")).toEqual([]);
  });

  it("lists the capabilities, namespaces and seccomp architectures from minibox's own tables", () => {
    expect(f.linux.capabilities).toEqual(Object.keys(CAPABILITIES));
    expect(f.linux.namespaces).toEqual(["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]);
    expect(f.linux.seccomp.archs).toEqual(Object.keys(ARCHES).sort());
    expect(f.linux.seccomp.actions).not.toContain("SCMP_ACT_NOTIFY");
    expect(f.linux.seccomp.operators).toContain("SCMP_CMP_MASKED_EQ");
  });

  it("says no systemd cgroup driver, no AppArmor or SELinux; lists the hooks it runs", () => {
    expect(f.linux.cgroup).toEqual({ v1: true, v2: true, systemd: false, systemdUser: false });
    expect(f.hooks).toEqual([
      "prestart",
      "createRuntime",
      "createContainer",
      "startContainer",
      "poststart",
      "poststop",
    ]);
    expect(f.linux.apparmor.enabled).toBe(false);
    expect(f.linux.selinux.enabled).toBe(false);
    expect(f.ociVersionMax).toBe(OCI_VERSION);
  });
});

describe("runtime log lines (logrus's formats, as runc writes them)", () => {
  const time = logTime(new Date(Date.UTC(2026, 11, 3, 8, 27, 21, 456)));

  it("prints the time to the second in RFC 3339", () => {
    expect(time).toBe("2026-12-03T08:27:21Z");
  });

  it("text: quotes values that need it", () => {
    expect(formatLogLine("error", "container does not exist", time, "text")).toBe(
      'time="2026-12-03T08:27:21Z" level=error msg="container does not exist"',
    );
    expect(formatLogLine("debug", "plain", time, "text")).toBe(
      'time="2026-12-03T08:27:21Z" level=debug msg=plain',
    );
    expect(formatLogLine("error", 'say "hi"\n', time, "text")).toContain('msg="say \\"hi\\"\\n"');
  });

  it("json: one object per line with level, msg and time", () => {
    const line = formatLogLine("error", "container does not exist", time, "json");
    expect(line).toBe(
      '{"level":"error","msg":"container does not exist","time":"2026-12-03T08:27:21Z"}',
    );
  });

  it("refuses a format runc does not have", () => {
    expect(parseLogFormat("json")).toBe("json");
    expect(() => parseLogFormat("xml")).toThrow("invalid log-format: xml");
  });
});

describe("container IDs", () => {
  it("accepts runc's characters", () => {
    expect(checkContainerId("web-1_a.b+c")).toBe("web-1_a.b+c");
  });

  it.each(["", ".", "..", "../x", "a/b", "/etc", "a b", "x\n"])("refuses %j", (id) => {
    expect(() => checkContainerId(id)).toThrow("invalid container ID format");
  });
});

describe("list printers", () => {
  it("no container: runc's header, and JSON null (a nil slice)", () => {
    expect(formatListTable([])).toBe(
      "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n",
    );
    expect(formatListJson([])).toBe("null\n");
  });

  it("a long cell widens its column by three spaces, as tabwriter does", () => {
    const c = {
      id: "a-rather-long-id",
      pid: 42,
      status: "running",
      bundle: "/b",
      created: "t",
      owner: "root",
    };
    const [header, row] = formatListTable([c]).split("\n");
    expect(header?.indexOf("PID")).toBe("a-rather-long-id".length + 3);
    expect(row?.indexOf("42")).toBe("a-rather-long-id".length + 3);
  });
});

describe("--version", () => {
  it("begins 'runc version X' and has commit: and spec: lines (go-runc parses them)", () => {
    const lines = versionText().split("\n");
    expect(lines[0]).toMatch(/^runc version \S+$/);
    expect(lines[1]).toMatch(/^commit: \S+/);
    expect(lines[2]).toBe(`spec: ${OCI_VERSION}`);
  });
});
