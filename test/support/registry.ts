// Real registries for tests: Debian's docker-registry (CNCF distribution 2.8),
// one process per auth flavour, each with its own config file (the packaged
// /etc/docker/registry/config.yml enables htpasswd and a fixed port), all on
// 127.0.0.1 and all sharing one filesystem storage root. With no `cache`
// section a registry keeps no in-memory blob descriptors, so what one instance
// writes is immediately served by the others: fixtures are pushed once.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { TOKEN_ISSUER, TOKEN_SERVICE } from "./token-server.js";
import { freePort, httpRequest, pidAlive, run, sleep } from "./util.js";

export const REGISTRY_BIN = "/usr/bin/docker-registry";

export type RegistryAuth =
  | { kind: "none" }
  | { kind: "token"; realm: string; certFile: string }
  | { kind: "htpasswd"; file: string };

export interface RegistryHandle {
  name: string;
  /** "127.0.0.1:PORT" — the form image references use. */
  host: string;
  port: number;
  pid: number;
  configFile: string;
  logFile: string;
  stop(): Promise<void>;
}

/** One shared secret: upload state is HMAC'd with it, and a random one is logged as a warning. */
const HTTP_SECRET = "minibox-test-registry-secret";

function configYaml(opts: { port: number; storageDir: string; auth: RegistryAuth }): string {
  // JSON strings are valid YAML scalars: quoting paths this way is always safe.
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  formatter: text",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${q(opts.storageDir)}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    // Purging would delete in-flight uploads of the other instances.
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: ${q(`127.0.0.1:${opts.port}`)}`,
    `  secret: ${q(HTTP_SECRET)}`,
  ];
  if (opts.auth.kind === "token") {
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${q(opts.auth.realm)}`,
      `    service: ${q(TOKEN_SERVICE)}`,
      `    issuer: ${q(TOKEN_ISSUER)}`,
      `    rootcertbundle: ${q(opts.auth.certFile)}`,
    );
  } else if (opts.auth.kind === "htpasswd") {
    lines.push(
      "auth:",
      "  htpasswd:",
      `    realm: ${q("minibox-basic")}`,
      `    path: ${q(opts.auth.file)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Writes an htpasswd file with a bcrypt entry (the only hash distribution accepts). */
export async function writeHtpasswd(file: string, user: string, password: string) {
  const { stdout } = await run("htpasswd", ["-Bbn", user, password]);
  await writeFile(file, `${stdout.trim()}\n`);
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts one registry and resolves once GET /v2/ answers (200, or 401 with auth). */
export async function startRegistry(opts: {
  name: string;
  dir: string;
  storageDir: string;
  auth: RegistryAuth;
  port?: number;
  readyTimeoutMs?: number;
}): Promise<RegistryHandle> {
  const port = opts.port ?? (await freePort());
  const configFile = path.join(opts.dir, `registry-${opts.name}.yml`);
  const logFile = path.join(opts.dir, `registry-${opts.name}.log`);
  await writeFile(configFile, configYaml({ port, storageDir: opts.storageDir, auth: opts.auth }));

  const logFd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    // Not detached: it stays in our process group, so a Ctrl-C reaches it too.
    child = spawn(REGISTRY_BIN, ["serve", configFile], { stdio: ["ignore", logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${REGISTRY_BIN}`);
  const exited = waitExit(child);
  // Last resort if the runner exits without teardown: never leave a registry behind.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", onExit);

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    process.removeListener("exit", onExit);
    if (pidAlive(pid)) throw new Error(`registry ${opts.name} (pid ${pid}) still running`);
  };

  const url = `http://127.0.0.1:${port}/v2/`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = await readFile(logFile, "utf8").catch(() => "");
      throw new Error(`registry ${opts.name} exited early (${child.exitCode}): ${log.trim()}`);
    }
    try {
      const res = await httpRequest(url, { timeoutMs: 1000 });
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`registry ${opts.name} did not answer ${url}; see ${logFile}`);
    }
    await sleep(50);
  }

  return { name: opts.name, host: `127.0.0.1:${port}`, port, pid, configFile, logFile, stop };
}

export interface Registries {
  anon: RegistryHandle;
  token: RegistryHandle;
  basic: RegistryHandle;
  stop(): Promise<void>;
}

/** Starts the three registries (anonymous, token, htpasswd) over one storage root. */
export async function startRegistries(opts: {
  dir: string;
  storageDir: string;
  tokenRealm: string;
  tokenCertFile: string;
  user: string;
  password: string;
}): Promise<Registries> {
  const htpasswd = path.join(opts.dir, "htpasswd");
  await writeHtpasswd(htpasswd, opts.user, opts.password);
  const base = { dir: opts.dir, storageDir: opts.storageDir };
  const results = await Promise.allSettled([
    startRegistry({ ...base, name: "anon", auth: { kind: "none" } }),
    startRegistry({
      ...base,
      name: "token",
      auth: { kind: "token", realm: opts.tokenRealm, certFile: opts.tokenCertFile },
    }),
    startRegistry({ ...base, name: "basic", auth: { kind: "htpasswd", file: htpasswd } }),
  ]);
  const started = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    // Do not leak the ones that did start.
    await Promise.allSettled(started.map((r) => r.stop()));
    throw failed.reason;
  }
  const [anon, token, basic] = started;
  return {
    anon,
    token,
    basic,
    stop: async () => {
      const r = await Promise.allSettled([anon.stop(), token.stop(), basic.stop()]);
      const err = r.find((x): x is PromiseRejectedResult => x.status === "rejected");
      if (err) throw err.reason;
    },
  };
}
