// ./minibox-runc run as containerd and podman run runc, beside Debian's runc
// (/usr/sbin/runc): where callers depend on a shape (config.json from `spec`,
// the `features` report, `list`, the error of `state` on an unknown container,
// the --log records), minibox-runc's must be runc's.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/minibox.js";

const MINIBOX_RUNC = path.join(REPO_ROOT, "minibox-runc");
const RUNC = "/usr/sbin/runc";
const work = mkdtempSync(path.join(tmpdir(), "minibox-runc-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(binary: string, args: string[], cwd = work) {
  const r = spawnSync(binary, args, { cwd, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh directory under the test's temp dir. */
function dir(name: string): string {
  const d = path.join(work, name);
  mkdirSync(d);
  return d;
}

/** Every key path of a JSON value ("linux.seccomp.archs"), arrays as one leaf. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

describe("minibox-runc beside runc", () => {
  it("Debian's runc is installed (the reference these tests compare with)", () => {
    expect(existsSync(RUNC), "apt install runc").toBe(true);
  });

  it("--version and -v begin 'runc version', then commit: and spec:", () => {
    for (const flag of ["--version", "-v"]) {
      const r = run(MINIBOX_RUNC, [flag]);
      expect(r.code).toBe(0);
      const lines = r.stdout.split("\n");
      expect(lines[0]).toMatch(/^runc version \S+$/);
      expect(lines[1]).toMatch(/^commit: /);
      expect(lines[2]).toMatch(/^spec: 1\.\d+\.\d+/);
    }
    expect(run(RUNC, ["--version"]).stdout).toMatch(/^runc version \S+\ncommit: .*\nspec: /);
  });

  it("no verb: the help on stdout, exit 0, as runc", () => {
    for (const binary of [MINIBOX_RUNC, RUNC]) {
      const r = run(binary, []);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/spec/);
      expect(r.stderr).toBe("");
    }
  });

  it("spec writes runc's config.json (the same file but for ociVersion and hostname)", () => {
    for (const rootless of [false, true]) {
      const flags = rootless ? ["--rootless"] : [];
      const ours = dir(`spec-ours-${rootless}`);
      const theirs = dir(`spec-runc-${rootless}`);
      expect(run(MINIBOX_RUNC, ["spec", "--bundle", ours, ...flags]).code).toBe(0);
      expect(run(RUNC, ["spec", ...flags], theirs).code).toBe(0);
      const a = JSON.parse(readFileSync(path.join(ours, "config.json"), "utf8"));
      const b = JSON.parse(readFileSync(path.join(theirs, "config.json"), "utf8"));
      expect(keyPaths(a).sort()).toEqual(keyPaths(b).sort());
      expect({ ...a, ociVersion: "", hostname: "" }).toEqual({
        ...b,
        ociVersion: "",
        hostname: "",
      });
    }
  });

  it("spec in the current directory, and never over an existing config.json (runc's message)", () => {
    const bundle = dir("spec-twice");
    expect(run(MINIBOX_RUNC, ["spec"], bundle).code).toBe(0);
    const file = path.join(bundle, "config.json");
    writeFileSync(file, "{}");
    const before = statSync(file).mtimeMs;
    for (const binary of [MINIBOX_RUNC, RUNC]) {
      const r = run(binary, ["spec"], bundle);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("File config.json exists. Remove it first");
    }
    expect(readFileSync(file, "utf8")).toBe("{}");
    expect(statSync(file).mtimeMs).toBe(before);
  });

  it("features has the keys of runc's report, and claims no name runc does not know", () => {
    const ours = run(MINIBOX_RUNC, ["features"]);
    const theirs = run(RUNC, ["features"]);
    expect(ours.code).toBe(0);
    const a = JSON.parse(ours.stdout);
    const b = JSON.parse(theirs.stdout);
    const withoutAnnotations = (paths: string[]) =>
      paths.filter((p) => !p.startsWith("annotations"));
    expect(withoutAnnotations(keyPaths(a)).sort()).toEqual(withoutAnnotations(keyPaths(b)).sort());
    const lists = (f: typeof a) => [
      f.mountOptions,
      f.linux.namespaces,
      f.linux.capabilities,
      f.linux.seccomp.actions,
      f.linux.seccomp.operators,
      f.linux.seccomp.archs,
    ];
    const known = lists(b);
    lists(a).forEach((names: string[], i: number) => {
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(known[i]).toContain(name);
    });
  });

  it("list under an empty root prints runc's table header, and null as JSON", () => {
    for (const [format, quiet] of [["table"], ["json"], ["table", "-q"]] as const) {
      const extra = quiet ? [quiet] : [];
      const ours = run(MINIBOX_RUNC, [
        "--root",
        path.join(work, "root-ours"),
        "list",
        "--format",
        format,
        ...extra,
      ]);
      const theirs = run(RUNC, [
        "--root",
        path.join(work, "root-runc"),
        "list",
        "--format",
        format,
        ...extra,
      ]);
      expect(ours.code).toBe(0);
      expect(ours.stdout).toBe(theirs.stdout);
    }
  });

  it("state of an unknown container: 'container does not exist', exit 1, in the --log file in both formats", () => {
    const root = dir("state-root");
    for (const binary of [MINIBOX_RUNC, RUNC]) {
      const plain = run(binary, ["--root", root, "state", "nosuch"]);
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/^time="[^"]+" level=error msg="container does not exist"\n$/);

      const log = path.join(work, `${path.basename(binary)}.log.json`);
      const logged = run(binary, [
        "--root",
        root,
        "--log",
        log,
        "--log-format",
        "json",
        "state",
        "nosuch",
      ]);
      expect(logged.code).toBe(1);
      expect(logged.stderr).toBe("container does not exist\n");
      const record = JSON.parse(readFileSync(log, "utf8").trim().split("\n").pop() ?? "");
      expect(Object.keys(record)).toEqual(["level", "msg", "time"]);
      expect(record).toMatchObject({ level: "error", msg: "container does not exist" });
    }
  });

  it("state refuses an ID that would leave --root", () => {
    const r = run(MINIBOX_RUNC, ["--root", dir("id-root"), "state", "../etc"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid container ID format");
  });

  it("--systemd-cgroup: one clear error, exit 1; a bad --log-format too", () => {
    const systemd = run(MINIBOX_RUNC, ["--systemd-cgroup", "--root", dir("systemd-root"), "list"]);
    expect(systemd.code).toBe(1);
    expect(systemd.stderr).toContain("--systemd-cgroup is not supported: minibox drives cgroupfs");
    const format = run(MINIBOX_RUNC, ["--log-format", "xml", "features"]);
    expect(format.code).toBe(1);
    expect(format.stderr).toContain("invalid log-format: xml");
  });

  it("minibox runtime is the same command line", () => {
    const r = run(path.join(REPO_ROOT, "minibox"), [
      "runtime",
      "--root",
      dir("runtime-root"),
      "state",
      "nosuch",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('msg="container does not exist"');
    expect(run(path.join(REPO_ROOT, "minibox"), ["runtime", "features"]).stdout).toBe(
      run(MINIBOX_RUNC, ["features"]).stdout,
    );
  });
});
