/**
 * Compose's variable interpolation in string values: $VAR, ${VAR},
 * ${VAR:-default} (unset or empty), ${VAR-default} (unset), ${VAR:?err}
 * (unset or empty is an error), ${VAR?err}, ${VAR:+alt}, ${VAR+alt}, and
 * $$ for a literal $. Defaults may themselves hold variables, as in Compose.
 */
import { MiniboxError } from "../errors.js";

export type Variables = Record<string, string | undefined>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function interpolate(text: string, vars: Variables, where: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
    } else if (next === "{") {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw new MiniboxError(`${where}: invalid interpolation format for "${text}"`);
      out += expand(text.slice(i + 2, end), vars, where, text);
      i = end + 1;
    } else {
      const m = NAME.exec(text.slice(i + 1));
      if (!m) {
        // A lone $ (e.g. "cost: 5$") stays, as Compose leaves it.
        out += "$";
        i++;
        continue;
      }
      out += vars[m[0]] ?? "";
      i += 1 + m[0].length;
    }
  }
  return out;
}

/** The index of the } that closes a ${ opened before `from` (nested ${…} in defaults count). */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === "$" && text[i + 1] === "{") {
      depth++;
      i++;
    } else if (text[i] === "}" && --depth === 0) return i;
  }
  return -1;
}

function expand(body: string, vars: Variables, where: string, whole: string): string {
  const m = NAME.exec(body);
  if (!m) throw new MiniboxError(`${where}: invalid interpolation format for "${whole}"`);
  const name = m[0];
  const rest = body.slice(name.length);
  const value = vars[name];
  if (rest === "") return value ?? "";
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) throw new MiniboxError(`${where}: invalid interpolation format for "${whole}"`);
  const arg = () => interpolate(rest.slice(op.length), vars, where);
  const missing = op.startsWith(":") ? value === undefined || value === "" : value === undefined;
  switch (op.replace(":", "")) {
    case "-":
      return missing ? arg() : (value as string);
    case "+":
      return missing ? "" : arg();
    default: {
      if (!missing) return value as string;
      const message = arg();
      throw new MiniboxError(
        `${where}: required variable ${name} is missing a value${message ? `: ${message}` : ""}`,
      );
    }
  }
}

/** A .env file: KEY=VALUE lines, # comments, optional quotes; values may use earlier ones. */
export function parseDotEnv(text: string, outer: Variables, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new MiniboxError(`${file}:${index + 1}: expected KEY=VALUE, got "${line}"`);
    const [, key, rawValue] = m as unknown as [string, string, string];
    let value = rawValue;
    if (/^'.*'$/.test(value)) value = value.slice(1, -1);
    else {
      if (/^".*"$/.test(value)) value = value.slice(1, -1).replace(/\\n/g, "\n");
      else value = value.replace(/\s+#.*$/, "");
      value = interpolate(value, { ...out, ...outer }, `${file}:${index + 1}`);
    }
    out[key] = value;
  });
  return out;
}
