/**
 * Checkers for config.json's fields: each returns the value with its type,
 * or throws one line naming the field ("config.json: linux.resources.cpu.quota:
 * must be an integer"). Shared by the bundle's parts (bundle-spec.ts,
 * bundle-resources.ts).
 */
import { posix } from "node:path";
import { MiniboxError } from "../../errors.js";

export type Json = Record<string, unknown>;

export function bad(field: string, what: string): never {
  throw new MiniboxError(`config.json: ${field}: ${what}`);
}

export function object(v: unknown, field: string): Json {
  if (v === undefined) bad(field, "is required");
  if (v === null || typeof v !== "object" || Array.isArray(v)) bad(field, "must be an object");
  return v as Json;
}

export function optObject(v: unknown, field: string): Json {
  return v === undefined || v === null ? {} : object(v, field);
}

export function array(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad(field, "must be an array");
  return v;
}

export function strings(v: unknown, field: string): string[] {
  return array(v, field).map((s, i) => {
    if (typeof s !== "string") bad(`${field}[${i}]`, "must be a string");
    return s;
  });
}

export function str(v: unknown, field: string, fallback?: string): string {
  if (v === undefined || v === null) {
    if (fallback === undefined) bad(field, "is required");
    return fallback;
  }
  if (typeof v !== "string") bad(field, "must be a string");
  return v;
}

export function int(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) bad(field, "must be an integer");
  return v;
}

export function absolute(path: string, field: string): string {
  if (!path.startsWith("/")) bad(field, `${JSON.stringify(path)} must be an absolute path`);
  return posix.normalize(path);
}

export function bool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") bad(field, "must be true or false");
  return v;
}

/** An object without its undefined members (the Spec never holds them). */
export function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}
