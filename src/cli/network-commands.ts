/** network create, ls, inspect, rm, prune, connect, disconnect — Docker's flags, output and errors. */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { NETWORK_ROOT } from "../layout.js";
import { findContainer, sweepContainers } from "../runtime/lifecycle.js";
import { connectContainer, disconnectContainer } from "../runtime/network/connect.js";
import type { Liveness } from "../runtime/network/ipam.js";
import { networkMembers } from "../runtime/network/members.js";
import {
  createNetwork,
  DEFAULT_NETWORK,
  ensureDefaultNetwork,
  findNetwork,
  listNetworks,
  pruneNetworks,
  removeNetwork,
} from "../runtime/network/networks.js";
import { parseLabelFlag } from "../runtime/run-options.js";
import { listContainers } from "../runtime/state.js";
import { contextFrom } from "./context.js";
import { parseFilter } from "./filters.js";
import { formatList, printInspect } from "./list-format.js";
import {
  inspectJson,
  LS_FILTERS,
  matchesFilters,
  NETWORK_HEADERS,
  type NetworkRow,
  networkFields,
  networkTable,
  predefinedRows,
  rowOf,
  sortRows,
} from "./network-view.js";
import { collect } from "./options.js";

export function registerNetworkCommands(program: Command): void {
  const network = program.command("network").description("Manage networks");
  registerNetworkCreate(network);
  registerNetworkLs(network);
  registerNetworkInspect(network);
  registerNetworkRm(network);
  registerNetworkPrune(network);
  registerNetworkConnect(network);
  registerNetworkDisconnect(network);
}

interface CreateFlags {
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  label?: string[];
  driver: string;
}

/** Docker's refusals for a driver other than bridge. */
function checkDriver(driver: string): void {
  if (driver === "bridge") return;
  if (driver === "host" || driver === "null") {
    throw new MiniboxError(`only one instance of "${driver}" network is allowed`);
  }
  throw new MiniboxError(`plugin "${driver}" not found`, "minibox has the bridge driver only");
}

function registerNetworkCreate(network: Command): void {
  network
    .command("create")
    .description("Create a bridge network")
    .argument("<name>")
    .option("-d, --driver <driver>", "driver to manage the network (bridge only)", "bridge")
    .option("--subnet <cidr>", "subnet in CIDR format, e.g. 10.89.0.0/24")
    .option("--gateway <ip>", "the bridge's address, in the subnet (default: its first host)")
    .option("--internal", "no access to or from outside the network")
    .option("--label <k=v>", "set metadata on the network (repeatable)", collect)
    .action(async (name: string, opts: CreateFlags) => {
      checkDriver(opts.driver);
      const labels = Object.fromEntries((opts.label ?? []).map(parseLabelFlag));
      const record = await createNetwork(NETWORK_ROOT, {
        name,
        subnet: opts.subnet,
        gateway: opts.gateway,
        internal: Boolean(opts.internal),
        labels,
      });
      console.log(record.id);
    });
}

/**
 * Every network: the default bridge (made on first use, as `run` does, with
 * the store `root`'s configuration), host, none, the user's. Networks are
 * the host's (layout.ts NETWORK_ROOT), whatever --root says.
 */
async function allRows(root: string): Promise<NetworkRow[]> {
  const made = await ensureDefaultNetwork(NETWORK_ROOT, undefined, root);
  if (made.notice) process.stderr.write(`minibox: ${made.notice}\n`);
  return [...(await listNetworks(NETWORK_ROOT)).map(rowOf), ...predefinedRows()];
}

interface LsFlags {
  quiet?: boolean;
  trunc: boolean;
  filter?: string[];
  format?: string;
}

function registerNetworkLs(network: Command): void {
  network
    .command("ls")
    .alias("list")
    .description("List networks")
    .option("-q, --quiet", "only IDs")
    .option("--no-trunc", "full IDs")
    .option("-f, --filter <k=v>", "name=…, id=…, driver=…, label=…, type=custom|builtin", collect)
    .option("--format <template>", "a Go template, 'table TEMPLATE' or 'json'")
    .action(async (opts: LsFlags, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const filters = (opts.filter ?? []).map((f) => parseFilter(f, LS_FILTERS));
      const all = sortRows(await allRows(store.root));
      const rows = all.filter((r) => matchesFilters(r, filters));
      if (opts.quiet) {
        for (const r of rows) console.log(opts.trunc ? r.id.slice(0, 12) : r.id);
        return;
      }
      const fields = sortRows(rows).map((r) => networkFields(r, opts.trunc));
      const defaultTable = () => networkTable(rows, !opts.trunc);
      for (const line of formatList(opts.format, fields, NETWORK_HEADERS, defaultTable))
        console.log(line);
    });
}

/** A network by name, ID or ID prefix, predefined ones included; Docker's error when none. */
async function rowFor(root: string, ref: string): Promise<NetworkRow> {
  const rows = await allRows(root);
  const named = rows.find((r) => r.name === ref) ?? rows.find((r) => r.id === ref);
  if (named) return named;
  const record = await findNetwork(NETWORK_ROOT, ref);
  if (record) return rowOf(record);
  throw new MiniboxError(`network ${ref} not found`);
}

function registerNetworkInspect(network: Command): void {
  network
    .command("inspect")
    .description("Show networks as JSON, with the containers on them")
    .argument("<network...>")
    .option("-f, --format <template>", "Go-template-like format, e.g. '{{.IPAM.Config}}'")
    .action(async (refs: string[], opts: { format?: string }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      await sweepContainers(store.root);
      const results = [];
      for (const ref of refs) {
        const row = await rowFor(store.root, ref);
        const members = row.record ? await networkMembers(NETWORK_ROOT, row.record) : [];
        results.push(inspectJson(row, members));
      }
      printInspect(results, opts.format);
    });
}

/** The store's containers that may hold an address (not exited), after the sweep has recorded the dead. */
async function liveIds(root: string): Promise<Liveness> {
  await sweepContainers(root);
  const all = await listContainers(root);
  return { root, live: new Set(all.filter((s) => s.status !== "exited").map((s) => s.id)) };
}

function registerNetworkRm(network: Command): void {
  network
    .command("rm")
    .alias("remove")
    .description("Remove networks (not while a container is on them)")
    .argument("<network...>")
    .option("-f, --force", "no error for a network that does not exist")
    .action(async (refs: string[], opts: { force?: boolean }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const live = await liveIds(store.root);
      const errors: string[] = [];
      for (const ref of refs) {
        try {
          if (ref === "host" || ref === "none" || ref === DEFAULT_NETWORK) {
            throw new MiniboxError(`${ref} is a pre-defined network and cannot be removed`);
          }
          if (opts.force && !(await findNetwork(NETWORK_ROOT, ref))) continue;
          await removeNetwork(NETWORK_ROOT, ref, live);
          console.log(ref);
        } catch (err) {
          if (!(err instanceof MiniboxError)) throw err;
          errors.push(err.message);
        }
      }
      // Docker removes what it can, then reports every failure.
      if (errors.length) throw new MiniboxError(errors.join("\n"));
    });
}

function registerNetworkPrune(network: Command): void {
  network
    .command("prune")
    .description("Remove all networks no container is on")
    .option("-f, --force", "do not ask (minibox never asks)")
    .action(async (_opts: unknown, cmd: Command) => {
      const { store } = contextFrom(cmd);
      const removed = await pruneNetworks(NETWORK_ROOT, await liveIds(store.root));
      if (removed.length === 0) return;
      console.log(`Deleted Networks:\n${removed.map((n) => n.name).join("\n")}\n`);
    });
}

function registerNetworkConnect(network: Command): void {
  network
    .command("connect")
    .description("Connect a container to a network (at once if it runs)")
    .argument("<network>")
    .argument("<container>")
    .option("--alias <name>", "another name for the container on this network", collect)
    .option("--ip <address>", "its IPv4 address on this network")
    .action(async (net: string, ref: string, opts: { alias?: string[]; ip?: string }, cmd) => {
      const { store } = contextFrom(cmd as Command);
      await sweepContainers(store.root);
      const c = await findContainer(store.root, ref);
      await connectContainer(store.root, c, net, { aliases: opts.alias, ip: opts.ip });
    });
}

function registerNetworkDisconnect(network: Command): void {
  network
    .command("disconnect")
    .description("Disconnect a container from a network")
    .argument("<network>")
    .argument("<container>")
    .option("-f, --force", "no error when it is not connected")
    .action(async (net: string, ref: string, opts: { force?: boolean }, cmd: Command) => {
      const { store } = contextFrom(cmd);
      await sweepContainers(store.root);
      const c = await findContainer(store.root, ref);
      await disconnectContainer(store.root, c, net, Boolean(opts.force));
    });
}
