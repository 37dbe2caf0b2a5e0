// The host's network settings that a networking benchmark may change, taken
// at the start and put back at the end: iptables and ip6tables (netavark
// writes its NETAVARK_* chains through iptables and leaves them behind),
// the whole nftables rule set, and the forwarding / route_localnet sysctls
// (netavark turns net.ipv4.ip_forward on and never turns it off). Also a
// guard table of the bench's own that drops packets for the container
// subnets before they leave through a physical interface: if a bridge
// vanishes mid-run (another engineer's test deleting minibox0), traffic for
// a container address would otherwise follow the default route off the host.
// See bench/README.md ("Benchmark: networking").
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import type Koffi from "koffi";

/** The sysctls snapshotted and written back (files under /proc/sys). */
export const SYSCTLS = [
  "net.ipv4.ip_forward",
  "net.ipv6.conf.all.forwarding",
  "net.ipv6.conf.default.forwarding",
  "net.ipv4.conf.all.route_localnet",
  "net.ipv4.conf.default.route_localnet",
];

const sysctlFile = (name: string) => `/proc/sys/${name.replace(/\./g, "/")}`;

// ---- nftables in text, through libnftables (the nft command is not installed) ----

type Fn = (...args: unknown[]) => unknown;
let nftLib: { ctxNew: Fn; ctxFree: Fn; bufOut: Fn; bufErr: Fn; run: Fn; out: Fn; err: Fn };

/**
 * Runs one nft command (nft's own syntax) and returns its text output, as
 * `nft CMD` prints it. The bench's own binding: minibox's (src/sys/nftables.ts)
 * always asks for JSON, whose handles change when a table is remade.
 */
export function nft(cmd: string): string {
  if (!nftLib) {
    const koffi = createRequire(import.meta.url)("koffi") as typeof Koffi;
    const so = koffi.load("libnftables.so.1");
    koffi.opaque("bench_nft_ctx");
    nftLib = {
      ctxNew: so.func("bench_nft_ctx *nft_ctx_new(uint32_t flags)"),
      ctxFree: so.func("void nft_ctx_free(bench_nft_ctx *ctx)"),
      bufOut: so.func("int nft_ctx_buffer_output(bench_nft_ctx *ctx)"),
      bufErr: so.func("int nft_ctx_buffer_error(bench_nft_ctx *ctx)"),
      run: so.func("int nft_run_cmd_from_buffer(bench_nft_ctx *ctx, const char *buf)"),
      out: so.func("const char *nft_ctx_get_output_buffer(bench_nft_ctx *ctx)"),
      err: so.func("const char *nft_ctx_get_error_buffer(bench_nft_ctx *ctx)"),
    };
  }
  const l = nftLib;
  const ctx = l.ctxNew(0);
  try {
    l.bufOut(ctx);
    l.bufErr(ctx);
    if (l.run(ctx, cmd) !== 0) throw new Error(`nft ${cmd}: ${String(l.err(ctx) ?? "").trim()}`);
    return String(l.out(ctx) ?? "");
  } finally {
    l.ctxFree(ctx);
  }
}

/** "family name" of every nftables table (iptables-nft's tables included). */
export function nftTables(): string[] {
  return [...nft("list tables").matchAll(/^table (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
}

// ---- the snapshot ---------------------------------------------------------------------

export interface HostNet {
  iptables: string;
  ip6tables: string;
  /** `nft list ruleset`, in text. */
  ruleset: string;
  sysctls: Record<string, string>;
}

function save(tool: "iptables-save" | "ip6tables-save"): string {
  const r = spawnSync(tool, [], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr}`);
  return r.stdout;
}

export function hostNetSnapshot(): HostNet {
  return {
    iptables: save("iptables-save"),
    ip6tables: save("ip6tables-save"),
    ruleset: nft("list ruleset"),
    sysctls: Object.fromEntries(
      SYSCTLS.map((s) => [s, readFileSync(sysctlFile(s), "utf8").trim()]),
    ),
  };
}

// ---- comparing ------------------------------------------------------------------------

/** iptables-save without its dated comments and with counters zeroed. */
export function normalizeSave(text: string): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]"))
    .join("\n");
}

/** A rule set without counter values and without `table`s that `skip` names ("family name"). */
export function normalizeRuleset(text: string, skip: (table: string) => boolean = () => false) {
  const out: string[] = [];
  let skipping = false;
  for (const line of text.split("\n")) {
    const head = /^table (\S+) (\S+) \{/.exec(line);
    if (head) skipping = skip(`${head[1]} ${head[2]}`);
    if (!skipping && line.trim() !== "")
      out.push(line.replace(/counter packets \d+ bytes \d+/g, "counter"));
    if (line === "}") skipping = false;
  }
  return out.join("\n");
}

/** Lines of `a` not in `b` and of `b` not in `a`, as "- line" / "+ line". */
export function lineDiff(a: string, b: string): string[] {
  const as = a.split("\n").filter((l) => l.trim() !== "");
  const bs = b.split("\n").filter((l) => l.trim() !== "");
  return [
    ...as.filter((l) => !bs.includes(l)).map((l) => `- ${l}`),
    ...bs.filter((l) => !as.includes(l)).map((l) => `+ ${l}`),
  ];
}

/**
 * How the host differs from `before` (nothing, when all is restored):
 * iptables, ip6tables, the nftables rule set (tables `skip` names left out)
 * and the sysctls.
 */
export function hostNetDiff(before: HostNet, skip?: (table: string) => boolean): string[] {
  const now = hostNetSnapshot();
  const out: string[] = [];
  for (const k of ["iptables", "ip6tables"] as const) {
    const d = lineDiff(normalizeSave(before[k]), normalizeSave(now[k]));
    if (d.length > 0) out.push(`${k}-save differs from the snapshot:\n${d.join("\n")}`);
  }
  const rs = lineDiff(normalizeRuleset(before.ruleset, skip), normalizeRuleset(now.ruleset, skip));
  if (rs.length > 0) out.push(`nft list ruleset differs from the snapshot:\n${rs.join("\n")}`);
  for (const [name, value] of Object.entries(before.sysctls)) {
    const v = now.sysctls[name];
    if (v !== value) out.push(`${name} is ${v}, was ${value} at the start`);
  }
  return out;
}

// ---- restoring ------------------------------------------------------------------------

/** Whether an iptables-save line is netavark's: its chains, and jumps to them. */
const isNetavark = (line: string) => /NETAVARK/.test(line);

/** iptables-save text split per table: name → its lines from `*name` to COMMIT. */
export function saveTables(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) {
      current = [line];
      out.set(line.slice(1), current);
    } else if (current && !line.startsWith("#") && line.trim() !== "") current.push(line);
  }
  return out;
}

/** A table that holds nothing: only built-in chains with policy ACCEPT, no rules. */
export const emptyTable = (lines: string[]) =>
  lines.every((l) => l.startsWith("*") || l === "COMMIT" || /^:[A-Z]+ ACCEPT /.test(l));

/**
 * Takes netavark's chains and rules out of one family's tables (the
 * equivalent of iptables-restore from the snapshot when netavark made the
 * only change, without undoing what another user changed meanwhile), then
 * deletes the tables that did not exist at the start and are now empty.
 * Returns what it did, for the report.
 */
function restoreFamily(
  family: "ip" | "ip6",
  before: string,
  now: string,
  anomalies: string[],
): string[] {
  const done: string[] = [];
  const tool = family === "ip" ? "iptables" : "ip6tables";
  const had = saveTables(before);
  for (const [table, lines] of saveTables(now)) {
    const kept = lines.filter((l) => !isNetavark(l));
    if (kept.length !== lines.length) {
      const r = spawnSync(`${tool}-restore`, ["-w", "5"], {
        input: `${kept.join("\n")}\n`,
        encoding: "utf8",
      });
      if (r.status !== 0) anomalies.push(`${tool}-restore of table ${table}: ${r.stderr.trim()}`);
      else
        done.push(
          `${tool}: ${lines.length - kept.length} lines of netavark's taken out of ${table}`,
        );
    }
    if (!had.has(table) && emptyTable(kept)) {
      try {
        nft(`delete table ${family} ${table}`);
        done.push(`${tool}: table ${table} (not there at the start, now empty) deleted`);
      } catch (e) {
        anomalies.push(`deleting table ${family} ${table}: ${(e as Error).message}`);
      }
    }
  }
  return done;
}

/**
 * Puts the host's network settings back as `before` had them: netavark's
 * iptables and ip6tables chains out, the tables they alone needed deleted,
 * the sysctls written back. Returns what it did (notes for the report);
 * failures go to `anomalies`. hostNetDiff afterwards is the check.
 */
export function restoreHostNet(before: HostNet, anomalies: string[]): string[] {
  const done = [
    ...restoreFamily("ip", before.iptables, save("iptables-save"), anomalies),
    ...restoreFamily("ip6", before.ip6tables, save("ip6tables-save"), anomalies),
  ];
  for (const [name, value] of Object.entries(before.sysctls)) {
    const file = sysctlFile(name);
    const now = readFileSync(file, "utf8").trim();
    if (now === value) continue;
    try {
      writeFileSync(file, `${value}\n`);
      done.push(`${name} was ${now}, written back to ${value}`);
    } catch (e) {
      anomalies.push(`writing ${name} back to ${value}: ${(e as Error).message}`);
    }
  }
  return done;
}

// ---- the guard --------------------------------------------------------------------------

/** The bench's own nftables table (see the top of this file); `token` makes it unique. */
export const guardTable = (token: string) => `inet ${token.replace(/-/g, "_")}_guard`;

/**
 * Creates the guard: packets for `subnets` leaving through any interface
 * but lo and `bridges` are counted and dropped, in the output and forward
 * hooks. Returns the table's "family name".
 */
export function addGuard(token: string, subnets: string[], bridges: string[]): string {
  const table = guardTable(token);
  const allowed = ["lo", ...bridges].map((b) => JSON.stringify(b)).join(", ");
  const nets = subnets.join(", ");
  const rule = `oifname != { ${allowed} } ip daddr { ${nets} } counter drop`;
  nft(
    [
      `add table ${table}`,
      `add chain ${table} guard_output { type filter hook output priority -300; policy accept; }`,
      `add chain ${table} guard_forward { type filter hook forward priority -300; policy accept; }`,
      `add rule ${table} guard_output ${rule}`,
      `add rule ${table} guard_forward ${rule}`,
    ].join("\n"),
  );
  return table;
}

/** Packets the guard dropped so far (would have left the host), or undefined if it is gone. */
export function guardDrops(table: string): number | undefined {
  try {
    const text = nft(`list table ${table}`);
    return [...text.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  } catch {
    return undefined;
  }
}

export function removeGuard(table: string): void {
  try {
    nft(`delete table ${table}`);
  } catch {
    // not there
  }
}
