/**
 * A client for the OCI distribution protocol (the Docker Registry HTTP API
 * v2), written from scratch on node:http(s) (see http-client.ts for why not fetch).
 *
 * The protocol in brief:
 *   GET /v2/                                   ping; 401 tells how to authenticate
 *   GET /v2/<name>/manifests/<tag|digest>      a manifest or an index
 *   GET /v2/<name>/blobs/<digest>              a config or layer blob (maybe a redirect)
 * and for a push:
 *   HEAD /v2/<name>/blobs/<digest>             does the repository have this blob?
 *   POST /v2/<name>/blobs/uploads/[?mount=&from=]  mount from another repository (201),
 *                                              or open an upload session (202 + Location)
 *   PATCH <location>                           one chunk (Content-Range); a new Location
 *   PUT <location>?digest=<digest>             close the upload (with the last bytes, if any)
 *   PUT /v2/<name>/manifests/<tag>             the manifest, typed by Content-Type
 * Authentication is negotiated by challenge: a 401 carries
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…` (get a token from the
 * realm, with Basic credentials if we have them, and retry) or
 * `WWW-Authenticate: Basic realm=…` (send credentials on every request).
 */
import type { IncomingMessage } from "node:http";
import { MiniboxError } from "../errors.js";
import type { Credentials } from "./credentials.js";
import { sha256 } from "./digest.js";
import { type HttpResponse, sendRequest } from "./http-client.js";
import { MANIFEST_ACCEPT } from "./manifest.js";

export interface Endpoint {
  /** The registry as users name it: "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Where requests go: "https://registry-1.docker.io", "http://127.0.0.1:5000". */
  baseUrl: string;
  /** A pull-through mirror tried before the registry itself. */
  mirror?: boolean;
}

export interface EndpointOptions {
  insecureRegistries?: string[];
  /** A docker.io mirror URL ("http://127.0.0.1:5001" or "https://mirror.example"). */
  registryMirror?: string;
}

/** Docker Hub's API lives on another host than its name; tests may point it elsewhere. */
function dockerHubUrl(): string {
  return process.env.MINIBOX_DOCKER_HUB_URL || "https://registry-1.docker.io";
}

/**
 * Where to send requests for a registry, in the order to try them. Like
 * Docker, plain HTTP is used for loopback registries (and ones the user marks
 * insecure); everything else is HTTPS.
 */
export function resolveEndpoints(domain: string, options: EndpointOptions = {}): Endpoint[] {
  if (domain === "docker.io") {
    const hub: Endpoint = { domain, baseUrl: dockerHubUrl() };
    const mirror = options.registryMirror?.replace(/\/+$/, "");
    return mirror ? [{ domain, baseUrl: mirror, mirror: true }, hub] : [hub];
  }
  const scheme = isInsecure(domain, options.insecureRegistries ?? []) ? "http" : "https";
  return [{ domain, baseUrl: `${scheme}://${domain}` }];
}

function isInsecure(domain: string, insecure: string[]): boolean {
  const host = domain.startsWith("[")
    ? domain.slice(0, domain.indexOf("]") + 1)
    : domain.split(":")[0];
  if (host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host ?? ""))
    return true;
  return insecure.includes(domain) || insecure.includes(host ?? "");
}

/** A challenge from a WWW-Authenticate header. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(header: string): Challenge {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /([a-zA-Z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const m of (space < 0 ? "" : header.slice(space + 1)).matchAll(re)) {
    params[(m[1] as string).toLowerCase()] =
      m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
  }
  return { scheme, params };
}

/** Errors worth another try: the network dropped, or the server had a bad moment. */
export class TransientError extends Error {}

const RETRY_DELAYS_MS = [200, 500, 1000, 2000];

export async function withRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const delay = RETRY_DELAYS_MS[attempt];
      if (!(err instanceof TransientError) || delay === undefined) {
        if (err instanceof TransientError) throw new MiniboxError(`${what}: ${err.message}`);
        throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /**
   * The auth scope this request needs, e.g. "repository:library/alpine:pull";
   * several are separated by spaces (a cross-repository mount needs two).
   */
  scope: string;
  /** Which statuses the caller handles itself (others become errors). */
  accept?: number[];
  body?: Buffer | string;
}

export class RegistryClient {
  /** Bearer tokens, cached per (realm, service, scope) until they expire. */
  private tokens = new Map<string, CachedToken>();
  private basicAuth = false;
  /** Tokens actually fetched from a realm: for --trace and for tests of the cache. */
  tokenRequests = 0;

  constructor(
    readonly endpoint: Endpoint,
    private readonly credentials?: Credentials,
  ) {}

  get domain(): string {
    return this.endpoint.domain;
  }

  /**
   * One request with authentication negotiated as needed. Network failures
   * and 5xx answers are thrown as TransientError for the caller's retry loop.
   */
  async request(path: string, options: RequestOptions): Promise<HttpResponse> {
    // Upload sessions hand out absolute Locations; everything else is a path.
    const url = /^https?:\/\//.test(path) ? path : `${this.endpoint.baseUrl}${path}`;
    let response = await this.send(url, options, this.authorization(options.scope));
    if (response.status === 401) {
      const header = response.headers.get("www-authenticate");
      response.discard();
      if (!header) throw this.unauthorized(options.scope);
      const challenge = parseChallenge(header);
      const auth = await this.answer(challenge, options.scope);
      response = await this.send(url, options, auth);
      if (response.status === 401) {
        response.discard();
        throw this.unauthorized(options.scope);
      }
    }
    if (response.status >= 500) {
      response.discard();
      throw new TransientError(
        `registry ${this.domain} answered ${response.status} ${response.statusText}`,
      );
    }
    if (response.ok || options.accept?.includes(response.status)) return response;
    throw await this.errorFrom(response, options.scope);
  }

  private async send(url: string, options: RequestOptions, auth?: string): Promise<HttpResponse> {
    const headers: Record<string, string> = { "User-Agent": "minibox/0.1", ...options.headers };
    const target = new URL(url);
    // A Location may point at another host (a storage service): our token is not its business.
    if (auth && target.origin === new URL(this.endpoint.baseUrl).origin)
      headers.Authorization = auth;
    try {
      return await sendRequest(target, {
        method: options.method ?? "GET",
        headers,
        body: options.body,
      });
    } catch (err) {
      if (err instanceof MiniboxError) throw err;
      throw new TransientError(describeNetworkError(err, this.domain));
    }
  }

  /** The Authorization header we already have for a scope, if any. */
  private authorization(scope: string): string | undefined {
    if (this.basicAuth && this.credentials) return basicHeader(this.credentials);
    for (const [key, cached] of this.tokens) {
      if (key.endsWith(`|${scope}`) && cached.expiresAt > Date.now())
        return `Bearer ${cached.token}`;
    }
    return undefined;
  }

  private async answer(challenge: Challenge, scope: string): Promise<string> {
    if (challenge.scheme === "basic") {
      if (!this.credentials) throw this.unauthorized(scope);
      this.basicAuth = true;
      return basicHeader(this.credentials);
    }
    if (challenge.scheme !== "bearer") {
      throw new MiniboxError(
        `registry ${this.domain} asks for unsupported auth scheme ${challenge.scheme}`,
      );
    }
    const { realm, service } = challenge.params;
    if (!realm)
      throw new MiniboxError(`registry ${this.domain} sent a Bearer challenge without a realm`);
    const key = `${realm}|${service ?? ""}|${scope}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.fetchToken(realm, service, scope);
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scope: string,
  ): Promise<CachedToken> {
    const url = new URL(realm);
    if (service) url.searchParams.set("service", service);
    // One scope parameter per scope, as the token spec and Docker do.
    for (const one of scope.split(" ").filter(Boolean)) url.searchParams.append("scope", one);
    const headers: Record<string, string> = { "User-Agent": "minibox/0.1" };
    if (this.credentials) headers.Authorization = basicHeader(this.credentials);
    this.tokenRequests++;
    const response = await withRetries(`getting a token from ${url.host}`, async () => {
      let r: HttpResponse;
      try {
        r = await sendRequest(url, { headers });
      } catch (err) {
        throw new TransientError(describeNetworkError(err, url.host));
      }
      if (r.status >= 500) {
        r.discard();
        throw new TransientError(`token server answered ${r.status}`);
      }
      return r;
    });
    if (response.status === 401 || response.status === 403) {
      response.discard();
      throw new MiniboxError(
        `login to ${this.domain} failed: the token server rejected the credentials`,
        `check them with 'minibox login ${this.domain}'`,
      );
    }
    if (!response.ok) {
      response.discard();
      throw new MiniboxError(
        `token server ${url.host} answered ${response.status} ${response.statusText}`,
      );
    }
    const json = (await response.json()) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
    };
    const token = json.token ?? json.access_token;
    if (!token) throw new MiniboxError(`token server ${url.host} sent no token`);
    // The spec's default lifetime is 60 s; keep a margin so a token never expires mid-request.
    const lifetime = Math.max((json.expires_in ?? 60) - 10, 1);
    return { token, expiresAt: Date.now() + lifetime * 1000 };
  }

  private unauthorized(scope: string): MiniboxError {
    const repo = scope.split(":")[1] ?? "";
    const how = this.credentials
      ? "check your credentials and your access to it"
      : `run 'minibox login ${this.domain}' first`;
    return new MiniboxError(
      `access to ${this.domain}/${repo} denied: authentication required or insufficient rights`,
      how,
    );
  }

  /** Turn a registry's JSON error body into one clear line. */
  private async errorFrom(response: HttpResponse, scope: string): Promise<MiniboxError> {
    return this.errorFromBody(
      response.status,
      response.statusText,
      await response.text().catch(() => ""),
      scope,
    );
  }

  private errorFromBody(
    status: number,
    statusText: string,
    body: string,
    scope: string,
  ): MiniboxError {
    let codes: string[] = [];
    let detail = "";
    try {
      const json = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
      codes = (json.errors ?? []).map((e) => e.code ?? "");
      detail = (json.errors ?? [])
        .map((e) => e.message)
        .filter(Boolean)
        .join("; ");
    } catch {
      // not JSON: the status line is all we have
    }
    if (
      status === 403 ||
      status === 401 ||
      codes.includes("DENIED") ||
      codes.includes("UNAUTHORIZED")
    ) {
      return this.unauthorized(scope);
    }
    return new RegistryError(status, codes, detail || statusText);
  }

  // ---- API calls -------------------------------------------------------------

  /** GET /v2/: is this a registry, and do our credentials work? */
  async ping(): Promise<void> {
    const response = await withRetries(`cannot reach registry ${this.domain}`, () =>
      this.request("/v2/", { scope: "" }),
    );
    response.discard();
  }

  /** Fetch a manifest by tag or digest; returns the raw bytes, since digests are over bytes. */
  async getManifest(
    repository: string,
    reference: string,
  ): Promise<{ body: Buffer; contentType?: string; digest: string }> {
    // The body is read inside the retry: a connection dropped mid-body is retried too.
    const { response, body } = await withRetries(
      `cannot reach registry ${this.domain}`,
      async () => {
        const response = await this.request(`/v2/${repository}/manifests/${reference}`, {
          scope: `repository:${repository}:pull`,
          headers: { Accept: MANIFEST_ACCEPT },
        });
        return { response, body: await readBody(response) };
      },
    );
    const digest = sha256(body);
    if (reference.startsWith("sha256:") && reference !== digest) {
      throw new MiniboxError(
        `manifest digest mismatch for ${this.domain}/${repository}@${reference}: registry sent ${digest}`,
      );
    }
    return { body, contentType: response.headers.get("content-type") ?? undefined, digest };
  }

  /**
   * Start a blob download, from byte `offset` on (a Range request) when
   * resuming; the caller reads the body stream. Blobs are the bulk of a
   * pull, so they are read from node:http's stream as it arrives.
   */
  async openBlob(repository: string, digest: string, offset = 0): Promise<IncomingMessage> {
    const response = await this.request(`/v2/${repository}/blobs/${digest}`, {
      scope: `repository:${repository}:pull`,
      headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
    });
    return response.message;
  }

  /** A small blob (a config) whole, in memory; the caller verifies its digest. */
  async getBlob(repository: string, digest: string): Promise<Buffer> {
    const response = await this.request(`/v2/${repository}/blobs/${digest}`, {
      scope: `repository:${repository}:pull`,
    });
    return readBody(response);
  }

  // ---- push ------------------------------------------------------------------

  /** HEAD a blob: does `repository` already have it? */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const response = await this.request(`/v2/${repository}/blobs/${digest}`, {
      method: "HEAD",
      scope: pushScope(repository),
      accept: [404],
    });
    response.discard();
    return response.status === 200;
  }

  /** Open an upload session; returns its Location. */
  async startUpload(repository: string): Promise<string> {
    const response = await this.postUpload(repository, "", pushScope(repository));
    return this.uploadLocation(response);
  }

  /**
   * Ask the registry to link a blob from another of its repositories: 201
   * means done, no bytes sent; 202 means it could not (the blob is not
   * there, or we may not read it) and opened an ordinary session instead.
   * Needs a token for both repositories.
   */
  async mountBlob(
    repository: string,
    digest: string,
    from: string,
  ): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const scope = `${pushScope(repository)} repository:${from}:pull`;
    const response = await this.postUpload(repository, query, scope);
    if (response.status === 201) return { mounted: true };
    return { mounted: false, location: this.uploadLocation(response) };
  }

  private async postUpload(
    repository: string,
    query: string,
    scope: string,
  ): Promise<HttpResponse> {
    const response = await this.request(`/v2/${repository}/blobs/uploads/${query}`, {
      method: "POST",
      scope,
    });
    response.discard();
    return response;
  }

  private uploadLocation(response: HttpResponse): string {
    if (response.status !== 202) {
      throw new MiniboxError(
        `registry ${this.domain} answered ${response.status} to an upload request (expected 202)`,
      );
    }
    return this.location(response);
  }

  /**
   * Send bytes [offset, offset + data.length) of an upload. The registry
   * answers with the Location of the session's next step, which carries its
   * state: every request goes to the latest one.
   */
  async uploadChunk(
    repository: string,
    location: string,
    data: Buffer,
    offset: number,
  ): Promise<string> {
    const response = await this.request(location, {
      method: "PATCH",
      scope: pushScope(repository),
      headers: {
        // Content-Length is set from the body; distribution checks it against this.
        "Content-Type": "application/octet-stream",
        // distribution's form: inclusive, without a "bytes " unit.
        "Content-Range": `${offset}-${offset + data.length - 1}`,
      },
      body: data,
    });
    response.discard();
    if (response.status !== 202) {
      throw new MiniboxError(
        `registry ${this.domain} answered ${response.status} to an upload chunk (expected 202)`,
      );
    }
    return this.location(response);
  }

  /** Close an upload with the blob's digest (and its last bytes, if any); the registry verifies it. */
  async finishUpload(
    repository: string,
    location: string,
    digest: string,
    data: Buffer = Buffer.alloc(0),
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const response = await this.request(url.toString(), {
      method: "PUT",
      scope: pushScope(repository),
      headers: { "Content-Type": "application/octet-stream" },
      body: data,
    });
    response.discard();
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== digest) {
      throw new MiniboxError(
        `registry ${this.domain} stored blob ${digest} under digest ${stored}`,
      );
    }
  }

  /** PUT a manifest under a tag; returns the digest the registry reports (or ours). */
  async putManifest(
    repository: string,
    reference: string,
    body: Buffer,
    mediaType: string,
  ): Promise<string> {
    const response = await withRetries(`cannot reach registry ${this.domain}`, () =>
      this.request(`/v2/${repository}/manifests/${reference}`, {
        method: "PUT",
        scope: pushScope(repository),
        headers: { "Content-Type": mediaType },
        body,
      }),
    );
    response.discard();
    const digest = sha256(body);
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== digest) {
      throw new MiniboxError(
        `registry ${this.domain} stored the manifest under digest ${stored}, not ${digest}`,
      );
    }
    return digest;
  }

  /** Abandon an upload session (one a refused mount opened); the registry would expire it anyway. */
  async cancelUpload(repository: string, location: string): Promise<void> {
    try {
      const response = await this.request(location, {
        method: "DELETE",
        scope: pushScope(repository),
        accept: [404],
      });
      response.discard();
    } catch {
      // best effort: a leftover session costs the registry a little disk until it purges it
    }
  }

  /** An upload session's Location, relative or absolute, as an absolute URL. */
  private location(response: HttpResponse): string {
    const location = response.headers.get("location");
    if (!location) {
      throw new MiniboxError(`registry ${this.domain} opened an upload without a Location`);
    }
    return new URL(location, `${this.endpoint.baseUrl}/`).toString();
  }
}

/** A registry's own error, kept with its codes so callers can phrase it for the user. */
export class RegistryError extends MiniboxError {
  constructor(
    readonly status: number,
    readonly codes: string[],
    detail: string,
  ) {
    super(`registry answered ${status}: ${detail}`);
  }
  has(code: string): boolean {
    return this.codes.includes(code);
  }
}

/** A body cut short by a dropped connection is worth another try. */
async function readBody(response: HttpResponse): Promise<Buffer> {
  try {
    return await response.buffer();
  } catch (err) {
    throw new TransientError((err as Error).message);
  }
}

/** Pushing needs both actions: a push also reads (HEAD) what is there. */
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
}

/** A network failure's cause (the system error) is one level down; bring it up. */
export function describeNetworkError(err: unknown, host: string): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  const text = cause?.message ?? (err as Error).message;
  if (code === "ECONNREFUSED") return `connection to ${host} refused`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot resolve ${host} (${code})`;
  return text;
}
