// Start-up: what minibox costs before it does any work, against `node -e 0`
// (node's own start and exit), side by side in one run. A part of
// bench/all.ts (`--only start`); not a script of its own.
//
// Each round is one `hyperfine -N --runs 1` invocation that runs every
// command once, the order rotated from round to round (bench/common.ts).
// `ps` runs on a root of its own that never holds a container: the cost of
// listing nothing, which is start-up plus store init.
import { mkdirSync } from "node:fs";
import path from "node:path";
import {
  BUNDLE,
  hyperfineRound,
  hyperfineRounds,
  LAUNCHER,
  ms,
  type Stats,
  type SummaryRow,
  timesTable,
} from "./common.js";

export type StartupTool = "node" | "version" | "ps" | "bundleVersion" | "bundlePs" | "floor";

const TOOLS: StartupTool[] = ["node", "version", "ps", "bundleVersion", "bundlePs", "floor"];

const LABELS: Record<StartupTool, string> = {
  node: "`node -e 0`",
  version: "**minibox** `./minibox --version`",
  ps: "**minibox** `./minibox --root EMPTY ps`",
  bundleVersion: "`node dist/minibox.mjs --version` (the bundle, without the launcher's sh)",
  bundlePs: "`node dist/minibox.mjs --root EMPTY ps`",
  floor: "`/bin/true` (the harness's own cost)",
};

/** Rounds of the start-up commands; `work` holds the empty root and hyperfine's files. */
export async function startupBench(o: {
  rounds: number;
  work: string;
  env: NodeJS.ProcessEnv;
}): Promise<Record<StartupTool, Stats>> {
  const root = path.join(o.work, "startup-root");
  const json = path.join(o.work, "startup-hyperfine");
  mkdirSync(json, { recursive: true });
  const argv = (t: StartupTool): string[] => {
    switch (t) {
      case "node":
        return ["node", "-e", "0"];
      case "version":
        return [LAUNCHER, "--version"];
      case "ps":
        return [LAUNCHER, "--root", root, "ps"];
      case "bundleVersion":
        return ["node", BUNDLE, "--version"];
      case "bundlePs":
        return ["node", BUNDLE, "--root", root, "ps"];
      case "floor":
        return ["/bin/true"];
    }
  };
  // The warm-up round also makes the empty root's store (ps's first call).
  return hyperfineRounds(
    TOOLS,
    o.rounds,
    (order, name) =>
      hyperfineRound(order, argv, {
        json: path.join(json, `${name}.json`),
        env: o.env,
        round: name,
      }),
    { check: () => {}, label: "start-up ", show: ["node", "version", "ps"] },
  );
}

export function startupReport(times: Record<StartupTool, Stats>, rounds: number): string[] {
  const node = times.node;
  const plus = (s: Stats) => `+${ms(s.median - node.median)} (min +${ms(s.min - node.min)})`;
  return [
    `### Start-up against \`node -e 0\`, wall time (ms, ${rounds} rounds)`,
    "",
    ...timesTable(TOOLS, (t) => LABELS[t], times),
    "",
    `Over \`node -e 0\` (medians, and mins): \`./minibox --version\` ${plus(times.version)} ms ` +
      `(target ≤ +15), \`./minibox ps\` ${plus(times.ps)} ms (target ≤ +25); ` +
      `the bundle without sh: \`--version\` ${plus(times.bundleVersion)}, \`ps\` ${plus(times.bundlePs)} ms.`,
    "",
  ];
}

export function startupSummary(times: Record<StartupTool, Stats>): SummaryRow[] {
  const row = (work: string, t: StartupTool, target: number): SummaryRow => ({
    work,
    minibox: times[t].median,
    anchorLabel: "`node -e 0`",
    anchor: times.node.median,
    kind: "difference",
    target,
    unit: "ms",
  });
  return [row("`minibox --version`", "version", 15), row("`minibox ps`, no containers", "ps", 25)];
}
