// Unpacks one layer blob with minibox's compiled unpacker, in a fresh node
// process: the process-to-process counterpart of `tar -xzf BLOB -C DIR` in
// bench/pull.ts (node's startup and module loading included).
//
//   node bench/unpack-one.mjs <dist dir> <blob> <empty dest dir>
import { createReadStream } from "node:fs";

const [distDir, blob, dest] = process.argv.slice(2);
if (!dest) {
  process.stderr.write("usage: node bench/unpack-one.mjs <dist dir> <blob> <dest dir>\n");
  process.exit(2);
}
const { unpackLayer } = await import(`${distDir}/image/layer.js`);
const result = await unpackLayer(createReadStream(blob), dest);
process.stdout.write(`${result.diffID}\n`);
