/**
 * What `network ls` and `network inspect` print, in Docker's shapes: pure
 * functions of the network records and their members.
 *
 * `host` and `none` are not records (there is nothing to store for them)
 * but Docker lists and inspects them like any network, with an ID: theirs
 * is derived from the name, so it is the same on every call.
 */
import { createHash } from "node:crypto";
import type { NetworkMember } from "../runtime/network/members.js";
import {
  DEFAULT_NETWORK,
  inspectNetwork,
  type NetworkRecord,
} from "../runtime/network/networks.js";
import { type Filter, labelMatches } from "./filters.js";
import { goTime, table } from "./format.js";

/** What ls and inspect need of a network, predefined or not. */
export interface NetworkRow {
  name: string;
  id: string;
  driver: string;
  record?: NetworkRecord;
}

/** `host` and `none`: Docker's drivers for them are "host" and "null". */
export function predefinedRows(): NetworkRow[] {
  return [
    { name: "host", driver: "host" },
    { name: "none", driver: "null" },
  ].map((n) => ({
    ...n,
    id: createHash("sha256").update(`minibox network ${n.name}`).digest("hex"),
  }));
}

export function rowOf(record: NetworkRecord): NetworkRow {
  return { name: record.name, id: record.id, driver: record.driver, record };
}

/** Docker's order: by name, digits compared as numbers ("net2" before "net10"). */
export function sortRows(rows: NetworkRow[]): NetworkRow[] {
  const collator = new Intl.Collator("en", { numeric: true });
  return [...rows].sort((a, b) => collator.compare(a.name, b.name));
}

/** The keys `network ls --filter` takes. */
export const LS_FILTERS = ["name", "id", "driver", "label", "type"];

function matchesOne(row: NetworkRow, f: Filter): boolean {
  const builtin = !row.record || row.name === DEFAULT_NETWORK;
  switch (f.key) {
    case "name":
      return row.name.includes(f.value);
    case "id":
      return row.id.startsWith(f.value);
    case "driver":
      return row.driver === f.value;
    case "label":
      return labelMatches(f.value, row.record?.labels ?? {});
    default:
      return f.value === (builtin ? "builtin" : "custom");
  }
}

/** Docker's rule: filters with the same key are alternatives, different keys must all hold. */
export function matchesFilters(row: NetworkRow, filters: Filter[]): boolean {
  const keys = new Set(filters.map((f) => f.key));
  return [...keys].every((k) => filters.some((f) => f.key === k && matchesOne(row, f)));
}

/** `network ls`: NETWORK ID (12 hex unless noTrunc), NAME, DRIVER, SCOPE. */
export function networkTable(rows: NetworkRow[], noTrunc = false): string {
  return table(
    ["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
    sortRows(rows).map((r) => [noTrunc ? r.id : r.id.slice(0, 12), r.name, r.driver, "local"]),
  );
}

/** The columns `network ls --format 'table …'` heads each field with (Docker's names). */
export const NETWORK_HEADERS = {
  ID: "NETWORK ID",
  Name: "NAME",
  Driver: "DRIVER",
  Scope: "SCOPE",
  IPv6: "IPV6",
  Internal: "INTERNAL",
  Labels: "LABELS",
  Label: "LABEL",
  CreatedAt: "CREATED AT",
};

/** One network as Docker's network formatter exposes it (keys sorted for --format json). */
export function networkFields(row: NetworkRow, trunc: boolean) {
  const labels = row.record?.labels ?? {};
  return {
    CreatedAt: row.record ? goTime(row.record.created) : "",
    Driver: row.driver,
    ID: trunc ? row.id.slice(0, 12) : row.id,
    IPv6: "false",
    Internal: String(row.record?.internal ?? false),
    Label: (key: unknown) => labels[String(key)] ?? "",
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(","),
    Name: row.name,
    Scope: "local",
  };
}

/** inspect's Containers: container ID → its endpoint on this network. */
export function containersJson(members: NetworkMember[]): Record<string, unknown> {
  return Object.fromEntries(
    members.map((m) => [
      m.id,
      {
        Name: m.name,
        EndpointID: m.endpointId,
        MacAddress: m.mac,
        IPv4Address: `${m.ip}/${m.prefix}`,
        IPv6Address: "",
      },
    ]),
  );
}

/** One element of `network inspect`'s array, in Docker's field order. */
export function inspectJson(row: NetworkRow, members: NetworkMember[]): Record<string, unknown> {
  const { Options, Labels, ...head } = row.record
    ? inspectNetwork(row.record)
    : predefinedInspect(row);
  return { ...head, Containers: containersJson(members), Options, Labels };
}

function predefinedInspect(row: NetworkRow): Record<string, unknown> {
  return {
    Name: row.name,
    Id: row.id,
    Created: "0001-01-01T00:00:00Z",
    Scope: "local",
    Driver: row.driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: null, Config: null },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Options: {},
    Labels: {},
  };
}
