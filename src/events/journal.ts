/**
 * The event journal, `<root>/events.jsonl`: what `minibox events` reads.
 *
 * minibox has no daemon to hold events in memory (Docker keeps the last 1000
 * there), so each command appends the events it causes to a file, as
 * podman's "file" events backend does: one JSON object a line, written with
 * O_APPEND in a single write(2), so lines from concurrent commands never
 * interleave (the kernel moves to the end and writes as one step).
 *
 * Bounded by rotation: when the file passes ROTATE_AT bytes it is renamed to
 * events.jsonl.1 (replacing the generation before), so the journal holds
 * between 1 and 2 MiB of history — some thousands of events, more than
 * Docker's 1000. A writer that still has the old file open finishes its line
 * there, where readers look too.
 *
 * Recording never fails the command: the container already started, the
 * image is already tagged; a journal that cannot be written loses an event,
 * not the operation.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { open, rename, stat } from "node:fs/promises";
import { jsonText } from "../json-text.js";
import { rootLayout } from "../layout.js";
import { withLock } from "../sys/lock.js";

/** Docker's event types minibox emits. */
export type EventType = "container" | "image" | "volume" | "network";

export interface EventActor {
  ID: string;
  Attributes: Record<string, string>;
}

/** One event, as Docker's events.Message without the deprecated fields (see src/cli/events-view.ts). */
export interface MiniboxEvent {
  Type: EventType;
  Action: string;
  Actor: EventActor;
  scope: "local";
  /** Seconds since 1970. */
  time: number;
  /** Nanoseconds since 1970 (past 2^53, hence a BigInt). */
  timeNano: bigint;
}

/** Past this size the journal rotates (see above). */
export const ROTATE_AT = 1024 * 1024;

/** Now, in nanoseconds (the clock has microseconds; the rest are zeros). */
export function nowNano(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/**
 * Append one event to `root`'s journal. Exported for every part of minibox
 * that causes events (the health checks' health_status too).
 */
export async function recordEvent(
  root: string,
  type: EventType,
  action: string,
  actor: EventActor,
  timeNano = nowNano(),
): Promise<void> {
  const event: MiniboxEvent = {
    Type: type,
    Action: action,
    Actor: actor,
    scope: "local",
    time: Number(timeNano / 1_000_000_000n),
    timeNano,
  };
  try {
    await appendLine(root, `${jsonText(event)}\n`);
  } catch {
    // See the header: an event lost, never the command's result.
  }
}

async function appendLine(root: string, line: string): Promise<void> {
  const layout = rootLayout(root);
  // No mkdir: a monitor's exit hook that runs after its store was deleted
  // must not bring the store's directory back (ENOENT: the event is dropped).
  const file = await open(layout.events, "a", 0o600);
  let size: number;
  try {
    // One write(2) of the whole line: with O_APPEND, never interleaved with another's.
    await file.write(line);
    size = (await file.stat()).size;
  } finally {
    await file.close();
  }
  if (size >= ROTATE_AT) await rotate(root);
}

/** Rename the full journal aside; under a lock, so two writers that both saw it full rotate it once. */
async function rotate(root: string): Promise<void> {
  const layout = rootLayout(root);
  await withLock(layout.lock("events"), async () => {
    const now = await stat(layout.events).catch(() => undefined);
    if (!now || now.size < ROTATE_AT) return; // rotated by the other writer already
    await rename(layout.events, layout.eventsRotated);
  });
}

/** One journal line, or undefined for a line that is not an event (torn by a crash mid-write). */
export function parseEventLine(line: string): MiniboxEvent | undefined {
  try {
    const raw = JSON.parse(line) as MiniboxEvent;
    // JSON.parse would round timeNano to a double: read its digits from the text.
    const nano = /"timeNano":(\d+)/.exec(line)?.[1];
    if (!raw.Type || !raw.Action || !raw.Actor || nano === undefined) return undefined;
    return { ...raw, timeNano: BigInt(nano) };
  } catch {
    return undefined;
  }
}

/**
 * Reads the journal in order, then what is appended to it later: the first
 * read() returns everything (the rotated generation first), each later one
 * what was appended since, across a rotation (the rest of the old file, now
 * events.jsonl.1, then the new one). Only whole lines are consumed, so a line
 * being written is read once it is complete.
 */
export class JournalReader {
  private started = false;
  /** The inode of the file being read (0: none yet) and how far it was read. */
  private ino = 0;
  private offset = 0;

  constructor(private readonly root: string) {}

  read(): MiniboxEvent[] {
    const { events, eventsRotated } = rootLayout(this.root);
    const lines: string[] = [];
    const current = inodeOf(events);
    if (!this.started) {
      this.started = true;
      lines.push(...wholeLinesFrom(eventsRotated, 0).lines);
    } else if (current !== this.ino) {
      if (this.ino !== 0 && inodeOf(eventsRotated) === this.ino)
        lines.push(...wholeLinesFrom(eventsRotated, this.offset).lines);
      this.offset = 0;
    }
    this.ino = current;
    if (current !== 0) {
      const { lines: fresh, consumed } = wholeLinesFrom(events, this.offset);
      lines.push(...fresh);
      this.offset += consumed;
    }
    return lines.map(parseEventLine).filter((e): e is MiniboxEvent => e !== undefined);
  }
}

function inodeOf(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return 0;
  }
}

/** The complete lines of `path` from byte `offset`, and how many bytes they took. */
function wholeLinesFrom(path: string, offset: number): { lines: string[]; consumed: number } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return { lines: [], consumed: 0 };
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= offset) return { lines: [], consumed: 0 };
    const buffer = Buffer.alloc(size - offset);
    const got = readSync(fd, buffer, 0, buffer.length, offset);
    const end = buffer.subarray(0, got).lastIndexOf(0x0a) + 1;
    const text = buffer.subarray(0, end).toString("utf8");
    return { lines: text.split("\n").filter((l) => l !== ""), consumed: end };
  } finally {
    closeSync(fd);
  }
}
