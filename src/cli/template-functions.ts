/**
 * The functions a `--format` template can call: Docker's (cli/templates:
 * json, join, split, title, lower, upper, pad, truncate, println) and the Go
 * builtins people use in Docker's docs (index, printf, print, len, comparisons).
 */
import { jsonText } from "../json-text.js";
import { goString, isTrue, sprintf } from "./template-values.js";

type Fn = (...args: unknown[]) => unknown;

const text = (v: unknown) => (typeof v === "string" ? v : goString(v));

function index(collection: unknown, ...keys: unknown[]): unknown {
  let value = collection;
  for (const key of keys) {
    if (value === null || value === undefined) throw new Error("index of untyped nil");
    if (Array.isArray(value)) {
      if (typeof key !== "number" || key < 0 || key >= value.length)
        throw new Error(`index out of range: ${goString(key)}`);
      value = value[key];
    } else if (typeof value === "object") {
      // A missing map key gives the zero value: "" for Docker's string maps (labels, options).
      value = (value as Record<string, unknown>)[String(key)] ?? "";
    } else throw new Error(`can't index item of type ${typeof value}`);
  }
  return value;
}

function compare(op: string): Fn {
  return (a, b) => {
    if (op === "eq") return a === b;
    if (op === "ne") return a !== b;
    const x = a as number;
    const y = b as number;
    return op === "lt" ? x < y : op === "le" ? x <= y : op === "gt" ? x > y : x >= y;
  };
}

export const templateFunctions: Record<string, Fn> = {
  // Docker's json: compact, no HTML escaping (JSON.stringify escapes none); int64s exact.
  json: (v) => jsonText(v),
  join: (list, sep) => (Array.isArray(list) ? list.map(text).join(text(sep)) : text(list)),
  split: (s, sep) => text(s).split(text(sep)),
  title: (s) =>
    text(s).replace(/(^|[^\p{L}\p{N}])(\p{L})/gu, (_, a: string, b: string) => a + b.toUpperCase()),
  lower: (s) => text(s).toLowerCase(),
  upper: (s) => text(s).toUpperCase(),
  pad: (s, before, after) => " ".repeat(Number(before)) + text(s) + " ".repeat(Number(after)),
  truncate: (s, n) => [...text(s)].slice(0, Number(n)).join(""),
  println: (...args) => `${args.map(goString).join(" ")}\n`,
  print: (...args) => args.map(goString).join(""),
  printf: (format, ...args) => sprintf(text(format), args),
  index: index as Fn,
  len: (v) => {
    if (typeof v === "string" || Array.isArray(v)) return v.length;
    if (v && typeof v === "object") return Object.keys(v).length;
    throw new Error(`len of ${goString(v)}`);
  },
  not: (v) => !isTrue(v),
  and: (...args) => args.find((a) => !isTrue(a)) ?? args[args.length - 1],
  or: (...args) => args.find((a) => isTrue(a)) ?? args[args.length - 1],
  eq: compare("eq"),
  ne: compare("ne"),
  lt: compare("lt"),
  le: compare("le"),
  gt: compare("gt"),
  ge: compare("ge"),
};
