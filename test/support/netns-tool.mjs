// Run inside a test network namespace (`ip netns exec NS node netns-tool.mjs
// OP JSON`): Node's threads cannot be moved into a namespace one by one, so
// anything that must happen *in* a namespace — applying minibox's firewall
// through libnftables, its sysctls, a server, a client — is a process of its
// own started there. Prints one JSON line with the result.
//
//   apply DESC | remove | list          firewall.ts on the built dist/
//   enable {state, routeLocalnet} | restore {state}    sysctl.ts
//   nft {cmd}               run an nft command (text or JSON) through libnftables
//   forward-drops           host-forward.ts' forwardDropChains on `list ruleset`
//   serve {tcp, udp}        echo the peer's address to each connection/datagram;
//                           prints {"ready":true} once listening, runs until killed
//   tcp {host, port, timeoutMs}   what the server sent, or {"error": code}
//   udp {host, port, timeoutMs}
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { connect, createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist");
const [op, arg] = process.argv.slice(2);
const input = arg ? JSON.parse(arg) : {};
const print = (v) => process.stdout.write(`${JSON.stringify(v)}\n`);

async function dist(module) {
  const file = path.join(DIST, module);
  if (!existsSync(file)) throw new Error(`${file} missing: run npm run build`);
  return import(file);
}

function serve({ tcp, udp }) {
  let pending = (tcp ? 1 : 0) + (udp ? 1 : 0);
  const ready = () => --pending === 0 && print({ ready: true });
  if (tcp) {
    createServer((s) => s.end(JSON.stringify({ peer: s.remoteAddress }))).listen(
      tcp,
      "0.0.0.0",
      ready,
    );
  }
  if (udp) {
    const sock = createSocket("udp4");
    sock.on("message", (_m, r) =>
      sock.send(JSON.stringify({ peer: r.address }), r.port, r.address),
    );
    sock.bind(udp, ready);
  }
}

function tcpClient({ host, port, timeoutMs = 2000 }) {
  const s = connect({ host, port });
  let data = "";
  const timer = setTimeout(() => {
    print({ error: "timeout" });
    process.exit(0);
  }, timeoutMs);
  s.on("data", (d) => {
    data += d;
  });
  s.on("end", () => {
    clearTimeout(timer);
    print(JSON.parse(data));
  });
  s.on("error", (e) => {
    clearTimeout(timer);
    print({ error: e.code });
  });
}

function udpClient({ host, port, timeoutMs = 2000 }) {
  const sock = createSocket("udp4");
  const timer = setTimeout(() => {
    print({ error: "timeout" });
    process.exit(0);
  }, timeoutMs);
  sock.on("message", (m) => {
    clearTimeout(timer);
    print(JSON.parse(String(m)));
    sock.close();
  });
  sock.send("ping", port, host);
}

const fw = () => dist("runtime/network/firewall.js");
const sysctl = () => dist("runtime/network/sysctl.js");
const nft = () => dist("sys/nftables.js");
const ops = {
  apply: async () => (await fw()).applyFirewall(input),
  remove: async () => (await fw()).removeFirewall(),
  list: async () => ({ table: (await fw()).currentFirewall() ?? null }),
  enable: async () => (await sysctl()).enableForwarding(input.state, input),
  restore: async () => (await sysctl()).restoreForwarding(input.state),
  nft: async () => ({ output: (await nft()).runNft(input.cmd) }),
  "forward-drops": async () => ({
    drops: (await dist("runtime/network/host-forward.js"))
      .forwardDropChains((await nft()).listNft("list ruleset"))
      .map((c) => `${c.family} ${c.table} ${c.name}`),
  }),
  serve: async () => serve(input),
  tcp: async () => tcpClient(input),
  udp: async () => udpClient(input),
};

try {
  const result = await ops[op]();
  if (!["serve", "tcp", "udp"].includes(op)) print(result ?? { ok: true });
} catch (e) {
  print({ error: String(e?.message ?? e) });
  process.exitCode = 1;
}
