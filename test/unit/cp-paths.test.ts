// cp's path rules: "NAME:PATH" arguments, paths resolved inside a
// container's merged layers (links clamped at its root), ids mapped in.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { splitCpArg } from "../../src/cli/cp-command.js";
import { type ContainerFs, resolveInContainer } from "../../src/runtime/cp/container-fs.js";
import { toHostId } from "../../src/runtime/cp/copy.js";

describe("splitCpArg", () => {
  test("NAME:PATH is a container path; absolute, ./ and - are local, as Docker's", () => {
    expect(splitCpArg("web:/etc/hosts")).toEqual({ container: "web", path: "/etc/hosts" });
    expect(splitCpArg("web:")).toEqual({ container: "web", path: "/" });
    expect(splitCpArg("/tmp/a:b")).toEqual({ path: "/tmp/a:b" });
    expect(splitCpArg("./a:b")).toEqual({ path: "./a:b" });
    expect(splitCpArg("-")).toEqual({ path: "-" });
    expect(splitCpArg("plain")).toEqual({ path: "plain" });
  });
});

describe("resolveInContainer", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "minibox-cp-unit-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const lower = path.join(dir, "lower");
  const upper = path.join(dir, "upper");
  mkdirSync(path.join(lower, "etc"), { recursive: true });
  mkdirSync(path.join(upper, "data"), { recursive: true });
  writeFileSync(path.join(lower, "etc", "shadow"), "container\n");
  symlinkSync("/etc/shadow", path.join(upper, "leak"));
  symlinkSync("../../../../etc", path.join(upper, "data", "up"));
  symlinkSync("/data/up", path.join(upper, "chain"));
  const cfs: ContainerFs = {
    name: "c",
    layers: [{ dir: lower }, { dir: upper }],
    writable: upper,
    isUpper: true,
  };

  test("an absolute link stays in the container; the link itself unless followed", () => {
    expect(resolveInContainer(cfs, "/leak", true).parts).toEqual(["etc", "shadow"]);
    const itself = resolveInContainer(cfs, "/leak", false);
    expect(itself.parts).toEqual(["leak"]);
    expect(itself.found?.stat.isSymbolicLink()).toBe(true);
  });

  test("'..' past the root stops at it, through a chain of links, across layers", () => {
    const r = resolveInContainer(cfs, "/chain/shadow", false);
    expect(r.parts).toEqual(["etc", "shadow"]);
    expect(r.found?.layer.dir).toBe(lower);
  });

  test("a missing last component resolves with nothing found; a missing directory is Docker's error", () => {
    expect(resolveInContainer(cfs, "/data/new", false)).toEqual({ parts: ["data", "new"] });
    expect(() => resolveInContainer(cfs, "/no/such", false)).toThrow(
      "Could not find the file /no/such in container c",
    );
  });
});

test("toHostId maps a container id through the user namespace, refusing one outside it", () => {
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  expect(toHostId(0, map)).toBe(100000);
  expect(toHostId(1234, map)).toBe(101234);
  expect(() => toHostId(70000, map)).toThrow("no mapping");
});
