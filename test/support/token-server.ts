// A Docker token server (https://distribution.github.io/distribution/spec/auth/token/)
// for the `token` registry: small enough to read, strict enough that
// distribution 2.8 accepts its JWTs (registry/auth/token/token.go verifies the
// x5c chain against rootcertbundle, then iss, aud, exp/nbf and the signature).
import { createSign, randomUUID, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { run } from "./util.js";

export const TEST_USER = "testuser";
export const TEST_PASSWORD = "testpass";
export const TOKEN_SERVICE = "minibox-test-registry";
export const TOKEN_ISSUER = "minibox-test-issuer";
/** Repositories under this prefix are refused to anonymous users. */
export const PRIVATE_PREFIX = "private/";

export interface TokenRequestLog {
  account: string;
  scopes: string[];
  status: number;
}

export interface TokenServer {
  url: string;
  port: number;
  /** PEM certificate the registry trusts (its rootcertbundle). */
  certFile: string;
  /** Every /token request seen so far (in this process). */
  requests: TokenRequestLog[];
  stop(): Promise<void>;
}

/** Creates the signing key and its self-signed certificate with openssl. */
export async function makeSigningCert(dir: string): Promise<{ keyFile: string; certFile: string }> {
  const keyFile = path.join(dir, "token-key.pem");
  const certFile = path.join(dir, "token-cert.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=minibox-test-token",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  return { keyFile, certFile };
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** scope = "repository:NAME:pull,push" (NAME may contain ':' only with a port; split from both ends). */
function parseScope(scope: string): Access | null {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || last === first) return null;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter(Boolean),
  };
}

/** The policy: the test user may do anything to repositories; anonymous may pull public ones. */
function grant(requested: Access, user: string): Access {
  let allowed: string[] = [];
  if (requested.type === "repository") {
    if (user === TEST_USER) allowed = ["pull", "push", "delete", "*"];
    else if (!requested.name.startsWith(PRIVATE_PREFIX)) allowed = ["pull"];
  }
  return { ...requested, actions: requested.actions.filter((a) => allowed.includes(a)) };
}

export async function startTokenServer(opts: { dir: string; port?: number }): Promise<TokenServer> {
  const { keyFile, certFile } = await makeSigningCert(opts.dir);
  const keyPem = await readFile(keyFile, "utf8");
  const certDer = new X509Certificate(await readFile(certFile)).raw.toString("base64");
  const requests: TokenRequestLog[] = [];

  const sign = (claims: object) => {
    const header = b64url(JSON.stringify({ typ: "JWT", alg: "RS256", x5c: [certDer] }));
    const payload = b64url(JSON.stringify(claims));
    const signature = createSign("RSA-SHA256").update(`${header}.${payload}`).sign(keyPem);
    return `${header}.${payload}.${b64url(signature)}`;
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, extra = {}) => {
    res.writeHead(status, { "Content-Type": "application/json", ...extra });
    res.end(JSON.stringify(body));
  };

  /** Returns the authenticated user, "" for anonymous, null for bad credentials. */
  const authenticate = (req: http.IncomingMessage): string | null => {
    const h = req.headers.authorization;
    if (!h) return "";
    const m = /^Basic\s+(.+)$/i.exec(h);
    if (!m) return null;
    const decoded = Buffer.from(m[1], "base64").toString();
    const colon = decoded.indexOf(":");
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    return colon > 0 && user === TEST_USER && pass === TEST_PASSWORD ? user : null;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname === "/stats" && req.method === "GET") {
      // Test workers run in other processes: they read the counter over loopback.
      send(res, 200, { requests: requests.length, log: requests });
      return;
    }
    if (url.pathname === "/stats/reset" && req.method === "POST") {
      requests.length = 0;
      send(res, 200, { requests: 0 });
      return;
    }
    if (url.pathname !== "/token" || req.method !== "GET") {
      send(res, 404, { errors: [{ code: "NOT_FOUND", message: "only GET /token" }] });
      return;
    }
    const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ").filter(Boolean));
    const user = authenticate(req);
    const entry: TokenRequestLog = { account: user ?? "(bad credentials)", scopes, status: 0 };
    requests.push(entry);
    if (user === null) {
      entry.status = 401;
      send(
        res,
        401,
        { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] },
        { "WWW-Authenticate": 'Basic realm="minibox-test-token"' },
      );
      return;
    }
    const service = url.searchParams.get("service") ?? TOKEN_SERVICE;
    const access = scopes
      .map(parseScope)
      .filter((a): a is Access => a !== null)
      .map((a) => grant(a, user));
    const now = Math.floor(Date.now() / 1000);
    const token = sign({
      iss: TOKEN_ISSUER,
      sub: user,
      aud: service,
      exp: now + 300,
      // Back-dated so a registry clock a second behind still accepts it.
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    entry.status = 200;
    send(res, 200, {
      token,
      access_token: token,
      expires_in: 300,
      issued_at: new Date(now * 1000).toISOString(),
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    certFile,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
