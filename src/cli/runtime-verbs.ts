/**
 * The verbs of `minibox-runc` that need no running container: spec, features,
 * list and state. Each parses nothing itself (commander did) and prints what
 * runc prints, so callers written for runc read it unchanged.
 */
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { MiniboxError } from "../errors.js";
import { checkContainerId } from "../runtime/oci/container-id.js";
import {
  formatListJson,
  formatListTable,
  type ListedContainer,
} from "../runtime/oci/container-list.js";
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

/**
 * The containers under --root. minibox-runc cannot create one yet (create is
 * still to come), so there is nothing to read; the printers are ready for it.
 */
function containersUnder(_root: string): ListedContainer[] {
  return [];
}

export function listVerb(globals: GlobalOptions, opts: { format: string; quiet?: boolean }): void {
  const containers = containersUnder(globals.root);
  if (opts.quiet) {
    for (const c of containers) process.stdout.write(`${c.id}\n`);
    return;
  }
  if (opts.format === "table") process.stdout.write(formatListTable(containers));
  else if (opts.format === "json") process.stdout.write(formatListJson(containers));
  else throw new MiniboxError("invalid format option");
}

export function stateVerb(globals: GlobalOptions, id: string): void {
  checkContainerId(id);
  if (!existsSync(path.join(globals.root, id))) throw new MiniboxError("container does not exist");
  // A directory no minibox-runc wrote (create does not exist yet): say so
  // rather than print a state that is made up.
  throw new MiniboxError(`${id}: state of a minibox-runc container is not implemented yet`);
}
