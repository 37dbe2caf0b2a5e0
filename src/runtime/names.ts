/**
 * Container names. Docker's rule: names are unique; without --name one is
 * made up ("adjective_scientist").
 *
 * A name is claimed by creating <root>/names/<name> with O_EXCL: the kernel
 * lets exactly one of two racing commands create it, so no lock is needed.
 * The file holds the container's ID; removing the container frees it.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { MiniboxError } from "../errors.js";
import { rootLayout } from "../layout.js";
import { containerPaths } from "./rootfs.js";

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Claim `wanted` (or a made-up name) for container `id`; reserves its directory too. */
export async function claimName(
  root: string,
  wanted: string | undefined,
  id: string,
): Promise<string> {
  if (wanted !== undefined && !NAME_RE.test(wanted)) {
    throw new MiniboxError(
      `invalid container name "${wanted}"`,
      "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
  }
  await mkdir(rootLayout(root).names, { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    const name = wanted ?? generatedName(attempt > 10);
    if (await tryClaim(root, name, id)) {
      await reserve(root, id, name);
      return name;
    }
    if (wanted !== undefined) {
      const other = (await readFile(namePath(root, name), "utf8").catch(() => "")).trim();
      throw new MiniboxError(
        `the container name "/${wanted}" is already in use by container "${other}"`,
        "remove or rename that container, or choose another name",
      );
    }
  }
}

export function namePath(root: string, name: string): string {
  return rootLayout(root).name(name);
}

async function tryClaim(root: string, name: string, id: string): Promise<boolean> {
  try {
    await writeFile(namePath(root, name), `${id}\n`, { flag: "wx" });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    // A name left by a container that no longer exists is free again.
    const owner = (await readFile(namePath(root, name), "utf8").catch(() => "")).trim();
    if (owner && !existsSync(containerPaths(root, owner).dir)) {
      await rm(namePath(root, name), { force: true });
      return tryClaim(root, name, id);
    }
    return false;
  }
}

async function reserve(root: string, id: string, name: string): Promise<void> {
  const paths = containerPaths(root, id);
  await mkdir(paths.dir, { recursive: true, mode: 0o711 });
  await writeFile(
    paths.state,
    JSON.stringify({ id, name, status: "created", miniboxPid: process.pid }),
  );
}

const ADJECTIVES = [
  "brave",
  "calm",
  "eager",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "merry",
  "quirky",
  "sharp",
  "witty",
];
const NAMES = [
  "curie",
  "darwin",
  "hopper",
  "lovelace",
  "noether",
  "ritchie",
  "thompson",
  "torvalds",
  "turing",
  "wozniak",
];

function generatedName(withNumber: boolean): string {
  const pick = <T>(a: T[]) => a[Math.floor(Math.random() * a.length)] as T;
  return `${pick(ADJECTIVES)}_${pick(NAMES)}${withNumber ? Math.floor(Math.random() * 10) : ""}`;
}

/** Claim a specific name for an existing container (`rename`); fails if taken. */
export async function claimNameOnly(root: string, name: string, id: string): Promise<void> {
  if (!NAME_RE.test(name)) {
    throw new MiniboxError(
      `invalid container name "${name}"`,
      "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
  }
  await mkdir(rootLayout(root).names, { recursive: true, mode: 0o700 });
  if (!(await tryClaim(root, name, id))) {
    const other = (await readFile(namePath(root, name), "utf8").catch(() => "")).trim();
    throw new MiniboxError(
      `the container name "/${name}" is already in use by container "${other}"`,
      "choose another name",
    );
  }
}
