// Health check configuration: Go durations as Docker reads and prints them,
// run's --health-* flags, their merge over the image's HEALTHCHECK, and the
// `health` step the monitor is given (native/health.c runs it).
import { describe, expect, it } from "vitest";
import { containerPaths } from "../../src/layout.js";
import {
  effectiveTimings,
  healthActive,
  healthFromFlags,
  mergeHealthcheck,
  probeArgv,
} from "../../src/runtime/health/config.js";
import { formatGoDuration, parseGoDuration } from "../../src/runtime/health/duration.js";
import { healthLayout, healthSuffix } from "../../src/runtime/health/probe.js";

describe("Go durations", () => {
  it.each([
    ["30s", 30e9],
    ["1m30s", 90e9],
    ["500ms", 500e6],
    ["1.5h", 5400e9],
    ["2us", 2000],
    ["3µs", 3000],
    ["7ns", 7],
    ["0", 0],
    ["-1s", -1e9],
    [".5s", 500e6],
  ])("%s is %d ns", (text, ns) => {
    expect(parseGoDuration(text)).toBe(ns);
  });

  it.each(["", "10", "1x", "s", "1s ", "1 s", "--1s"])("%j is not a duration", (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });

  it.each([
    [30e9, "30s"],
    [90e9, "1m30s"],
    [3600e9, "1h0m0s"],
    [500e6, "500ms"],
    [1.5e9, "1.5s"],
    [0, "0s"],
  ])("%d ns prints as %s", (ns, text) => {
    expect(formatGoDuration(ns)).toBe(text);
  });
});

describe("--health-* flags", () => {
  it("none given: the image's applies", () => {
    expect(healthFromFlags({})).toBeUndefined();
  });

  it("--health-cmd runs through the shell; unset timings are left out (inherit), as Docker's JSON", () => {
    expect(healthFromFlags({ healthCmd: "curl -f localhost", healthInterval: "5s" })).toEqual({
      Test: ["CMD-SHELL", "curl -f localhost"],
      Interval: 5e9,
    });
    expect(healthFromFlags({ healthRetries: "0" })).toEqual({});
  });

  it("--no-healthcheck is Test NONE, and conflicts with any --health-* flag", () => {
    expect(healthFromFlags({ noHealthcheck: true })).toEqual({ Test: ["NONE"] });
    expect(() => healthFromFlags({ noHealthcheck: true, healthRetries: "2" })).toThrow(
      "--no-healthcheck conflicts with --health-* options",
    );
  });

  it("refuses bad values as Docker does", () => {
    expect(() => healthFromFlags({ healthTimeout: "soon" })).toThrow(
      'invalid argument "soon" for "--health-timeout" flag: time: invalid duration "soon"',
    );
    expect(() => healthFromFlags({ healthInterval: "-1s" })).toThrow(
      "--health-interval cannot be negative",
    );
    expect(() => healthFromFlags({ healthInterval: "10us" })).toThrow(
      "--health-interval cannot be less than 1ms",
    );
    expect(() => healthFromFlags({ healthRetries: "-2" })).toThrow(
      "--health-retries cannot be negative",
    );
    expect(() => healthFromFlags({ healthRetries: "two" })).toThrow("--health-retries");
  });
});

describe("merging with the image's HEALTHCHECK", () => {
  const image = { Test: ["CMD", "check"], Interval: 10e9, Retries: 5 };

  it("flags win field by field; what they leave at 0 comes from the image", () => {
    const flags = healthFromFlags({ healthTimeout: "2s" });
    expect(mergeHealthcheck(image, flags)).toEqual({
      Test: ["CMD", "check"],
      Interval: 10e9,
      Timeout: 2e9,
      Retries: 5,
    });
  });

  it("--no-healthcheck turns the image's off (its timings stay, as Docker merges them)", () => {
    const merged = mergeHealthcheck(image, healthFromFlags({ noHealthcheck: true }));
    expect(merged).toEqual({ Test: ["NONE"], Interval: 10e9, Retries: 5 });
    expect(healthActive(merged)).toBe(false);
  });

  it("no flags: the image's as it is", () => {
    expect(mergeHealthcheck(image, undefined)).toBe(image);
  });
});

describe("the probe and the monitor's step", () => {
  it("CMD runs its argv, CMD-SHELL through /bin/sh -c", () => {
    expect(probeArgv({ Test: ["CMD", "check", "--fast"] })).toEqual(["check", "--fast"]);
    expect(probeArgv({ Test: ["CMD-SHELL", "test -e /ready"] })).toEqual([
      "/bin/sh",
      "-c",
      "test -e /ready",
    ]);
    expect(probeArgv({ Test: ["CMD-SHELL", "check"] }, ["/bin/ash", "-ec"])).toEqual([
      "/bin/ash",
      "-ec",
      "check",
    ]);
  });

  it("Docker's defaults fill what is 0: interval 30s, timeout 30s, start interval 5s, retries 3", () => {
    expect(effectiveTimings({ Test: ["CMD", "x"] })).toEqual({
      interval: 30e9,
      timeout: 30e9,
      startPeriod: 0,
      startInterval: 5e9,
      retries: 3,
    });
  });

  it("the health step: the files, times in ms, the timeout as Docker words it", () => {
    const paths = containerPaths("/var/lib/minibox", "c0ffee");
    const actor = { ID: "c0ffee", Attributes: { name: "db", image: "busybox" } };
    const events = { file: "/var/lib/minibox/events.jsonl", actor };
    expect(
      healthLayout(paths, { Test: ["CMD", "x"], Timeout: 90e9, StartPeriod: 2e9 }, events),
    ).toEqual({
      planFile: "/var/lib/minibox/containers/c0ffee/health-plan.txt",
      stateFile: "/var/lib/minibox/containers/c0ffee/health.json",
      intervalMs: 30000,
      timeoutMs: 90000,
      startPeriodMs: 2000,
      startIntervalMs: 5000,
      retries: 3,
      timeoutText: "1m30s",
      eventsFile: "/var/lib/minibox/events.jsonl",
      actor: JSON.stringify(actor),
    });
    expect(healthLayout(paths, { Test: ["NONE"] }, events)).toBeUndefined();
    expect(healthLayout(paths, undefined, events)).toBeUndefined();
  });

  it("ps's suffix", () => {
    expect(healthSuffix(undefined)).toBe("");
    expect(healthSuffix({ Status: "starting", FailingStreak: 0, Log: [] })).toBe(
      " (health: starting)",
    );
    expect(healthSuffix({ Status: "healthy", FailingStreak: 0, Log: [] })).toBe(" (healthy)");
    expect(healthSuffix({ Status: "unhealthy", FailingStreak: 3, Log: [] })).toBe(" (unhealthy)");
  });
});
