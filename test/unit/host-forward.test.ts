// The way through other tables' drop-policy forward chains (host-forward.ts):
// which chains, which rules are minibox's, and the batch that makes them match.
import { describe, expect, test } from "vitest";
import {
  acceptExprs,
  forwardDropChains,
  ownedRules,
  passThroughCommands,
} from "../../src/runtime/network/host-forward.js";

const chain = (family: string, table: string, name: string, hook: string, policy?: string) => ({
  chain: { family, table, name, type: "filter", hook, prio: 0, policy },
});

const LISTING = [
  { metainfo: { version: "1.0.6" } },
  { table: { family: "ip", name: "filter" } },
  chain("ip", "filter", "FORWARD", "forward", "drop"),
  chain("ip", "filter", "INPUT", "input", "drop"),
  chain("inet", "fw", "fwd", "forward", "accept"),
  chain("inet", "minibox", "forward", "forward", "drop"),
  chain("ip6", "filter", "FORWARD", "forward", "drop"),
  { chain: { family: "ip", table: "filter", name: "DOCKER-USER" } },
  { rule: { family: "ip", table: "filter", chain: "FORWARD", handle: 4, comment: "minibox" } },
  { rule: { family: "ip", table: "filter", chain: "FORWARD", handle: 5, comment: "docker" } },
  { rule: { family: "inet", table: "minibox", chain: "forward", handle: 6, comment: "minibox" } },
];

describe("host-forward", () => {
  test("drop-policy forward chains of other tables that IPv4 passes (not ip6, not minibox's own)", () => {
    expect(forwardDropChains(LISTING)).toEqual([
      { family: "ip", table: "filter", name: "FORWARD" },
    ]);
  });

  test("minibox's rules are those with its comment outside its own table", () => {
    expect(ownedRules(LISTING).map((r) => r.handle)).toEqual([4]);
  });

  test("accept: out of the subnet, replies to it, published ports (DNAT) to it", () => {
    const [out, replies, published] = acceptExprs("172.30.0.0/16");
    expect(out?.[0]).toEqual({
      match: {
        op: "==",
        left: { payload: { protocol: "ip", field: "saddr" } },
        right: { prefix: { addr: "172.30.0.0", len: 16 } },
      },
    });
    expect(replies?.[1]).toEqual({
      match: { op: "in", left: { ct: { key: "state" } }, right: ["established", "related"] },
    });
    expect(published?.[1]).toEqual({
      match: { op: "in", left: { ct: { key: "status" } }, right: "dnat" },
    });
    for (const e of [out, replies, published]) expect(e?.at(-1)).toEqual({ accept: null });
  });

  test("the batch deletes the old rules by handle and inserts three per subnet per chain", () => {
    const batch = passThroughCommands(LISTING, ["172.30.0.0/16", "10.210.0.0/16"]);
    expect(batch[0]).toEqual({
      delete: { rule: { family: "ip", table: "filter", chain: "FORWARD", handle: 4 } },
    });
    const inserts = batch.slice(1);
    expect(inserts).toHaveLength(6);
    for (const c of inserts) {
      expect((c as { insert: { rule: object } }).insert.rule).toMatchObject({
        family: "ip",
        table: "filter",
        chain: "FORWARD",
        comment: "minibox",
      });
    }
  });

  test("no subnet: only the deletes; nothing owned and no drop chain: nothing at all", () => {
    expect(passThroughCommands(LISTING, [])).toHaveLength(1);
    expect(
      passThroughCommands([chain("inet", "fw", "fwd", "forward", "accept")], ["10.0.0.0/8"]),
    ).toEqual([]);
  });
});
