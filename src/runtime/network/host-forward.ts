/**
 * A way through other tables' forward chains whose policy is drop.
 *
 * Every base chain on the forward hook runs, in every table, and a packet
 * is forwarded only if none drops it: minibox's own `accept` (firewall.ts)
 * cannot overrule the `ip filter FORWARD` chain that Docker (through
 * iptables-nft) or a hardened host sets to policy DROP. So while minibox
 * has networks it inserts, at the top of each such chain, accept rules for
 * its subnets — traffic out of them, replies to them, and connections to
 * published ports (DNATed to them) — each tagged with the comment
 * "minibox", and deletes exactly those (by handle) when the networks go or
 * change. Docker does the same with the jumps it inserts into FORWARD.
 *
 * Only chains nftables can see: iptables-legacy's FORWARD lives outside
 * nftables, and a DROP policy there still cuts the containers off.
 *
 * Pure functions build libnftables JSON commands from a `list ruleset`
 * listing; endpoint.ts runs them under the host lock.
 */
import { FAMILY, TABLE } from "./firewall.js";

/** What marks a rule as minibox's in a chain that is not. */
export const RULE_COMMENT = "minibox";

/** A base chain of another table (family, table, name). */
export interface ChainRef {
  family: string;
  table: string;
  name: string;
}

interface ListedRule extends ChainRef {
  chain: string;
  handle: number;
  comment?: string;
}

type Command = Record<string, unknown>;

/**
 * Forward-hook base chains with policy drop in tables other than minibox's
 * that IPv4 traffic passes (families ip and inet).
 */
export function forwardDropChains(ruleset: unknown[]): ChainRef[] {
  return ruleset.flatMap((item) => {
    const c = (item as { chain?: Record<string, unknown> }).chain;
    if (c?.hook !== "forward" || c.policy !== "drop") return [];
    if (c.family !== "ip" && c.family !== "inet") return [];
    if (c.family === FAMILY && c.table === TABLE) return [];
    return [{ family: String(c.family), table: String(c.table), name: String(c.name) }];
  });
}

/** Rules minibox inserted earlier, in any table but its own. */
export function ownedRules(ruleset: unknown[]): ListedRule[] {
  return ruleset.flatMap((item) => {
    const r = (item as { rule?: ListedRule }).rule;
    if (!r || r.comment !== RULE_COMMENT) return [];
    if (r.family === FAMILY && r.table === TABLE) return [];
    return [r];
  });
}

const daddr = (cidr: string) => match("daddr", cidr);
function match(field: "saddr" | "daddr", cidr: string): Command {
  const [addr, len] = cidr.split("/");
  return {
    match: {
      op: "==",
      left: { payload: { protocol: "ip", field } },
      right: { prefix: { addr, len: Number(len) } },
    },
  };
}
const ct = (key: string, right: unknown): Command => ({
  match: { op: "in", left: { ct: { key } }, right },
});

/** The three accept rules for one subnet, in the order they are inserted. */
export function acceptExprs(subnet: string): Command[][] {
  return [
    [match("saddr", subnet), { accept: null }],
    [daddr(subnet), ct("state", ["established", "related"]), { accept: null }],
    [daddr(subnet), ct("status", "dnat"), { accept: null }],
  ];
}

/**
 * The batch that makes the ruleset hold exactly minibox's accept rules for
 * `subnets` in every drop chain: the old ones deleted, the new inserted.
 * Empty when there is nothing to do (no chain, nothing owned).
 */
export function passThroughCommands(ruleset: unknown[], subnets: readonly string[]): Command[] {
  const deletes = ownedRules(ruleset).map((r) => ({
    delete: { rule: { family: r.family, table: r.table, chain: r.chain, handle: r.handle } },
  }));
  const inserts = forwardDropChains(ruleset).flatMap((c) =>
    subnets.flatMap((s) =>
      acceptExprs(s).map((expr) => ({
        insert: {
          rule: { family: c.family, table: c.table, chain: c.name, expr, comment: RULE_COMMENT },
        },
      })),
    ),
  );
  return [...deletes, ...inserts];
}
