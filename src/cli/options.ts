/** Option helpers shared by the command files. */

/** commander's reducer for repeatable options (`-e A -e B` → ["A", "B"]). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
