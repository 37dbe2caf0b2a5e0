// `diff`'s walk (src/runtime/changes.ts) over hand-made directories: an
// image layer and an upper directory as a container leaves it. Whiteouts
// and opaque directories need root (mknod, trusted.* xattrs): those are in
// test/integration/commit.test.ts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { containerChanges } from "../../src/runtime/changes.js";

let tmp: string;
let lower: string;
let upper: string;
const T = new Date("2001-02-03T04:05:06Z");

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "minibox-changes-test-"));
  lower = path.join(tmp, "lower");
  upper = path.join(tmp, "upper");
  for (const d of ["lower/etc", "lower/usr/lib", "lower/var", "upper"])
    fs.mkdirSync(path.join(tmp, d), { recursive: true });
  fs.writeFileSync(path.join(lower, "etc/passwd"), "root\n");
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** mkdir in the upper directory with the lower one's metadata (overlayfs' copy-up). */
function copyUp(rel: string): void {
  fs.mkdirSync(path.join(upper, rel), { recursive: true });
  const st = fs.statSync(path.join(lower, rel));
  fs.chmodSync(path.join(upper, rel), st.mode & 0o7777);
  fs.utimesSync(path.join(upper, rel), st.atime, st.mtime);
}

test("A for new, C for changed and for the parent of a new entry, copied-up directories left out", () => {
  for (const d of ["usr", "usr/lib", "var"]) fs.utimesSync(path.join(lower, d), T, T);
  copyUp("usr");
  copyUp("usr/lib");
  fs.mkdirSync(path.join(upper, "usr/lib/new"));
  fs.writeFileSync(path.join(upper, "usr/lib/new/b"), "b");
  fs.writeFileSync(path.join(upper, "usr/lib/new/a"), "a");
  copyUp("var");
  fs.writeFileSync(path.join(upper, "var/log"), "x");
  // usr and var as copied up (their mtimes as the lower's), though entries were made in them
  // since: then only the parent rule makes var a change, and nothing makes usr one.
  for (const d of ["usr", "var"]) fs.utimesSync(path.join(upper, d), T, T);
  fs.writeFileSync(path.join(upper, "added"), "x");
  expect(containerChanges(upper, [{ dir: lower }])).toEqual([
    { kind: "A", path: "/added" },
    { kind: "C", path: "/usr/lib" },
    { kind: "A", path: "/usr/lib/new" },
    { kind: "A", path: "/usr/lib/new/a" },
    { kind: "A", path: "/usr/lib/new/b" },
    { kind: "C", path: "/var" },
    { kind: "A", path: "/var/log" },
  ]);
});

test("the runtime's own mount points are no change: empty /etc files, /etc made for them, /proc", () => {
  fs.rmSync(path.join(lower, "etc"), { recursive: true });
  for (const f of ["etc/hostname", "etc/hosts", "etc/resolv.conf"]) {
    fs.mkdirSync(path.join(upper, "etc"), { recursive: true });
    fs.writeFileSync(path.join(upper, f), "");
  }
  fs.mkdirSync(path.join(upper, "proc"));
  expect(containerChanges(upper, [{ dir: lower }])).toEqual([]);
  fs.writeFileSync(path.join(upper, "etc/motd"), "hi");
  expect(containerChanges(upper, [{ dir: lower }])).toEqual([
    { kind: "A", path: "/etc" },
    { kind: "A", path: "/etc/motd" },
  ]);
});
