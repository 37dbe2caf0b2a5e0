/**
 * A small subset of Go's text/template, enough for the `--format` strings
 * people copy from Docker docs: `{{.Id}}`, `{{.Config.Env}}`,
 * `{{json .Config}}`, `{{index .Config.Labels "key"}}`, `{{.State.Pid}}`.
 * Anything else is refused with a clear error instead of guessed at.
 */
import { MiniboxError } from "../errors.js";

export function renderTemplate(template: string, data: unknown): string {
  return template.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_, action: string) =>
    evaluate(action, data),
  );
}

function evaluate(action: string, data: unknown): string {
  const words = action.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const [head, ...args] = words;
  if (head === "json" && args.length === 1) return JSON.stringify(lookup(args[0] as string, data));
  if (head === "index" && args.length >= 2) {
    let value = lookup(args[0] as string, data);
    for (const key of args.slice(1))
      value = (value as Record<string, unknown> | undefined)?.[JSON.parse(key)];
    return goString(value);
  }
  if ((head === "upper" || head === "lower") && args.length === 1) {
    const s = goString(lookup(args[0] as string, data));
    return head === "upper" ? s.toUpperCase() : s.toLowerCase();
  }
  if (head?.startsWith(".") && args.length === 0) return goString(lookup(head, data));
  throw new MiniboxError(
    `unsupported --format action {{${action}}}`,
    'use {{.Field}}, {{json .Field}} or {{index .Map "key"}}',
  );
}

function lookup(path: string, data: unknown): unknown {
  if (!path.startsWith(".")) throw new MiniboxError(`unsupported --format value ${path}`);
  if (path === ".") return data;
  let value = data;
  for (const key of path.slice(1).split(".")) {
    if (value === null || typeof value !== "object" || !(key in value)) {
      throw new MiniboxError(
        `template: can't evaluate field ${key}`,
        "check the field name (they are case-sensitive)",
      );
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** How Go prints values with {{.X}}: maps as map[k:v], slices as [a b], nil as <nil>. */
function goString(value: unknown): string {
  if (value === null || value === undefined) return "<nil>";
  if (Array.isArray(value)) return `[${value.map(goString).join(" ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a.localeCompare(b),
    );
    return `map[${entries.map(([k, v]) => `${k}:${goString(v)}`).join(" ")}]`;
  }
  return String(value);
}
