/**
 * The lazy command table (src/cli/command-table.ts) against the register
 * functions themselves: each entry names exactly the top-level commands its
 * module adds or extends, so `minibox X` loads every module that defines X.
 */
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { COMMAND_MODULES, modulesFor } from "../../src/cli/command-table.js";

/** Each top-level command with its number of subcommands: what a register call changes. */
function shape(program: Command): Map<string, number> {
  return new Map(program.commands.map((c) => [c.name(), c.commands.length]));
}

describe("command table", () => {
  it("names exactly the commands each module registers or extends", async () => {
    const program = new Command("minibox").enablePositionalOptions();
    for (const entry of COMMAND_MODULES) {
      const before = shape(program);
      (await entry.load())(program);
      const touched = [...shape(program)]
        .filter(([name, subs]) => before.get(name) !== subs)
        .map(([name]) => name);
      expect([...entry.names].sort(), entry.names.join(" ")).toEqual(touched.sort());
    }
  }, 30_000);

  it("loads the command word's modules, skipping global options and their values", () => {
    const names = (args: string[]) => modulesFor(args).map((m) => m.names[0]);
    expect(names(["ps", "-a"])).toEqual(["ps"]);
    expect(names(["--root", "/tmp/r", "--debug", "ps"])).toEqual(["ps"]);
    expect(names(["--root=/tmp/r", "pull", "alpine"])).toEqual(["pull"]);
    expect(names(["--insecure-registry", "run", "run", "x"])).toEqual(["run"]);
    expect(names(["container", "ls"])).toEqual(["ps", "container"]);
    expect(names(["system", "events"])).toEqual(["system", "events"]);
  });

  it("loads none for --version, every module for help and unknown words", () => {
    expect(modulesFor(["--version"])).toEqual([]);
    expect(modulesFor(["--root", "/r", "-V"])).toEqual([]);
    for (const args of [[], ["--help"], ["help", "ps"], ["pss"], ["--", "ps"]]) {
      expect(modulesFor(args)).toBe(COMMAND_MODULES);
    }
  });
});
