/**
 * The event journal and `events`' pieces: time values as Docker reads them,
 * the line and JSON shapes of Docker's documentation, filters, and a reader
 * that follows the journal across a rotation.
 */
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseEventFilters } from "../../src/cli/events-filter.js";
import { EventView, eventLine } from "../../src/cli/events-view.js";
import { renderTemplate } from "../../src/cli/template.js";
import {
  JournalReader,
  type MiniboxEvent,
  parseEventLine,
  ROTATE_AT,
  recordEvent,
} from "../../src/events/journal.js";
import { parseEventTime, parseGoDuration } from "../../src/events/time.js";
import { jsonText } from "../../src/json-text.js";
import { rootLayout } from "../../src/layout.js";

const NOW = 1_704_164_645_000_000_000n; // 2024-01-02T03:04:05Z

const start: MiniboxEvent = {
  Type: "container",
  Action: "start",
  Actor: { ID: "7805c1d35632", Attributes: { name: "test", image: "alpine:latest", tier: "web" } },
  scope: "local",
  time: 1_704_164_645,
  timeNano: 1_704_164_645_123_456_789n,
};

describe("--since and --until values", () => {
  it("reads Go durations back from now, and Docker's '0' as the epoch", () => {
    expect(parseGoDuration("10m")).toBe(600_000_000_000n);
    expect(parseGoDuration("1h30m")).toBe(5_400_000_000_000n);
    expect(parseGoDuration("1.5s")).toBe(1_500_000_000n);
    expect(parseEventTime("--since", "10m", NOW)).toBe(NOW - 600_000_000_000n);
    expect(parseEventTime("--since", "0", NOW)).toBe(0n);
  });

  it("reads Unix timestamps with their nanoseconds, and RFC 3339 times with zones", () => {
    expect(parseEventTime("--since", "1704164645", NOW)).toBe(NOW);
    expect(parseEventTime("--since", "1704164645.5", NOW)).toBe(NOW + 500_000_000n);
    expect(parseEventTime("--since", "2024-01-02T03:04:05Z", NOW)).toBe(NOW);
    expect(parseEventTime("--since", "2024-01-02T04:04:05.000000001+01:00", NOW)).toBe(NOW + 1n);
  });

  it("refuses anything else with one line naming the flag", () => {
    expect(() => parseEventTime("--until", "yesterday", NOW)).toThrow(
      'invalid value for --until: "yesterday" is not a time or duration',
    );
    expect(() => parseEventTime("--since", "2024-13-01", NOW)).toThrow(/--since/);
  });
});

describe("output shapes", () => {
  it("prints Docker's line: time with nanoseconds, type, action, ID, attributes sorted", () => {
    process.env.TZ = "UTC";
    expect(eventLine(start)).toBe(
      "2024-01-02T03:04:05.123456789Z container start 7805c1d35632 (image=alpine:latest, name=test, tier=web)",
    );
  });

  it("{{json .}} has Docker's fields, the deprecated ones for containers, timeNano exact", () => {
    const json = renderTemplate("{{json .}}", new EventView(start));
    expect(json).toBe(
      '{"status":"start","id":"7805c1d35632","from":"alpine:latest","Type":"container","Action":"start",' +
        '"Actor":{"ID":"7805c1d35632","Attributes":{"name":"test","image":"alpine:latest","tier":"web"}},' +
        '"scope":"local","time":1704164645,"timeNano":1704164645123456789}',
    );
    const volume = jsonText(new EventView({ ...start, Type: "volume", Action: "create" }));
    expect(volume).not.toMatch(/"status"|"id"|"from"/);
  });

  it("jsonText writes BigInts exactly and leaves strings that look like its marker alone", () => {
    expect(jsonText({ s: "\u0000bigint:0", n: 12345678901234567890n })).toBe(
      '{"s":"\\u0000bigint:0","n":12345678901234567890}',
    );
  });

  it("templates see Go's field names", () => {
    expect(
      renderTemplate(
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Scope}} {{.Time}}",
        new EventView(start),
      ),
    ).toBe("container start test local 1704164645");
  });
});

describe("filters", () => {
  const pull: MiniboxEvent = {
    ...start,
    Type: "image",
    Action: "pull",
    Actor: { ID: "alpine:latest", Attributes: { name: "alpine" } },
  };
  const both = [start, pull];
  const keep = (...f: string[]) => both.filter(parseEventFilters(f)).map((e) => e.Action);

  it("match as Docker's: same key alternatives, different keys all", () => {
    expect(keep("type=image")).toEqual(["pull"]);
    expect(keep("event=start", "event=pull")).toEqual(["start", "pull"]);
    expect(keep("container=test")).toEqual(["start"]);
    expect(keep("container=7805")).toEqual(["start"]);
    expect(keep("image=alpine")).toEqual(["start", "pull"]);
    expect(keep("image=alpine:latest", "type=container")).toEqual(["start"]);
    expect(keep("label=tier=web")).toEqual(["start"]);
    expect(keep("label=tier=db")).toEqual([]);
  });

  it("refuses an unknown key", () => {
    expect(() => parseEventFilters(["colour=red"])).toThrow(/invalid filter "colour=red"/);
  });
});

describe("the journal", () => {
  let root: string;
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("keeps BigInt nanoseconds exact and skips a torn line", async () => {
    root = mkdtempSync(join(tmpdir(), "events-unit-"));
    await recordEvent(
      root,
      "volume",
      "create",
      { ID: "v", Attributes: {} },
      1_704_164_645_123_456_789n,
    );
    appendFileSync(rootLayout(root).events, '{"Type":"volume","Act');
    const events = new JournalReader(root).read();
    expect(events).toHaveLength(1);
    expect(events[0]?.timeNano).toBe(1_704_164_645_123_456_789n);
    expect(events[0]?.time).toBe(1_704_164_645);
    expect(parseEventLine("not json")).toBeUndefined();
  });

  it("a reader follows across a rotation: the rest of the old file, then the new one", async () => {
    root = mkdtempSync(join(tmpdir(), "events-unit-"));
    const layout = rootLayout(root);
    const actor = (id: string) => ({ ID: id, Attributes: {} });
    await recordEvent(root, "volume", "create", actor("a"));
    const reader = new JournalReader(root);
    expect(reader.read().map((e) => e.Actor.ID)).toEqual(["a"]);
    await recordEvent(root, "volume", "create", actor("b"));
    renameSync(layout.events, layout.eventsRotated); // what rotate() does
    await recordEvent(root, "volume", "create", actor("c"));
    expect(reader.read().map((e) => e.Actor.ID)).toEqual(["b", "c"]);
    expect(reader.read()).toEqual([]);
    // A fresh reader sees the rotated generation first.
    expect(new JournalReader(root).read().map((e) => e.Actor.ID)).toEqual(["a", "b", "c"]);
  });

  it("rotates once it passes its bound, so it never grows past two generations", async () => {
    root = mkdtempSync(join(tmpdir(), "events-unit-"));
    const layout = rootLayout(root);
    writeFileSync(layout.events, `${"x".repeat(ROTATE_AT)}\n`);
    await recordEvent(root, "volume", "create", { ID: "last", Attributes: {} });
    await recordEvent(root, "volume", "create", { ID: "next", Attributes: {} });
    expect(new JournalReader(root).read().map((e) => e.Actor.ID)).toEqual(["last", "next"]);
  });
});
