/**
 * The verbs of `minibox-runc` that need no container: spec and features. Each parses nothing itself (commander did) and prints what
 * runc prints, so callers written for runc read it unchanged.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../errors.js";
import { starterSpec } from "../runtime/oci/default-spec.js";
import { runtimeFeatures } from "../runtime/oci/features.js";

export interface GlobalOptions {
  root: string;
  log?: string;
  logFormat: string;
  debug?: boolean;
  systemdCgroup?: boolean;
  rootless: string;
}

/** `spec`: write the starter config.json into the bundle, never over an existing one. */
export function specVerb(opts: { bundle?: string; rootless?: boolean }): void {
  const file = path.join(opts.bundle ?? ".", "config.json");
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  const spec = starterSpec(opts.rootless ? { rootless: { uid, gid } } : {});
  try {
    // O_EXCL: the check and the write are one step, so a file that appears
    // meanwhile is not overwritten either.
    writeFileSync(file, JSON.stringify(spec, null, "\t"), { flag: "wx", mode: 0o666 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new MiniboxError("File config.json exists. Remove it first");
    if (code === "ENOENT") throw new MiniboxError(`bundle directory ${opts.bundle} does not exist`);
    throw err;
  }
}

export function featuresVerb(): void {
  process.stdout.write(`${JSON.stringify(runtimeFeatures(), null, 4)}\n`);
}
