/**
 * The uid/gid range a container's root maps to (user namespaces are on by
 * default: root in the container is an unprivileged uid on the host).
 *
 * Like Docker's userns-remap, all containers of one minibox root share one
 * range of 65536 ids. It comes from /etc/subuid and /etc/subgid when they
 * have a `minibox:START:COUNT` entry (the administrator's choice), else
 * minibox picks a free range once — above every range those files hand out —
 * and records it in <root>/userns.json so it never changes under existing
 * containers.
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { MiniboxError } from "../errors.js";
import { rootLayout } from "../layout.js";

export interface IdRange {
  hostID: number;
  size: number;
}

export interface UsernsState {
  uid: IdRange;
  gid: IdRange;
  /** Whether idmapped mounts worked on this kernel (probed once per kernel release). */
  idmappedMounts?: { kernel: string; supported: boolean };
}

const RANGE = 65536;
const FIRST_CANDIDATE = 1 << 20;

interface SubIdEntry {
  name: string;
  start: number;
  count: number;
}

export function parseSubIds(text: string): SubIdEntry[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [name = "", start = "", count = ""] = l.split(":");
      return { name, start: Number(start), count: Number(count) };
    })
    .filter((e) => Number.isSafeInteger(e.start) && Number.isSafeInteger(e.count) && e.count > 0);
}

/** The lowest free range of `size` ids at or above FIRST_CANDIDATE, clear of every listed range. */
export function pickFreeRange(taken: SubIdEntry[], size = RANGE): number {
  let start = FIRST_CANDIDATE;
  for (;;) {
    const clash = taken.find((e) => start < e.start + e.count && e.start < start + size);
    if (!clash) return start;
    start = Math.ceil((clash.start + clash.count) / size) * size;
  }
}

function readSubIds(path: string): SubIdEntry[] {
  try {
    return parseSubIds(readFileSync(path, "utf8"));
  } catch {
    return [];
  }
}

export async function loadUserns(root: string): Promise<UsernsState> {
  const file = rootLayout(root).userns;
  try {
    return JSON.parse(await readFile(file, "utf8")) as UsernsState;
  } catch {
    // first use of this root: decide below
  }
  const subuid = readSubIds("/etc/subuid");
  const subgid = readSubIds("/etc/subgid");
  const own = (entries: SubIdEntry[]) => entries.find((e) => e.name === "minibox");
  const uidEntry = own(subuid);
  const gidEntry = own(subgid);
  const state: UsernsState = {
    uid: uidEntry
      ? { hostID: uidEntry.start, size: uidEntry.count }
      : { hostID: pickFreeRange(subuid), size: RANGE },
    gid: gidEntry
      ? { hostID: gidEntry.start, size: gidEntry.count }
      : { hostID: pickFreeRange(subgid), size: RANGE },
  };
  if (state.uid.size < RANGE || state.gid.size < RANGE) {
    throw new MiniboxError(
      "the minibox entry in /etc/subuid or /etc/subgid has fewer than 65536 ids",
      "give it a range of 65536, or run with --userns=host",
    );
  }
  await saveUserns(root, state);
  return state;
}

export async function saveUserns(root: string, state: UsernsState): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const file = rootLayout(root).userns;
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, file);
}

export function kernelRelease(): string {
  return release();
}
