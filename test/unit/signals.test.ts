import { describe, expect, it } from "vitest";
import { forwardSignals } from "../../src/runtime/signals.js";

describe("forwardSignals", () => {
  it("passes signals on until disposed, then leaves no listener behind", () => {
    const before = ["SIGUSR2", "SIGINT"].map((s) => process.listenerCount(s));
    const got: string[] = [];
    const stop = forwardSignals({ signal: (sig) => got.push(sig) }, ["SIGUSR2"]);
    process.emit("SIGUSR2", "SIGUSR2");
    expect(got).toEqual(["SIGUSR2"]);
    stop();
    expect(["SIGUSR2", "SIGINT"].map((s) => process.listenerCount(s))).toEqual(before);
  });
});
