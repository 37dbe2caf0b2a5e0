/**
 * `events --filter`, Docker's keys and matching (daemon/events/filter.go):
 * type, event (the action), container (a name, or a prefix of the ID),
 * image (ID or name, with or without its tag), label (an attribute),
 * volume, network and scope. Filters with the same key are alternatives;
 * different keys must all match.
 */
import { MiniboxError } from "../errors.js";
import type { MiniboxEvent } from "../events/journal.js";
import { allKeysMatch, type Filter, labelMatches, parseFilter, requireValues } from "./filters.js";

const KEYS = ["type", "event", "container", "image", "label", "volume", "network", "scope"];
const TYPES = [
  "container",
  "image",
  "volume",
  "network",
  "daemon",
  "plugin",
  "service",
  "node",
  "secret",
  "config",
];

export type EventFilter = (e: MiniboxEvent) => boolean;

export function parseEventFilters(texts: string[]): EventFilter {
  const filters = texts.map((t) => parseFilter(t, KEYS));
  requireValues(filters, KEYS);
  for (const f of filters) {
    if (f.key === "type" && !TYPES.includes(f.value))
      throw new MiniboxError(
        `invalid filter 'type=${f.value}'`,
        `use type=${TYPES.slice(0, 4).join("|")}`,
      );
  }
  return (e) => allKeysMatch(filters, (f) => matches(f, e));
}

function matches(f: Filter, e: MiniboxEvent): boolean {
  const attributes = e.Actor.Attributes;
  switch (f.key) {
    case "type":
      return e.Type === f.value;
    case "event":
      // "health_status: healthy" is matched by health_status, as in Docker.
      return e.Action === f.value || e.Action.split(":")[0] === f.value;
    case "container":
      return attributes.name === f.value || e.Actor.ID.startsWith(f.value);
    case "image":
      return imageMatches(f.value, e);
    case "label":
      return labelMatches(f.value, attributes);
    case "volume":
    case "network":
      return e.Type === f.key && (e.Actor.ID === f.value || attributes.name === f.value);
    default:
      return e.scope === f.value;
  }
}

/** The image's ID or name (a container's `image` attribute, an image's `name`), tagged or not. */
function imageMatches(value: string, e: MiniboxEvent): boolean {
  const name = e.Actor.Attributes[e.Type === "image" ? "name" : "image"] ?? "";
  const candidates = [e.Actor.ID, name, stripTag(e.Actor.ID), stripTag(name)];
  return candidates.includes(value);
}

/** "busybox:latest" → "busybox" (a registry's port is not a tag). */
function stripTag(name: string): string {
  const at = name.indexOf("@");
  if (at >= 0) return name.slice(0, at);
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
}
