/**
 * `ps --filter`, Docker's keys and semantics: status, label, name, ancestor,
 * id, exited, before, since (repeatable; same key ORed, different keys ANDed).
 */
import { MiniboxError } from "../errors.js";
import { findImage } from "../image/images.js";
import type { Store } from "../image/store.js";
import type { ContainerView } from "../runtime/lifecycle.js";
import { allKeysMatch, labelMatches, parseFilter, requireValues } from "./filters.js";

const KEYS = ["status", "label", "name", "ancestor", "id", "exited", "before", "since"];
const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

export interface PsFilter {
  /** Stopped containers are listed without -a when a filter asks about them (as dockerd does). */
  impliesAll: boolean;
  matches(c: ContainerView, labels: Record<string, string>): boolean;
}

export async function psFilter(
  texts: string[],
  store: Store,
  views: ContainerView[],
): Promise<PsFilter> {
  const filters = texts.map((t) => parseFilter(t, KEYS));
  requireValues(
    filters,
    KEYS.filter((k) => k !== "label"),
  );
  for (const f of filters) {
    if (f.key === "status" && !STATUSES.includes(f.value))
      throw new MiniboxError(
        `invalid filter 'status=${f.value}'`,
        `use one of ${STATUSES.join(", ")}`,
      );
    if (f.key === "exited" && !/^-?\d+$/.test(f.value))
      throw new MiniboxError(
        `invalid filter 'exited=${f.value}'`,
        "use an exit code, e.g. exited=0",
      );
  }
  const created = new Map<string, string>();
  for (const f of filters.filter((f) => f.key === "before" || f.key === "since"))
    created.set(f.value, findView(views, f.value).created);
  const ancestors = new Map<string, Set<string>>();
  for (const f of filters.filter((f) => f.key === "ancestor"))
    ancestors.set(f.value, await descendantsOf(store, f.value));
  const keys = new Set(filters.map((f) => f.key));
  return {
    impliesAll: ["status", "exited", "before", "since"].some((k) => keys.has(k)),
    matches: (c, labels) =>
      allKeysMatch(filters, (f) => {
        switch (f.key) {
          case "label":
            return labelMatches(f.value, labels);
          case "status":
            return (c.running ? "running" : c.status) === f.value;
          case "name":
            // Docker matches names as a regular expression (substring unless anchored).
            return safeRegExp(f.value).test(c.name);
          case "id":
            return c.id.startsWith(f.value);
          case "exited":
            return !c.running && c.status === "exited" && (c.exitCode ?? 0) === Number(f.value);
          case "before":
            return c.created < (created.get(f.value) as string);
          case "since":
            return c.created > (created.get(f.value) as string);
          default:
            return ancestors.get(f.value)?.has(c.imageId) ?? false;
        }
      }),
  };
}

function findView(views: ContainerView[], ref: string): ContainerView {
  const found =
    views.find((v) => v.name === ref || v.id === ref) ?? views.find((v) => v.id.startsWith(ref));
  if (!found) throw new MiniboxError(`No such container: ${ref}`, "name a container `ps -a` lists");
  return found;
}

/** The image ancestor=X names and every image built on it (by the parent chain). */
async function descendantsOf(store: Store, ref: string): Promise<Set<string>> {
  const image = await findImage(store, ref);
  if (!image) return new Set();
  const index = await store.readIndex();
  const ids = new Set([image.record.id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of Object.values(index.images))
      if (r.parent && ids.has(r.parent) && !ids.has(r.id)) {
        ids.add(r.id);
        grew = true;
      }
  }
  return ids;
}

function safeRegExp(text: string): RegExp {
  try {
    return new RegExp(text);
  } catch {
    throw new MiniboxError(`invalid filter 'name=${text}'`, "use a name or a regular expression");
  }
}
