/**
 * Finding and reading a compose file: the file (-f, else the names Compose
 * looks for), the project directory and name, .env, YAML parsing that keeps
 * each key's line (errors name it), and interpolation of every string value.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { MiniboxError } from "../errors.js";
import { interpolate, parseDotEnv, type Variables } from "./interpolate.js";

/** The names `docker compose` tries, in its order. */
export const DEFAULT_FILES = [
  "compose.yaml",
  "compose.yml",
  "docker-compose.yml",
  "docker-compose.yaml",
];

export interface RawProject {
  /** The file as read, shown in errors (relative to the cwd, as given). */
  file: string;
  dir: string;
  name: string;
  /** The resolved document: plain objects, every string interpolated. */
  data: unknown;
  /** "services.web.ports" → line of that key (1-based). */
  lines: Map<string, number>;
  /** Variables from the environment and .env, for env_file and environment. */
  vars: Variables;
}

export function findComposeFile(file: string | undefined, cwd = process.cwd()): string {
  if (file) {
    if (!existsSync(resolve(cwd, file))) {
      throw new MiniboxError(`open ${file}: no such file or directory`);
    }
    return file;
  }
  for (const name of DEFAULT_FILES) if (existsSync(join(cwd, name))) return name;
  throw new MiniboxError(
    "no configuration file provided: not found",
    `write a compose.yaml in ${cwd}, or name one with -f`,
  );
}

/** Compose's normalisation: lowercase, only [a-z0-9_-], starting with a letter or digit. */
export function normaliseProjectName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "")
    .replace(/^[_-]+/, "");
}

export function loadProject(
  fileOpt: string | undefined,
  projectOpt: string | undefined,
  env: Variables = process.env,
  cwd = process.cwd(),
): RawProject {
  const file = findComposeFile(fileOpt, cwd);
  const path = resolve(cwd, file);
  const dir = dirname(path);
  const dotEnvPath = join(dir, ".env");
  const dotEnv = existsSync(dotEnvPath)
    ? parseDotEnv(readFileSync(dotEnvPath, "utf8"), env, ".env")
    : {};
  // The shell's environment wins over .env, as in Compose.
  const vars: Variables = { ...dotEnv, ...env };
  const { data, lines } = readYaml(readFileSync(path, "utf8"), file, vars);
  const name = normaliseProjectName(
    projectOpt ?? vars.COMPOSE_PROJECT_NAME ?? topLevelName(data) ?? basename(dir),
  );
  if (!name) {
    throw new MiniboxError(
      `project name ${JSON.stringify(projectOpt ?? basename(dir))} has no letter or digit`,
      "give one with -p NAME",
    );
  }
  return { file, dir, name, data, lines, vars };
}

function topLevelName(data: unknown): string | undefined {
  if (data && typeof data === "object" && "name" in data) {
    const n = (data as { name: unknown }).name;
    return typeof n === "string" ? n : undefined;
  }
  return undefined;
}

/**
 * The YAML as plain values, each string interpolated, with the line of every
 * key and list item ("services.web.ports[0]") for the errors that follow.
 */
function readYaml(text: string, file: string, vars: Variables) {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0] as (typeof doc.errors)[number];
    const line = e.linePos?.[0]?.line ?? 1;
    throw new MiniboxError(`${file}:${line}: ${e.message.split("\n")[0]}`);
  }
  const lines = new Map<string, number>();
  const lineOf = (node: Node | null | undefined) =>
    node?.range ? counter.linePos(node.range[0]).line : 1;
  const walk = (node: unknown, at: string): unknown => {
    if (node === null || node === undefined) return null;
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const keyPath = at ? `${at}.${key}` : key;
        lines.set(keyPath, lineOf(pair.key as Node));
        out[key] = walk(pair.value, keyPath);
      }
      return out;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => {
        const itemPath = `${at}[${i}]`;
        lines.set(itemPath, lineOf(item as Node));
        return walk(item, itemPath);
      });
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v !== "string") return v;
      return interpolate(v, vars, `${file}:${lineOf(node)}: ${at}`);
    }
    throw new MiniboxError(`${file}:${lineOf(node as Node)}: ${at}: unsupported YAML node`);
  };
  return { data: walk(doc.contents, ""), lines };
}
