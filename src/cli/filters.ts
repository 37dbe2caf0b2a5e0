/** `--filter KEY=VALUE` as `ps` and `volume ls` take it, Docker's way. */
import { MiniboxError } from "../errors.js";

export interface Filter {
  key: string;
  value: string;
}

/** Parse one --filter; `keys` are the ones the command knows (anything else: one clear line). */
export function parseFilter(text: string, keys: string[]): Filter {
  const eq = text.indexOf("=");
  const key = eq < 0 ? text : text.slice(0, eq);
  if (!keys.includes(key)) {
    throw new MiniboxError(
      `invalid filter ${JSON.stringify(text)}`,
      `use ${keys.map((k) => `${k}=…`).join(", ")}`,
    );
  }
  return { key, value: eq < 0 ? "" : text.slice(eq + 1) };
}

/** label=KEY (present) or label=KEY=VALUE (equal). */
export function labelMatches(value: string, labels: Record<string, string>): boolean {
  const eq = value.indexOf("=");
  return eq < 0 ? value in labels : labels[value.slice(0, eq)] === value.slice(eq + 1);
}

/** Docker's rule: filters with the same key are alternatives, different keys must all hold. */
export function allKeysMatch(filters: Filter[], matchOne: (f: Filter) => boolean): boolean {
  const keys = new Set(filters.map((f) => f.key));
  return [...keys].every((k) => filters.some((f) => f.key === k && matchOne(f)));
}

/** The keys of filters that need a value (`--filter label` alone is not one). */
export function requireValues(filters: Filter[], keys: string[]): void {
  for (const f of filters)
    if (keys.includes(f.key) && f.value === "")
      throw new MiniboxError(`invalid filter '${f.key}'`, `use ${f.key}=VALUE`);
}
