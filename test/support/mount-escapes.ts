// Helpers for the mount-target escape tests (CVE-2021-30465, CVE-2025-31133):
// a host directory the attack aims at, images built with symlinks to it, and
// the host-side checks (no new mount, the target untouched).
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { buildTar, busyboxRootfsEntries, sortEntries, type TarEntry } from "./fixtures.js";
import type { Result, Sandbox } from "./minibox.js";

/** The host's mount points, as this process sees them (the host's namespace). */
export function hostMountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ")[4] ?? "");
}

/** A file's content and mtime, to show that the host file was not touched. */
export function fileState(file: string): { content: string; mtimeMs: number } {
  return { content: readFileSync(file, "utf8"), mtimeMs: statSync(file).mtimeMs };
}

/**
 * A host directory for the attack to aim at: `dir` (with `victim`, an
 * empty directory, and `victim-file`, a file anyone may write: the
 * container's root is an unprivileged host uid, and only the file's own
 * mode would stop a write that reached it).
 */
export function hostTarget(prefix: string): { dir: string; victim: string; victimFile: string } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const victim = path.join(dir, "victim");
  mkdirSync(victim);
  const victimFile = path.join(dir, "victim-file");
  writeFileSync(victimFile, "host content\n");
  chmodSync(victimFile, 0o666);
  return { dir, victim, victimFile };
}

/** Build `tag` FROM `base` with RUN `script` (the hostile layer), in a temp context. */
export async function buildHostile(box: Sandbox, tag: string, base: string, script: string) {
  const ctx = mkdtempSync(path.join(tmpdir(), "minibox-hostile-ctx-"));
  writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${base}\nRUN ${script}\n`);
  const r = await box.run(["build", "-q", "-t", tag, ctx]);
  rmSync(ctx, { recursive: true, force: true });
  expect(r.code, r.stderr).toBe(0);
}

/** Either it ran, or it was refused with minibox's one clear line (exit 125). */
export function ranOrRefusedClearly(r: Result): "ran" | "refused" {
  if (r.code === 0) return "ran";
  expect(r.code, r.stderr).toBe(125);
  expect(r.stderr.trimEnd().split("\n"), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^minibox: /);
  return "refused";
}

/**
 * Import `tag`: the busybox rootfs plus `extra` entries (symlinks under
 * /dev, which a build's RUN cannot leave in a layer: /dev is a tmpfs then).
 */
export async function importHostile(box: Sandbox, tag: string, extra: TarEntry[]) {
  const names = new Set(extra.map((e) => e.name));
  const entries = [...(await busyboxRootfsEntries()).filter((e) => !names.has(e.name)), ...extra];
  const dir = mkdtempSync(path.join(tmpdir(), "minibox-hostile-tar-"));
  const file = path.join(dir, "rootfs.tar");
  writeFileSync(file, await buildTar(sortEntries(entries)));
  const r = await box.run(["import", file, tag]);
  rmSync(dir, { recursive: true, force: true });
  expect(r.code, r.stderr).toBe(0);
}
