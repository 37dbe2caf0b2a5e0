// "The internet" for network tests: a network namespace joined to the host
// by a veth on a /30 of 198.19.x (the benchmarking range 198.18.0.0/15),
// with busybox httpd serving hello.txt in it. It has no route to the
// containers' subnets, so a reply reaches a container only when its traffic
// was masqueraded to the host's address.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ip, linkExists } from "./netns.js";

export class Upstream {
  readonly ns: string;
  /** The host's end of the veth. */
  readonly link: string;
  /** x of 198.19.x.0/30 (tests may derive other test-only subnets from it). */
  readonly octet = 1 + ((randomBytes(1)[0] ?? 0) % 250);
  readonly hostIp = `198.19.${this.octet}.1`;
  readonly ip = `198.19.${this.octet}.2`;
  readonly greeting: string;
  readonly url: string;
  private httpd?: ChildProcess;
  private www?: string;

  constructor(private readonly prefix: string) {
    this.ns = `${prefix}up`;
    this.link = `${prefix}u0`;
    this.greeting = `hello from upstream ${prefix}\n`;
    this.url = `http://${this.ip}:8080/hello.txt`;
  }

  /** Make it and wait until its server answers (asked from inside itself). */
  async start(): Promise<void> {
    ip("netns", "add", this.ns);
    ip("-n", this.ns, "link", "set", "lo", "up");
    ip("link", "add", this.link, "type", "veth", "peer", "name", "eth0", "netns", this.ns);
    ip("addr", "add", `${this.hostIp}/30`, "dev", this.link);
    ip("link", "set", this.link, "up");
    ip("-n", this.ns, "addr", "add", `${this.ip}/30`, "dev", "eth0");
    ip("-n", this.ns, "link", "set", "eth0", "up");
    this.www = mkdtempSync(path.join(tmpdir(), `${this.prefix}-www-`));
    writeFileSync(path.join(this.www, "hello.txt"), this.greeting);
    // Its own process group, so that stop() kills exactly it and its children.
    this.httpd = spawn(
      "ip",
      ["netns", "exec", this.ns, "busybox", "httpd", "-f", "-p", `${this.ip}:8080`, "-h", this.www],
      { stdio: "ignore", detached: true },
    );
    for (let i = 0; i < 50; i++) {
      if (this.answers()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("upstream httpd did not start");
  }

  private answers(): boolean {
    const get = ["netns", "exec", this.ns, "busybox", "wget", "-q", "-O", "-", this.url];
    return spawnSync("ip", get).status === 0;
  }

  /** Everything start() made, also after a failed start. */
  stop(): void {
    if (this.httpd?.pid) process.kill(-this.httpd.pid, "SIGKILL");
    spawnSync("ip", ["netns", "del", this.ns]);
    if (linkExists(this.link)) spawnSync("ip", ["link", "del", this.link]);
    if (this.www) rmSync(this.www, { recursive: true, force: true });
  }
}
