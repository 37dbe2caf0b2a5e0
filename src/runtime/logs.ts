/**
 * Reading a container's json-file log, as `docker logs` does: one JSON object
 * per line ({"log", "stream", "time"}), in `<id>-json.log` and, with
 * `--log-opt max-file=N`, the rotated `<id>-json.log.1` … `.N-1` (the higher
 * the number, the older). The monitor writes them (native/monitor.c); this
 * module only reads.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { MiniboxError } from "../errors.js";
import { containerPaths } from "../layout.js";
import { type ContainerView, findContainer } from "./lifecycle.js";

export interface LogEntry {
  log: string;
  stream: "stdout" | "stderr";
  time: string;
}

/** `logs`' flags, as typed: the reader owns their meaning (and their errors). */
export interface LogOptions {
  follow?: boolean;
  /** A number of entries, or "all". */
  tail: string;
  timestamps?: boolean;
  /** RFC 3339, a Unix time, or a duration back from now ("10m"). */
  since?: string;
}

/** Where an entry goes, already formatted (with its time in front for -t). */
export type LogWriter = (stream: LogEntry["stream"], text: string) => void;

/** The follow loop's polling interval: short enough to feel live, long enough to cost nothing. */
const FOLLOW_POLL_MS = 100;

/** One line of a json-file log; empty lines (none are written, but be lenient) are skipped. */
export function parseLogLine(line: string): LogEntry | undefined {
  return line ? (JSON.parse(line) as LogEntry) : undefined;
}

/** --since: an RFC 3339 time, a Unix time, or a duration back from now ("10m", "1h30m"), in ms. */
export function parseSince(text: string | undefined, now = Date.now()): number {
  if (!text) return Number.NEGATIVE_INFINITY;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length && parts.map((p) => p[0]).join("") === text) {
    return now - parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] as string] ?? 0), 0);
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new MiniboxError(`invalid --since value ${JSON.stringify(text)}`);
  return t;
}

/** --tail: a count, or "all" (every entry). */
export function parseTail(text: string): number {
  const tail = text === "all" ? Number.POSITIVE_INFINITY : Number(text);
  if (Number.isNaN(tail)) throw new MiniboxError(`invalid --tail value ${JSON.stringify(text)}`);
  return tail;
}

/** Append `entry`, keeping only the last `tail`: a long log is never held whole in memory. */
export function keepLast<T>(entries: T[], entry: T, tail: number): void {
  entries.push(entry);
  if (entries.length > tail) entries.shift();
}

/** What `logs` prints for an entry, or nothing when it is older than --since. */
export function formatLogEntry(
  entry: LogEntry,
  since: number,
  timestamps: boolean,
): string | undefined {
  if (Date.parse(entry.time) < since) return undefined;
  return timestamps ? `${entry.time} ${entry.log}` : entry.log;
}

/**
 * The complete lines at the start of `text` (a read may end mid-line while
 * the monitor is writing) and their length in bytes, to know where to read next.
 */
export function completeLines(text: string): { lines: string[]; bytes: number } {
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  return { lines: complete.split("\n").filter(Boolean), bytes: Buffer.byteLength(complete) };
}

/** The log files to read, oldest first: rotated ones (`<log>.N` is the oldest) that exist, then the current one. */
export function logFiles(file: string, maxFiles: number | undefined): string[] {
  const rotated = Array.from({ length: (maxFiles ?? 1) - 1 }, (_, i) => `${file}.${i + 1}`)
    .filter((f) => existsSync(f))
    .reverse();
  return [...rotated, file];
}

/**
 * `logs`: write the log's last entries, then with `follow` what is appended
 * until the container's exit is recorded. A container that has written
 * nothing yet has no log: nothing is written, and the flags are not checked.
 */
export async function readLogs(
  root: string,
  c: ContainerView,
  opts: LogOptions,
  write: LogWriter,
): Promise<void> {
  const file = containerPaths(root, c.id).log;
  if (!existsSync(file)) return;
  const since = parseSince(opts.since);
  const tail = parseTail(opts.tail);
  const emit = (e: LogEntry) => {
    const text = formatLogEntry(e, since, Boolean(opts.timestamps));
    if (text !== undefined) write(e.stream, text);
  };
  const { entries, offset } = await readTail(logFiles(file, c.logMaxFiles), tail);
  for (const e of tail === 0 ? [] : entries) emit(e);
  if (opts.follow) await follow(root, c.id, file, offset, emit);
}

/** The last `tail` entries of `files` read in order, and how many bytes of the last one were read. */
async function readTail(
  files: string[],
  tail: number,
): Promise<{ entries: LogEntry[]; offset: number }> {
  let offset = 0;
  const entries: LogEntry[] = [];
  for (const f of files) {
    offset = 0;
    const lines = createInterface({
      input: createReadStream(f),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      offset += Buffer.byteLength(line) + 1;
      const entry = parseLogLine(line);
      if (entry) keepLast(entries, entry, tail);
    }
  }
  return { entries, offset };
}

/** Emit what is appended to `file` from `offset` on, until the container is no longer running and all is read. */
async function follow(
  root: string,
  id: string,
  file: string,
  offset: number,
  emit: (e: LogEntry) => void,
): Promise<void> {
  let at = offset;
  for (;;) {
    const size = statSync(file).size;
    if (size < at) at = 0; // rotated meanwhile: the current file starts again
    if (size > at) {
      const { lines, bytes } = completeLines(await readRange(file, at, size));
      at += bytes;
      for (const line of lines) emit(JSON.parse(line) as LogEntry);
    }
    const now = await findContainer(root, id).catch(() => undefined);
    if (!now?.running && statSync(file, { throwIfNoEntry: false })?.size === at) return;
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
  }
}

async function readRange(file: string, start: number, end: number): Promise<string> {
  let text = "";
  for await (const chunk of createReadStream(file, { start, end: end - 1, encoding: "utf8" })) {
    text += chunk;
  }
  return text;
}
