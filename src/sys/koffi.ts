/**
 * koffi, loaded straight from its prebuilt binary for this platform.
 *
 * Why: koffi's own index.js first loads node:crypto, node:https and
 * node:zlib (for its install-time downloader) and probes for the binary:
 * ~10 ms of the ~12 ms that `require("koffi")` costs, paid by every command
 * that takes a flock (ps, run, pull…). The binary is the module that
 * index.js wraps; the wrapper only adds two deprecated aliases (`handle`,
 * `callback`) and deprecation shims on libraries, which minibox does not
 * use. Where there is no such binary (musl, another triplet), koffi's
 * index.js finds the right one as before.
 */
import { createRequire } from "node:module";
import type Koffi from "koffi";

let loaded: typeof Koffi | undefined;

export function koffi(): typeof Koffi {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  try {
    loaded = require(`koffi/build/koffi/${process.platform}_${process.arch}/koffi.node`);
  } catch {
    loaded = require("koffi") as typeof Koffi;
  }
  return loaded as typeof Koffi;
}
