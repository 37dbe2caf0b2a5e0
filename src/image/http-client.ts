/**
 * The registry client's HTTP: node:http(s) with keep-alive agents, and a
 * small response type with the parts of fetch's Response it uses.
 *
 * Why not fetch: Node's fetch is undici, compiled on first use. In a CLI
 * that runs once per command, the first fetch cost ~35 ms of wall time more
 * than the first http.get (measured: 46-57 ms against 13-17 ms, loopback
 * registry), and its web streams cost several times more CPU per byte than
 * node:http's. The keep-alive agents let the requests of one pull (token,
 * manifest, config, blobs) share connections instead of opening one each.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { MiniboxError } from "../errors.js";

/**
 * Idle sockets are unref'd by Node's agent, so a kept-alive connection never
 * holds the process open at exit.
 */
const httpAgent = new HttpAgent({ keepAlive: true });
const httpsAgent = new HttpsAgent({ keepAlive: true });

/** A connection that goes silent this long is as good as dropped (retried by callers). */
const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** A network failure (no HTTP answer at all); `cause` carries the system error. */
export class NetworkError extends Error {
  constructor(
    message: string,
    override readonly cause: NodeJS.ErrnoException,
  ) {
    super(message);
  }
}

/** An HTTP answer whose body has not been read yet. */
export class HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };

  constructor(
    /** The body as a node stream: read it, or call discard(). */
    readonly message: IncomingMessage,
    /** The URL that answered (after redirects). */
    readonly url: URL,
  ) {
    this.status = message.statusCode ?? 0;
    this.statusText = message.statusMessage ?? "";
    const raw = message.headers;
    this.headers = {
      get(name: string): string | null {
        const value = raw[name.toLowerCase()];
        if (value === undefined) return null;
        return Array.isArray(value) ? value.join(", ") : value;
      },
    };
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The whole body; a connection dropped before its end rejects. */
  async buffer(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.message) chunks.push(chunk as Buffer);
    if (!this.message.complete) throw new Error("the connection closed before the body's end");
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return (await this.buffer()).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** Read and drop the body, so the connection goes back to the agent for the next request. */
  discard(): void {
    this.message.resume();
  }
}

/**
 * One request, following redirects (blob stores often answer a GET with
 * one). Authorization is not sent to another origin: a registry's token is
 * no business of the storage service it redirects to. As with fetch, a 303
 * (and a 301/302 to a POST) turns into a GET without a body.
 */
export function sendRequest(
  url: URL,
  options: HttpRequestOptions,
  redirects = MAX_REDIRECTS,
): Promise<HttpResponse> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) {
    // distribution checks Content-Length against Content-Range on PATCH.
    headers["Content-Length"] = String(Buffer.byteLength(options.body));
  } else if (method !== "GET" && method !== "HEAD") {
    headers["Content-Length"] = "0";
  }
  const https = url.protocol === "https:";
  const send = https ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      { method, headers, agent: https ? httpsAgent : httpAgent },
      (message) => {
        const status = message.statusCode ?? 0;
        const location = message.headers.location;
        if (![301, 302, 303, 307, 308].includes(status) || !location) {
          resolve(new HttpResponse(message, url));
          return;
        }
        message.resume();
        if (redirects === 0) {
          reject(new MiniboxError(`${url.host} redirected too many times`));
          return;
        }
        const next = new URL(location, url);
        const sameOrigin = next.origin === url.origin;
        const { Authorization: _auth, ...withoutAuth } = options.headers ?? {};
        const toGet = status === 303 || ((status === 301 || status === 302) && method === "POST");
        resolve(
          sendRequest(
            next,
            {
              method: toGet ? "GET" : method,
              headers: sameOrigin ? options.headers : withoutAuth,
              body: toGet ? undefined : options.body,
            },
            redirects - 1,
          ),
        );
      },
    );
    request.setTimeout(IDLE_TIMEOUT_MS, () =>
      request.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    request.on("error", (err: NodeJS.ErrnoException) => reject(new NetworkError(err.message, err)));
    request.end(options.body);
  });
}
