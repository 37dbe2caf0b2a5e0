// docs/security.md "minibox's defaults against Docker's": the values between
// backquotes in the table's minibox column are what the spec generator and
// the plan produce. Each row's check lists the quoted values in the order the
// cell gives them and derives them from the code, so a change to a default
// fails here until the table says it. The Docker column comes from moby's
// source and is not checked.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { DEFAULT_DEVICE_RULES, type SpecDevice, v1DeviceRule } from "../../src/runtime/devices.js";
import { pickFreeRange } from "../../src/runtime/idmap.js";
import { capMask } from "../../src/runtime/plan/capabilities.js";
import { childMountSteps } from "../../src/runtime/plan/child-mount-steps.js";
import { deviceSteps } from "../../src/runtime/plan/device-steps.js";
import { MS } from "../../src/runtime/plan/mount-options.js";
import { readOnlyRootSteps, rootfsSteps } from "../../src/runtime/plan/rootfs-steps.js";
import type { Step } from "../../src/runtime/plan/steps.js";
import { defaultProfile } from "../../src/runtime/seccomp/index.js";
import { parseSecurityOpts } from "../../src/runtime/security-options.js";
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  generateSpec,
  resources,
  type Spec,
} from "../../src/runtime/spec.js";
import { context, IDMAP, settings } from "./plan-fixtures.js";

const __dirname = path.dirname(fileURLToPath(import.meta.url));
const DOC = path.resolve(__dirname, "..", "..", "docs", "security.md");
const HEADING = "## minibox's defaults against Docker's";
const HOST = { arch: "x64", kernel: "6.1.0" };

/** The section's table: item → its minibox cell. */
function table(): Map<string, string> {
  const doc = readFileSync(DOC, "utf8");
  const start = doc.indexOf(`${HEADING}\n`);
  expect(start, `docs/security.md has no "${HEADING}"`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf("\n## ", start + HEADING.length);
  const rows = doc
    .slice(start, end < 0 ? undefined : end)
    .split("\n")
    .filter((line) => line.startsWith("| ") && !line.startsWith("| ---"))
    .slice(1) // the header
    .map((line) => line.slice(2, -2).split(" | "));
  for (const row of rows) expect(row, `a row of 4 cells: ${row[0]}`).toHaveLength(4);
  return new Map(rows.map(([item = "", minibox = ""]) => [item, minibox]));
}

/** The values between backquotes, in order. */
function quoted(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? "");
}

const short = (caps: readonly string[]) => caps.map((c) => c.replace(/^CAP_/, ""));
const spec = (over: Parameters<typeof settings>[0] = {}): Spec => generateSpec(settings(over));
const mountOptions = (s: Spec, destination: string) =>
  s.mounts.find((m) => m.destination === destination)?.options ?? [];
const named = (steps: Step[], op: Step["op"]) =>
  steps.flatMap((s) => (s.op === op && "path" in s ? [path.posix.basename(s.path)] : []));

/** Each row's quoted values, derived from the code (and the facts behind them asserted). */
const ROWS: Record<string, () => string[]> = {
  Capabilities: () => {
    const root = spec().process.capabilities;
    expect(root.effective).toEqual(DEFAULT_CAPABILITIES);
    expect(root.permitted).toEqual(DEFAULT_CAPABILITIES);
    expect(root.bounding).toEqual(DEFAULT_CAPABILITIES);
    const user = spec({ user: { uid: 1000, gid: 1000, additionalGids: [], home: "/", name: "u" } })
      .process.capabilities;
    expect(user.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect([...user.effective, ...user.permitted, ...user.ambient]).toEqual([]);
    return [...short(DEFAULT_CAPABILITIES), "CapEff", capMask([...DEFAULT_CAPABILITIES])];
  },
  seccomp: () => {
    const profile = defaultProfile();
    const resolved = spec({ seccomp: profile, host: HOST }).linux.seccomp;
    expect(resolved?.defaultAction).toBe("SCMP_ACT_ERRNO");
    return [
      "src/runtime/seccomp/default.json",
      "defaultErrnoRet",
      String(resolved?.defaultErrnoRet),
      "Seccomp: 2",
    ];
  },
  "Masked paths": () => {
    const masks = childMountSteps(context()).filter((s) => s.op === "mask");
    for (const m of masks) expect(m.op === "mask" && m.with.endsWith("/dev/null")).toBe(true);
    return [...spec().linux.maskedPaths, "/dev/null"];
  },
  "Read-only paths": () => spec().linux.readonlyPaths,
  no_new_privs: () => {
    expect(spec().process.noNewPrivileges).toBe(true);
    expect(parseSecurityOpts([], () => "").noNewPrivileges).toBe(true);
    const off = parseSecurityOpts(["no-new-privileges=false"], () => "");
    expect(spec({ noNewPrivileges: off.noNewPrivileges }).process.noNewPrivileges).toBe(false);
    expect(spec({ privileged: true }).process.noNewPrivileges).toBe(true);
    return ["NoNewPrivs: 1", "--security-opt no-new-privileges=false", "--privileged"];
  },
  "User namespace": () => {
    expect(pickFreeRange([])).toBe(1048576);
    expect(spec({ idmap: IDMAP }).linux.uidMappings).toEqual([{ ...IDMAP, size: 65536 }]);
    return ["/etc/subuid", "--userns=host"];
  },
  "Device cgroup": () => {
    const [deny, ...allow] = spec().linux.resources.devices ?? [];
    expect(deny?.allow).toBe(false);
    expect(allow).toEqual(DEFAULT_DEVICE_RULES);
    return [
      v1DeviceRule(deny ?? { allow: true, access: "" }),
      ...allow.map(v1DeviceRule),
      "--device",
    ];
  },
  "/dev": () => {
    const options = mountOptions(spec(), "/dev");
    expect(options).toContain("size=65536k");
    const steps = deviceSteps(context());
    const mounts = spec()
      .mounts.filter((m) => m.destination.startsWith("/dev/"))
      .map((m) => path.posix.basename(m.destination));
    expect(named(steps, "mkdir")).toEqual(mounts);
    return [
      ...options.filter((o) => o === "nosuid" || o.startsWith("mode=")),
      ...named(steps, "mknod"),
      ...named(steps, "symlink"),
      ...mounts,
    ];
  },
  "/proc and /sys": () => {
    const s = spec();
    expect(s.mounts.some((m) => m.destination.startsWith("/sys/fs/cgroup"))).toBe(false);
    return [
      "/proc",
      mountOptions(s, "/proc").join(","),
      "/sys",
      mountOptions(s, "/sys").join(","),
      "/sys/fs/cgroup",
    ];
  },
  "Root filesystem": () => {
    const overlayFlags = (c: ReturnType<typeof context>) => {
      const overlay = rootfsSteps(c).find((s) => s.op === "mount" && s.fstype === "overlay");
      return overlay?.op === "mount" ? overlay.flags : undefined;
    };
    expect(overlayFlags(context())).toBe(MS.NODEV);
    expect(overlayFlags(context({ privileged: true, hostDevices: [] }))).toBe(0);
    expect(readOnlyRootSteps(context())).toEqual([]);
    expect(readOnlyRootSteps(context({ readOnly: true }))).toHaveLength(1);
    return ["nodev", "nosuid", "--privileged", "--read-only"];
  },
  Namespaces: () => {
    const types = spec({ idmap: IDMAP }).linux.namespaces.map((n) => n.type);
    expect(types).not.toContain("time");
    expect(spec({ network: "host" }).linux.namespaces.map((n) => n.type)).not.toContain("network");
    return [...types, "--network host"];
  },
  "pids limit": () => {
    expect(resources({}).pids).toBeUndefined();
    expect(spec().linux.resources.pids).toBeUndefined();
    return ["--pids-limit N"];
  },
  "--privileged": () => {
    const host: SpecDevice = { path: "/dev/sda", type: "b", major: 8, minor: 0, fileMode: 0o660 };
    const over = { privileged: true, seccomp: defaultProfile(), host: HOST, hostDevices: [host] };
    const inUserns = spec({ ...over, idmap: IDMAP });
    expect(inUserns.process.capabilities.effective).toEqual(ALL_CAPABILITIES);
    expect(inUserns.linux.namespaces.map((n) => n.type)).toContain("user");
    expect(inUserns.linux.seccomp).toBeUndefined();
    // A profile named with --security-opt seccomp=FILE is kept (Docker).
    expect(spec({ ...over, idmap: IDMAP, seccompNamed: true }).linux.seccomp).toBeDefined();
    expect([...inUserns.linux.maskedPaths, ...inUserns.linux.readonlyPaths]).toEqual([]);
    expect(mountOptions(inUserns, "/sys")).not.toContain("ro");
    expect(inUserns.linux.devices?.map((d) => d.path)).toEqual(["/dev/sda"]);
    const cgroup = inUserns.linux.resources.devices ?? [];
    const hostOnly = spec({ ...over, callerCapabilities: ["CAP_CHOWN"] });
    expect(hostOnly.process.capabilities.effective).toEqual(["CAP_CHOWN"]);
    return [
      "CapEff",
      capMask(inUserns.process.capabilities.effective),
      "--userns=host",
      "--security-opt seccomp=FILE",
      "/sys",
      "/dev",
      ...cgroup.map(v1DeviceRule),
      "--userns=host",
    ];
  },
  "OOM score": () => {
    expect(JSON.stringify(spec())).not.toMatch(/oomScoreAdj/i);
    return ["oom_score_adj", "0"];
  },
  Hostname: () => {
    expect(spec({ hostname: "0123456789ab" }).hostname).toBe("0123456789ab");
    return ["--hostname"];
  },
  "ulimits (rlimits)": () => {
    const nofile = (hard: number) => spec({ rlimitHard: { nofile: hard } }).process.rlimits;
    const [limit, ...others] = nofile(2 ** 31);
    expect(others).toEqual([]);
    expect(limit?.soft).toBe(limit?.hard);
    expect(nofile(4096)).toEqual([{ type: "RLIMIT_NOFILE", soft: 4096, hard: 4096 }]);
    return [limit?.type ?? "", String(limit?.hard), "--ulimit"];
  },
  "Network sysctls": () => {
    expect(spec().linux.sysctl).toBeUndefined();
    return ["CAP_NET_BIND_SERVICE"];
  },
};

describe(`docs/security.md "${HEADING}"`, () => {
  const rows = table();

  test("has one row per item, in this order", () => {
    expect([...rows.keys()]).toEqual(Object.keys(ROWS));
  });

  for (const [item, derive] of Object.entries(ROWS)) {
    test(`${item}: the minibox column quotes what the code produces`, () => {
      expect(quoted(rows.get(item) ?? "")).toEqual(derive());
    });
  }
});
