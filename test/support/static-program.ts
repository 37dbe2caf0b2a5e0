// The security tests' attempts are small C programs in test/support/, run
// inside a container: built statically (the fixture images have no libc)
// into a fresh host directory the container bind-mounts read-only.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const SUPPORT = path.dirname(fileURLToPath(import.meta.url));

export interface StaticProgram {
  /** The directory holding it (mode 755: the container's mapped root must enter it). */
  dir: string;
  /** Its path on the host, `dir/NAME`. */
  binary: string;
  remove(): void;
}

/** Compile test/support/NAME.c with warnings as errors. */
export function buildStaticProgram(name: string): StaticProgram {
  const dir = mkdtempSync(path.join(tmpdir(), `minibox-${name}-`));
  chmodSync(dir, 0o755);
  const binary = path.join(dir, name);
  const source = path.join(SUPPORT, `${name}.c`);
  execFileSync("gcc", ["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, source]);
  return { dir, binary, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
