/**
 * Finding minibox's own C programs (native/build/…): next to the checkout
 * the code runs from, whether as sources (src/sys/ → two levels up) or as
 * the bundle (dist/ or dist/chunks/ → one or two levels up), or installed
 * under /usr/local/libexec/minibox. An environment variable overrides.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MiniboxError } from "../errors.js";

export function nativeProgram(name: string, envVar: string, what: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env[envVar],
    join(here, "..", "native", "build", name),
    join(here, "..", "..", "native", "build", name),
    `/usr/local/libexec/minibox/${name}`,
  ];
  const found = candidates.find((p): p is string => Boolean(p && existsSync(p)));
  if (!found) {
    throw new MiniboxError(
      `the native ${what} is not built`,
      "run 'npm run build' (it needs a C compiler: apt-get install gcc)",
    );
  }
  return found;
}
