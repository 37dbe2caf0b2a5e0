/**
 * Pull and push progress, drawn like Docker's: one line per layer. On a terminal the
 * lines update in place with a bar, bytes and speed (cli-progress draws
 * them); otherwise each status change is printed once as a plain line, so
 * logs and pipes stay readable.
 */
import cliProgress from "cli-progress";
import type { PullReporter } from "../image/pull.js";
import { humanSize } from "./format.js";

/** Statuses that end a layer's row: pull's and push's. */
const DONE = /complete$|^Already exists$|^Pushed$|^Layer already exists$|^Mounted from /;

export function createReporter(
  quiet: boolean,
  out: NodeJS.WriteStream = process.stdout,
): PullReporter & { stop(): void } {
  if (quiet) return { status() {}, layer() {}, stop() {} };
  return process.stderr.isTTY ? ttyReporter() : plainReporter(out);
}

function plainReporter(out: NodeJS.WriteStream): PullReporter & { stop(): void } {
  const last = new Map<string, string>();
  return {
    status: (line) => out.write(`${line}\n`),
    layer(id, status) {
      if (last.get(id) === status) return;
      last.set(id, status);
      out.write(`${id}: ${status}\n`);
    },
    stop() {},
  };
}

function ttyReporter(): PullReporter & { stop(): void } {
  const bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: "{id}: {status} {bar} {progress}",
      barCompleteChar: "=",
      barIncompleteChar: " ",
      barsize: 40,
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
    },
    cliProgress.Presets.legacy,
  );
  const rows = new Map<string, { bar: cliProgress.SingleBar; started: number }>();
  return {
    status: (line) => bars.log(`${line}\n`),
    layer(id, status, current, total) {
      let row = rows.get(id);
      if (!row) {
        row = {
          bar: bars.create(total ?? 1, 0, { id, status, progress: "" }),
          started: Date.now(),
        };
        rows.set(id, row);
      }
      if (current !== undefined && total !== undefined) {
        const seconds = Math.max((Date.now() - row.started) / 1000, 0.001);
        const speed = `${humanSize(current / seconds)}/s`;
        row.bar.setTotal(total);
        row.bar.update(current, {
          status,
          progress: `${humanSize(current)}/${humanSize(total)} ${speed}`,
        });
      } else {
        row.bar.update(DONE.test(status) ? row.bar.getTotal() : 0, {
          status,
          progress: "",
        });
      }
    },
    stop: () => bars.stop(),
  };
}
