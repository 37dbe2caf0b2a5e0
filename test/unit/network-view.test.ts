// What `network ls` and `network inspect` print: Docker's table and JSON.
import { describe, expect, it } from "vitest";
import { parseFilter } from "../../src/cli/filters.js";
import {
  inspectJson,
  LS_FILTERS,
  matchesFilters,
  networkTable,
  predefinedRows,
  rowOf,
} from "../../src/cli/network-view.js";
import type { NetworkRecord } from "../../src/runtime/network/networks.js";

const record = (name: string, hex: string): NetworkRecord => ({
  name,
  id: hex.repeat(64),
  driver: "bridge",
  subnet: "10.89.0.0/24",
  gateway: "10.89.0.1",
  internal: false,
  labels: { team: "blue" },
  created: "2026-12-02T13:59:34.123456000Z",
  bridge: `mbr-${hex.repeat(11)}`,
});

describe("network ls", () => {
  it("Docker's columns, 12-hex IDs, sorted by name with numbers compared as numbers", () => {
    const rows = [record("net10", "c"), record("bridge", "a"), record("net2", "b")].map(rowOf);
    const host = predefinedRows();
    const lines = networkTable([...rows, ...host]).split("\n");
    // Columns 3 spaces apart (the shared table(); Docker's tabwriter also has a minimum width of 10).
    expect(lines[0]).toMatch(/^NETWORK ID {5}NAME {5}DRIVER {3}SCOPE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).toEqual([
      "bridge",
      "host",
      "net2",
      "net10",
      "none",
    ]);
    expect(lines[1]).toBe(`${"a".repeat(12)}   bridge   bridge   local`);
    expect(lines.find((l) => l.includes(" none "))).toMatch(/^[0-9a-f]{12}\s+none\s+null\s+local$/);
    expect(networkTable(rows, true)).toContain("b".repeat(64));
  });

  it("host and none have the same ID every time", () => {
    expect(predefinedRows()).toEqual(predefinedRows());
    expect(predefinedRows().map((r) => r.driver)).toEqual(["host", "null"]);
  });
});

describe("network ls --filter", () => {
  const rows = [record("bridge", "a"), record("web", "b"), record("webdb", "c")].map(rowOf);
  const all = [...rows, ...predefinedRows()];
  const names = (...filters: string[]) =>
    all
      .filter((r) =>
        matchesFilters(
          r,
          filters.map((f) => parseFilter(f, LS_FILTERS)),
        ),
      )
      .map((r) => r.name);

  it("name matches part of a name; id a prefix; driver exactly; label as elsewhere", () => {
    expect(names("name=web")).toEqual(["web", "webdb"]);
    expect(names(`id=${"c".repeat(5)}`)).toEqual(["webdb"]);
    expect(names("driver=null")).toEqual(["none"]);
    expect(names("label=team=blue")).toEqual(["bridge", "web", "webdb"]);
    expect(names("label=team=red")).toEqual([]);
  });

  it("type: builtin (bridge, host, none) or custom; same key ORs, different keys AND", () => {
    expect(names("type=builtin")).toEqual(["bridge", "host", "none"]);
    expect(names("type=custom")).toEqual(["web", "webdb"]);
    expect(names("name=host", "name=none")).toEqual(["host", "none"]);
    expect(names("type=custom", "name=db")).toEqual(["webdb"]);
    expect(() => names("colour=red")).toThrow(/invalid filter "colour=red"/);
  });
});

describe("network inspect", () => {
  it("Docker's fields in Docker's order, Containers keyed by container ID", () => {
    const json = inspectJson(rowOf(record("web", "d")), [
      {
        id: "e".repeat(64),
        name: "app",
        aliases: ["db"],
        ip: "10.89.0.2",
        prefix: 24,
        mac: "02:42:0a:59:00:02",
        endpointId: "f".repeat(64),
      },
    ]);
    expect(Object.keys(json)).toEqual([
      "Name",
      "Id",
      "Created",
      "Scope",
      "Driver",
      "EnableIPv6",
      "IPAM",
      "Internal",
      "Attachable",
      "Ingress",
      "ConfigFrom",
      "ConfigOnly",
      "Containers",
      "Options",
      "Labels",
    ]);
    expect(json.Containers).toEqual({
      ["e".repeat(64)]: {
        Name: "app",
        EndpointID: "f".repeat(64),
        MacAddress: "02:42:0a:59:00:02",
        IPv4Address: "10.89.0.2/24",
        IPv6Address: "",
      },
    });
    expect(json).toMatchObject({
      IPAM: { Driver: "default", Config: [{ Subnet: "10.89.0.0/24", Gateway: "10.89.0.1" }] },
      Options: { "com.docker.network.bridge.name": `mbr-${"d".repeat(11)}` },
      Labels: { team: "blue" },
    });
  });

  it("host and none: their driver, no IPAM config, no containers", () => {
    const none = predefinedRows().find((r) => r.name === "none");
    expect(inspectJson(none as never, [])).toMatchObject({
      Name: "none",
      Driver: "null",
      IPAM: { Config: null },
      Containers: {},
    });
  });
});
