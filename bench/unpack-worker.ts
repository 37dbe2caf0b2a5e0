// The "in-process" side of the unpack benchmark: a long-lived process that
// times minibox's own unpackLayer (from src/, like the rest of bench/) on
// request, so the JIT is warm and node's startup is excluded.
//
// It runs in its own process, not in bench/pull.ts, because that process
// spawns the other tools, and an unpack that follows a fork in the same
// process runs about twice as slow: fork write-protects the parent's pages,
// so the unpack takes ~7,500 extra minor page faults (expensive in this VM)
// for the 20 MiB layer, ~200-250 ms instead of ~90-130 ms, warm. One fork long
// before leaves no lasting effect. A real `minibox pull` never forks, and
// neither does this process once it runs.
//
// Protocol (stdin/stdout, one JSON object per line):
//   request  {"blob": "/path/to/blob", "dest": "/empty/dir"}
//   response RESULT {"ms": wall, "cpuMs": user+sys of all threads, "diffID": "sha256:…"}
//            or RESULT {"error": "message"}
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { unpackLayer } from "../src/image/layer.js";

const lines = createInterface({ input: process.stdin });
process.stdout.write("RESULT ready\n");
for await (const line of lines) {
  if (line.trim() === "") continue;
  try {
    const { blob, dest } = JSON.parse(line) as { blob: string; dest: string };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { diffID } = await unpackLayer(createReadStream(blob), dest);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(
      `RESULT ${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, diffID })}\n`,
    );
  } catch (err) {
    process.stdout.write(`RESULT ${JSON.stringify({ error: String(err) })}\n`);
  }
}
