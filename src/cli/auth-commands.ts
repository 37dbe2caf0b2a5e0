/** login / logout: credentials checked against the registry, stored like Docker's. */
import type { Command } from "commander";
import { MiniboxError } from "../errors.js";
import { RegistryClient, resolveEndpoints } from "../image/registry.js";
import { contextFrom } from "./context.js";

/** Docker's default registry when `login` is given no server. */
const DEFAULT_SERVER = "docker.io";

export function registerAuthCommands(program: Command): void {
  registerLogin(program);
  registerLogout(program);
}

function registerLogin(program: Command): void {
  program
    .command("login")
    .description("Log in to a registry (credentials are checked, then stored with mode 0600)")
    .argument("[server]", "registry host[:port]", DEFAULT_SERVER)
    .option("-u, --username <name>")
    .option(
      "-p, --password <password>",
      "insecure: visible in the process list; prefer --password-stdin",
    )
    .option("--password-stdin", "read the password from standard input")
    .action(
      async (
        server: string,
        opts: { username?: string; password?: string; passwordStdin?: boolean },
        cmd: Command,
      ) => {
        const ctx = contextFrom(cmd);
        const domain = normaliseServer(server);
        const username = opts.username ?? (await prompt("Username: "));
        let password = opts.password;
        if (opts.passwordStdin) password = (await readAll(process.stdin)).replace(/\r?\n$/, "");
        if (password === undefined) password = await prompt("Password: ");
        if (!username || !password) throw new MiniboxError("username and password are required");
        const endpoint = resolveEndpoints(domain, ctx.endpoints).find((e) => !e.mirror);
        if (!endpoint) throw new MiniboxError(`no endpoint for ${domain}`);
        const client = new RegistryClient(endpoint, { username, password });
        await client.ping();
        await ctx.credentials.set(domain, { username, password });
        console.log("Login Succeeded");
      },
    );
}

function registerLogout(program: Command): void {
  program
    .command("logout")
    .description("Forget the credentials stored for a registry")
    .argument("[server]", "registry host[:port]", DEFAULT_SERVER)
    .action(async (server: string, _opts: unknown, cmd: Command) => {
      const ctx = contextFrom(cmd);
      const domain = normaliseServer(server);
      const removed = await ctx.credentials.remove(domain);
      console.log(
        removed ? `Removing login credentials for ${domain}` : `Not logged in to ${domain}`,
      );
    });
}

/** Accept what people paste: "https://127.0.0.1:5000/", "index.docker.io". */
function normaliseServer(server: string): string {
  const host = server.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  if (host === "index.docker.io" || host === "registry-1.docker.io") return "docker.io";
  if (!host) throw new MiniboxError(`invalid registry address ${JSON.stringify(server)}`);
  return host;
}

async function prompt(question: string): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new MiniboxError(
      "no credentials given and standard input is not a terminal",
      "use -u and --password-stdin",
    );
  }
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}
