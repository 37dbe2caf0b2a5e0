/**
 * Name resolution on a user-defined network: containers find each other by
 * name, alias and short ID through the network's own resolver,
 * native/build/minibox-dns, listening on the gateway's port 53.
 *
 * No daemon: the resolver is started with the network's first container
 * and stopped with its last. `syncResolver` is the one entry point: given
 * the network's members it writes the records file, and starts or stops
 * the process so that one runs exactly while there are members. It is
 * idempotent and serialised by a lock in the network's directory, so every
 * attach, detach and crash sweep can simply call it with the members it
 * sees.
 *
 * Why a native process and not a node one: it lives as long as the network
 * has containers, one per network. minibox-dns runs in about 2 MB of RSS
 * (measured 2.0 MB); node with one dgram socket takes about 45 MB.
 *
 * The records file is replaced by rename(2), so the resolver (which stats
 * it on every query) reads either the old file or the new one, never half.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { basename, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { MiniboxError } from "../../errors.js";
import { networkPaths } from "../../layout.js";
import { withLock } from "../../sys/lock.js";
import { nativeProgram } from "../../sys/native.js";
import { NO_TRACE, type Tracer } from "../trace.js";

/** A container as its network's resolver knows it. */
export interface DnsMember {
  name: string;
  aliases: readonly string[];
  ip: string;
  /** The container's ID: its first 12 characters answer too (Docker). */
  id?: string;
  /** Its own nameservers (`run --dns`): the names it asks that are not the network's go there. */
  dns?: readonly string[];
}

export interface ResolverOptions {
  /** Where the upstream nameservers are listed (the host's /etc/resolv.conf when absent). */
  resolvConf?: string;
  trace?: Tracer;
}

/** What the resolver needs of its network (a NetworkRecord has it). */
export interface ResolverNetwork {
  name: string;
  /** Where it listens (port 53). */
  gateway: string;
  /** Whom it answers, besides the host itself ("10.89.0.0/24"). */
  subnet: string;
}

/** What a running resolver was started with, read back from /proc. */
interface Running {
  pid: number;
  listen: string;
  subnet: string;
}

/** A name the records file can hold: no whitespace, no comment sign. */
const RECORD_NAME = /^[^\s#]+$/;

/**
 * The records file for these members (pure): one address a line, then
 * every name it answers for — container name, aliases, short ID — each
 * once, in that order; then, for a member with --dns servers,
 * "upstream ADDRESS SERVER…".
 */
export function recordsFileText(network: string, members: readonly DnsMember[]): string {
  const lines = [`# names on network ${network}, for minibox-dns (written by minibox)`];
  for (const m of members) {
    const names = [m.name, ...m.aliases, ...(m.id ? [m.id.slice(0, 12)] : [])];
    const unique = [...new Set(names.filter((n) => RECORD_NAME.test(n)))];
    if (unique.length > 0) lines.push(`${m.ip} ${unique.join(" ")}`);
  }
  for (const m of members) {
    const servers = (m.dns ?? []).filter((ip) => isIP(ip) !== 0);
    if (servers.length > 0) lines.push(`upstream ${m.ip} ${servers.join(" ")}`);
  }
  return `${lines.join("\n")}\n`;
}

export function resolverPath(): string {
  return nativeProgram("minibox-dns", "MINIBOX_DNS", "DNS resolver");
}

/**
 * Make the network's resolver match `members`: the records written and
 * one resolver running on `network.gateway`:53 (answering its subnet and
 * the host) while there are members;
 * none, and no files, when there are none. `dir` is the network's
 * directory (src/layout.ts).
 */
export async function syncResolver(
  dir: string,
  network: ResolverNetwork,
  members: readonly DnsMember[],
  opts: ResolverOptions = {},
): Promise<void> {
  // Absolute: the resolver works from "/", and is recognised by these paths.
  const paths = networkPaths(resolve(dir));
  const trace = opts.trace ?? NO_TRACE;
  await withLock(paths.dnsLock, async () => {
    const running = await runningResolver(paths.dir);
    const listen = `${network.gateway}:53`;
    // Still right for the network (its gateway or subnet may have changed since)?
    const current = running?.listen === listen && running.subnet === network.subnet;
    if (members.length === 0 || (running && !current)) {
      if (running) await stopResolver(running.pid);
      await rm(paths.dnsPid, { force: true });
      if (members.length === 0) {
        await rm(paths.dnsRecords, { force: true });
        if (running) trace(`dns: resolver of ${network.name} stopped (pid ${running.pid})`);
        return;
      }
    }
    await writeAtomic(paths.dnsRecords, recordsFileText(network.name, members));
    if (current) return;
    const t = performance.now();
    const upstreams = resolve(opts.resolvConf ?? "/etc/resolv.conf");
    const args = [listen, paths.dnsRecords, upstreams, network.subnet];
    const pid = await startResolver(args).catch(async (err) => {
      await rm(paths.dnsRecords, { force: true }); // nothing left behind
      throw err;
    });
    await writeAtomic(paths.dnsPid, `${pid}\n`);
    trace(`dns: resolver of ${network.name} on ${listen} (pid ${pid})`, performance.now() - t);
  });
}

/**
 * Stop the resolver of a network that has no container left, if one runs
 * (the crash sweep's and detach's safety net: whatever the members were,
 * with no lease there are none). Nothing is touched when there is no pid
 * file, so a network directory being removed is never re-created.
 */
export async function stopIdleResolver(
  dir: string,
  network: ResolverNetwork,
  trace?: Tracer,
): Promise<void> {
  if (!existsSync(networkPaths(resolve(dir)).dnsPid)) return;
  await syncResolver(dir, network, [], { trace });
}

/**
 * The network's resolver if it runs: the pid file's process, if it is
 * still a minibox-dns serving this directory's records. Anything else (no
 * file, a dead process, a PID reused by another program) is stale.
 */
export async function runningResolver(dir: string): Promise<Running | undefined> {
  const paths = networkPaths(resolve(dir));
  const text = await readFile(paths.dnsPid, "utf8").catch(() => "");
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const argv = processArgv(pid);
  if (!argv || basename(argv[0] ?? "") !== "minibox-dns" || argv[2] !== paths.dnsRecords) {
    return undefined;
  }
  return { pid, listen: argv[1] ?? "", subnet: argv[4] ?? "" };
}

/** A process's argv from /proc, undefined when it is gone (or a zombie, with an empty one). */
function processArgv(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw ? raw.split("\0").slice(0, -1) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Start minibox-dns in a session of its own (it outlives this command) and
 * wait for its "ready": the socket is bound. A failure (the address taken,
 * no such program) is its own line.
 */
function startResolver(args: string[]): Promise<number> {
  const child = spawn(resolverPath(), args, {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const fail = (why: string) => {
      child.kill("SIGKILL");
      reject(new MiniboxError(`the network's DNS resolver did not start: ${why}`));
    };
    const timer = setTimeout(() => fail("no answer within 5 s"), 5000);
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!out.includes("ready\n") || child.pid === undefined) return;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      resolve(child.pid);
    });
    child.on("error", (e) => fail(e.message));
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new MiniboxError(err.trim() || `minibox-dns: exit ${code ?? signal}`));
    });
  });
}

/** SIGTERM, then wait (up to 2 s) until it is gone; SIGKILL if it is not. */
async function stopResolver(pid: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  };
  signal("SIGTERM");
  for (let i = 0; i < 400; i++) {
    if (!processArgv(pid)) return;
    await sleep(5);
  }
  signal("SIGKILL");
}

/** The whole file next to its place, then rename(2) over it. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}
