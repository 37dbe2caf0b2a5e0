/** Option helpers shared by the command files. */
import { MiniboxError } from "../errors.js";

/** commander's reducer for repeatable options (`-e A -e B` → ["A", "B"]). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const GO_BOOLS: Record<string, boolean> = {
  "1": true,
  t: true,
  T: true,
  true: true,
  TRUE: true,
  True: true,
  "0": false,
  f: false,
  F: false,
  false: false,
  FALSE: false,
  False: false,
};

/**
 * commander's parser for a Docker bool flag written `--flag=false` (Go's
 * strconv.ParseBool spellings): users carry `--pause=false` from Docker.
 */
export function boolFlag(flag: string): (value: string) => boolean {
  return (value) => {
    const b = GO_BOOLS[value];
    if (b === undefined)
      throw new MiniboxError(
        `invalid value "${value}" for ${flag}`,
        `use ${flag}=true or ${flag}=false`,
      );
    return b;
  };
}
