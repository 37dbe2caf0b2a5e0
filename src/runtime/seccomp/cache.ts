/**
 * A container's seccomp filter, through a cache in the store. Resolving the
 * default profile and compiling it cost ~24 ms of node time per run
 * (loading the profile, the syscall tables and the compiler, then running
 * them on a cold JIT), for the same bytes every time: the result depends
 * only on the profile, the capabilities, the architecture and the kernel
 * release. So both steps are cached in `<root>/seccomp/`, one small JSON
 * file per result, named by the SHA-256 of those inputs and of the seccomp
 * sources (SECCOMP_SOURCES_DIGEST: a minibox whose profile or compiler
 * changed never reads an older one's program). The profile and compiler
 * modules are imported only on a miss.
 *
 *   resolved-<key>.json  the OCI linux.seccomp for (profile, caps, arch, kernel)
 *   filter-<key>.json    its compiled program for (linux.seccomp, arch)
 *
 * An unreadable or malformed entry is a miss (and is rewritten). Entries are
 * written to a temporary name and renamed: a concurrent run reads a whole
 * entry or none.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { CompiledFilter } from "./compile.js";
import type { SeccompProfile, SeccompTarget, SpecSeccomp } from "./profile.js";
import { SECCOMP_SOURCES_DIGEST } from "./sources-digest.js";

/** Which profile: minibox's default (never loaded on a hit) or one given with --security-opt. */
export type ProfileChoice = "default" | SeccompProfile;

/** What a lookup did, for --trace. */
export type CacheOutcome = "hit" | "miss";

const key = (...parts: unknown[]) =>
  createHash("sha256")
    .update(JSON.stringify([SECCOMP_SOURCES_DIGEST, ...parts]))
    .digest("hex");

function readEntry<T>(file: string, valid: (v: unknown) => v is T): T | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(file, "utf8"));
    return valid(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function writeEntry(file: string, value: unknown): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // A cache that cannot be written (read-only store) only costs time.
  }
}

const isSpec = (v: unknown): v is SpecSeccomp =>
  typeof v === "object" && v !== null && Array.isArray((v as SpecSeccomp).syscalls);

interface FilterEntry {
  program: string;
  instructions: number;
  allowed: number;
}

const isFilter = (v: unknown): v is FilterEntry => {
  const f = v as FilterEntry;
  return (
    typeof f?.program === "string" &&
    Number.isInteger(f.instructions) &&
    Number.isInteger(f.allowed) &&
    Buffer.from(f.program, "base64").length === f.instructions * 8
  );
};

/** The profile resolved for one container (linux.seccomp), from the cache or resolved now. */
export async function resolvedSeccomp(
  dir: string,
  profile: ProfileChoice,
  t: SeccompTarget,
): Promise<{ spec: SpecSeccomp; cache: CacheOutcome }> {
  const file = path.join(
    dir,
    `resolved-${key(profile, [...t.capabilities].sort(), t.arch, t.kernel)}.json`,
  );
  const cached = readEntry(file, isSpec);
  if (cached) return { spec: cached, cache: "hit" };
  const { resolveProfile } = await import("./profile.js");
  const full =
    profile === "default" ? (await import("./default-profile.js")).defaultProfile() : profile;
  const spec = resolveProfile(full, t);
  writeEntry(file, spec);
  return { spec, cache: "miss" };
}

/** linux.seccomp compiled for `arch`, from the cache or compiled now. */
export async function compiledSeccomp(
  dir: string,
  spec: SpecSeccomp,
  arch: string,
): Promise<{ filter: CompiledFilter; cache: CacheOutcome }> {
  const file = path.join(dir, `filter-${key(spec, arch)}.json`);
  const cached = readEntry(file, isFilter);
  if (cached) {
    const program = new Uint8Array(Buffer.from(cached.program, "base64"));
    return { filter: { ...cached, program }, cache: "hit" };
  }
  const { compileFilter } = await import("./compile.js");
  const filter = compileFilter(spec, arch);
  writeEntry(file, { ...filter, program: Buffer.from(filter.program).toString("base64") });
  return { filter, cache: "miss" };
}
