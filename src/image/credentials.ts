/**
 * Registry credentials, stored the way Docker stores them: a JSON file
 * `{"auths": {"<registry>": {"auth": base64("user:password")}}}` with mode
 * 0600, so a user's existing habits (and tools that read that format) carry
 * over. The file lives in the minibox config directory: `--config DIR`,
 * `$MINIBOX_CONFIG`, or `~/.minibox`.
 *
 * `MINIBOX_USERNAME` / `MINIBOX_PASSWORD` in the environment take precedence
 * over the file, for CI jobs that should not write credentials to disk.
 */
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { MiniboxError } from "../errors.js";

export interface Credentials {
  username: string;
  password: string;
}

/** Docker keys Docker Hub's credentials by its historical v1 URL; so do we. */
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

export function credentialsKey(domain: string): string {
  return domain === "docker.io" ? DOCKER_HUB_KEY : domain;
}

export function defaultConfigDir(): string {
  return process.env.MINIBOX_CONFIG || join(homedir(), ".minibox");
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  [key: string]: unknown;
}

export class CredentialStore {
  constructor(readonly configDir: string = defaultConfigDir()) {}

  get path(): string {
    return join(this.configDir, "config.json");
  }

  private async read(): Promise<AuthFile> {
    try {
      return JSON.parse(await readFile(this.path, "utf8"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new MiniboxError(`cannot read ${this.path}: ${(err as Error).message}`);
    }
  }

  private async write(file: AuthFile): Promise<void> {
    await mkdir(this.configDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.path);
  }

  async get(domain: string): Promise<Credentials | undefined> {
    const { MINIBOX_USERNAME: username, MINIBOX_PASSWORD: password } = process.env;
    if (username && password) return { username, password };
    const entry = (await this.read()).auths?.[credentialsKey(domain)];
    if (!entry) return undefined;
    if (entry.username && entry.password)
      return { username: entry.username, password: entry.password };
    if (!entry.auth) return undefined;
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new MiniboxError(`malformed credentials for ${domain} in ${this.path}`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }

  async set(domain: string, creds: Credentials): Promise<void> {
    const file = await this.read();
    file.auths ??= {};
    file.auths[credentialsKey(domain)] = {
      auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64"),
    };
    await this.write(file);
  }

  /** Returns false when there was nothing to remove. */
  async remove(domain: string): Promise<boolean> {
    const file = await this.read();
    const key = credentialsKey(domain);
    if (!file.auths?.[key]) return false;
    delete file.auths[key];
    await this.write(file);
    return true;
  }
}
