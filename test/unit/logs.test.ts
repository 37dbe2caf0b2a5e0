// The json-file log reader: line parsing, --tail, --since, -t, and reading
// across rotated files, on a log written here (no container needed).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { containerPaths } from "../../src/layout.js";
import type { ContainerView } from "../../src/runtime/lifecycle.js";
import {
  completeLines,
  formatLogEntry,
  keepLast,
  type LogEntry,
  logFiles,
  parseLogLine,
  parseSince,
  parseTail,
  readLogs,
} from "../../src/runtime/logs.js";

const entry = (log: string, time: string, stream: LogEntry["stream"] = "stdout"): LogEntry => ({
  log,
  stream,
  time,
});
const line = (e: LogEntry) => `${JSON.stringify(e)}\n`;

describe("parsing", () => {
  test("a json-file line is one entry; an empty line is none", () => {
    const e = entry("hi\n", "2024-01-01T00:00:00.000000001Z", "stderr");
    expect(parseLogLine(JSON.stringify(e))).toEqual(e);
    expect(parseLogLine("")).toBeUndefined();
  });

  test("a line that is not JSON is an error, not a silent skip", () => {
    expect(() => parseLogLine("{not json")).toThrow();
  });

  test("only complete lines are taken from a read that ends mid-line", () => {
    const a = line(entry("a\n", "t"));
    expect(completeLines(`${a}{"log":"b`)).toEqual({
      lines: [a.trimEnd()],
      bytes: Buffer.byteLength(a),
    });
    expect(completeLines('{"log":"partial')).toEqual({ lines: [], bytes: 0 });
  });

  test("bytes are counted in UTF-8, not characters", () => {
    const a = line(entry("é…\n", "t"));
    expect(completeLines(a).bytes).toBe(Buffer.byteLength(a));
    expect(completeLines(a).bytes).toBeGreaterThan(a.length);
  });
});

describe("--tail", () => {
  test("a count, or 'all'", () => {
    expect(parseTail("3")).toBe(3);
    expect(parseTail("0")).toBe(0);
    expect(parseTail("all")).toBe(Number.POSITIVE_INFINITY);
  });

  test("anything else is refused", () => {
    expect(() => parseTail("x")).toThrow(/invalid --tail value "x"/);
  });

  test("keepLast holds only the last N", () => {
    const kept: number[] = [];
    for (let i = 1; i <= 5; i++) keepLast(kept, i, 2);
    expect(kept).toEqual([4, 5]);
    const none: number[] = [];
    keepLast(none, 1, 0);
    expect(none).toEqual([]);
  });
});

describe("--since", () => {
  const now = Date.parse("2024-06-01T12:00:00Z");

  test("nothing given: every line", () => {
    expect(parseSince(undefined, now)).toBe(Number.NEGATIVE_INFINITY);
  });

  test("a Unix time in seconds, fractions allowed", () => {
    expect(parseSince("1700000000", now)).toBe(1_700_000_000_000);
    expect(parseSince("1.5", now)).toBe(1500);
  });

  test("a duration back from now, units combined", () => {
    expect(parseSince("10m", now)).toBe(now - 600_000);
    expect(parseSince("1h30m", now)).toBe(now - 5_400_000);
    expect(parseSince("250ms", now)).toBe(now - 250);
  });

  test("an RFC 3339 time", () => {
    expect(parseSince("2024-06-01T11:00:00Z", now)).toBe(Date.parse("2024-06-01T11:00:00Z"));
  });

  test("anything else is refused", () => {
    expect(() => parseSince("yesterday", now)).toThrow(/invalid --since value "yesterday"/);
  });
});

describe("printing an entry", () => {
  const e = entry("hello\n", "2024-06-01T12:00:00.5Z");

  test("-t puts the entry's time in front", () => {
    expect(formatLogEntry(e, Number.NEGATIVE_INFINITY, false)).toBe("hello\n");
    expect(formatLogEntry(e, Number.NEGATIVE_INFINITY, true)).toBe(
      "2024-06-01T12:00:00.5Z hello\n",
    );
  });

  test("an entry older than --since is not printed; one at that time is", () => {
    const t = Date.parse(e.time);
    expect(formatLogEntry(e, t + 1, false)).toBeUndefined();
    expect(formatLogEntry(e, t, false)).toBe("hello\n");
  });
});

describe("reading a container's log", () => {
  const root = mkdtempSync(join(tmpdir(), "minibox-logs-test-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const id = "c".repeat(64);
  const file = containerPaths(root, id).log;
  mkdirSync(containerPaths(root, id).dir, { recursive: true });
  const view = { id, logMaxFiles: 3, running: false } as ContainerView;
  // Oldest in .2, then .1, then the current file.
  writeFileSync(`${file}.2`, line(entry("one\n", "2024-01-01T00:00:01Z")));
  writeFileSync(
    `${file}.1`,
    line(entry("two\n", "2024-01-01T00:00:02Z", "stderr")) +
      line(entry("three\n", "2024-01-01T00:00:03Z")),
  );
  writeFileSync(file, `${line(entry("four\n", "2024-01-01T00:00:04Z"))}\n`);

  const read = async (opts: { tail: string; since?: string; timestamps?: boolean }) => {
    const out: string[] = [];
    await readLogs(root, view, opts, (stream, text) => out.push(`${stream}:${text}`));
    return out;
  };

  test("rotated files are read first, the highest number (the oldest) first", () => {
    expect(logFiles(file, 3)).toEqual([`${file}.2`, `${file}.1`, file]);
    expect(logFiles(file, 5)).toEqual([`${file}.2`, `${file}.1`, file]);
    expect(logFiles(file, undefined)).toEqual([file]);
  });

  test("every entry, in order, each on its own stream", async () => {
    expect(await read({ tail: "all" })).toEqual([
      "stdout:one\n",
      "stderr:two\n",
      "stdout:three\n",
      "stdout:four\n",
    ]);
  });

  test("--tail counts across the rotated files", async () => {
    expect(await read({ tail: "3" })).toEqual(["stderr:two\n", "stdout:three\n", "stdout:four\n"]);
    expect(await read({ tail: "0" })).toEqual([]);
  });

  test("--since and -t", async () => {
    expect(await read({ tail: "all", since: "2024-01-01T00:00:03Z", timestamps: true })).toEqual([
      "stdout:2024-01-01T00:00:03Z three\n",
      "stdout:2024-01-01T00:00:04Z four\n",
    ]);
  });

  test("a container with no log yet prints nothing, whatever the flags", async () => {
    const none = { id: "d".repeat(64), running: false } as ContainerView;
    const out: string[] = [];
    await readLogs(root, none, { tail: "bogus" }, (_s, text) => out.push(text));
    expect(out).toEqual([]);
  });
});
