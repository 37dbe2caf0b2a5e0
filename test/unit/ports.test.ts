import { describe, expect, test } from "vitest";
import {
  bindingsClash,
  checkPublishable,
  chooseBindings,
  displayPorts,
  everyInterfaceWarning,
  hostConfigPortBindings,
  launchRequests,
  needsRouteLocalnet,
  networkSettingsPorts,
  type PortBinding,
  type PortRequest,
  parseExposeSpecs,
  parseLocalPortRange,
  parsePortSpec,
  parsePortSpecs,
  portLines,
  portSummaries,
  psPorts,
  publishAllRequests,
  publishedPorts,
} from "../../src/runtime/network/ports.js";
import { holdPortSteps } from "../../src/runtime/plan/port-steps.js";
import { stepFields } from "../../src/runtime/plan/steps.js";

const req = (
  containerPort: number,
  hostPort = "",
  hostIp = "",
  proto: "tcp" | "udp" = "tcp",
): PortRequest => ({
  containerPort,
  proto,
  hostIp,
  hostPort,
});
const bind = (containerPort: number, hostPort: number, hostIp = "", proto: "tcp" | "udp" = "tcp") =>
  ({ containerPort, hostPort, hostIp, proto }) satisfies PortBinding;

describe("parseExposeSpecs (--expose)", () => {
  test("gives one port key per port, tcp unless named", () => {
    expect(parseExposeSpecs(["80", "53/UDP", "8000-8002"])).toEqual([
      "80/tcp",
      "53/udp",
      "8000/tcp",
      "8001/tcp",
      "8002/tcp",
    ]);
  });
  test("refuses what is not a port, a falling range or an unknown protocol", () => {
    expect(() => parseExposeSpecs(["http"])).toThrow("invalid range format for --expose: http");
    expect(() => parseExposeSpecs(["90-80"])).toThrow("invalid range format for --expose: 90-80");
    expect(() => parseExposeSpecs(["80/tcp/x"])).toThrow("invalid range format");
    expect(() => parseExposeSpecs(["80/icmp"])).toThrow("invalid proto: icmp");
  });
});

describe("parsePortSpec (nat.ParsePortSpec)", () => {
  test("container port only, host port, host IP, protocol", () => {
    expect(parsePortSpec("80")).toEqual([req(80)]);
    expect(parsePortSpec("8080:80")).toEqual([req(80, "8080")]);
    expect(parsePortSpec("127.0.0.1:9090:8080")).toEqual([req(8080, "9090", "127.0.0.1")]);
    expect(parsePortSpec("127.0.0.1::8080")).toEqual([req(8080, "", "127.0.0.1")]);
    expect(parsePortSpec("53:53/udp")).toEqual([req(53, "53", "", "udp")]);
    expect(parsePortSpec("53/UDP")).toEqual([req(53, "", "", "udp")]);
    expect(parsePortSpec("80/")).toEqual([req(80)]);
  });

  test("IPv6 host addresses in brackets (or bare, as nat joins the leading parts)", () => {
    expect(parsePortSpec("[::1]:9090:80")).toEqual([req(80, "9090", "::1")]);
    expect(parsePortSpec("[2001:db8::1]::80/udp")).toEqual([req(80, "", "2001:db8::1", "udp")]);
    expect(parsePortSpec("::1:9090:80")).toEqual([req(80, "9090", "::1")]);
  });

  test("ranges: equal lengths pair up", () => {
    expect(parsePortSpec("8000-8002:80-82")).toEqual([
      req(80, "8000"),
      req(81, "8001"),
      req(82, "8002"),
    ]);
    expect(parsePortSpecs(["80-81", "127.0.0.1:7000-7001:7000-7001/udp"])).toEqual([
      req(80),
      req(81),
      req(7000, "7000", "127.0.0.1", "udp"),
      req(7001, "7001", "127.0.0.1", "udp"),
    ]);
  });

  test("a host range for one container port is the range to pick a free port from", () => {
    expect(parsePortSpec("8000-8002:80")).toEqual([req(80, "8000-8002")]);
  });

  test("Docker's error messages", () => {
    const cases: [string, string][] = [
      [
        "8000-8002:80-81",
        "invalid ranges specified for container and host Ports: 80-81 and 8000-8002",
      ],
      ["1.2.3.4:80:", "no port specified: 1.2.3.4:80:<empty>"],
      ["", "no port specified: <empty>"],
      ["/tcp", "no port specified: /tcp<empty>"],
      ["80/sctx", "invalid proto: sctx"],
      ["80/sctp", "publishing sctp ports is not supported"],
      ["1.2.3:80:80", "invalid IP address: 1.2.3"],
      ["localhost:80:80", "invalid IP address: localhost"],
      ["[::1:80:80", "invalid IP address [::1: missing ']' in address"],
      ["8080:abc", "invalid containerPort: abc"],
      ["8080:70000", "invalid containerPort: 70000"],
      ["8080:90-80", "invalid containerPort: 90-80"],
      ["x:80", "invalid hostPort: x"],
      ["99999:80", "invalid hostPort: 99999"],
    ];
    for (const [spec, message] of cases) expect(() => parsePortSpec(spec), spec).toThrow(message);
  });
});

describe("-P", () => {
  test("every exposed port, ranges expanded, to any host port on every interface", () => {
    const exposed = { "80/tcp": {}, "53/udp": {}, "9000-9001/tcp": {} };
    expect(publishAllRequests(exposed)).toEqual([
      req(80),
      req(53, "", "", "udp"),
      req(9000),
      req(9001),
    ]);
  });

  test("ports an explicit -p publishes are left to it; no ExposedPorts, nothing", () => {
    expect(publishAllRequests({ "80/tcp": {}, "443/tcp": {} }, parsePortSpec("8080:80"))).toEqual([
      req(443),
    ]);
    expect(publishAllRequests(undefined)).toEqual([]);
  });
});

describe("the ps PORTS column (docker/cli DisplayablePorts)", () => {
  test("the talk's web server and a random port", () => {
    expect(displayPorts(portSummaries([bind(8080, 9090, "127.0.0.1")]))).toBe(
      "127.0.0.1:9090->8080/tcp",
    );
    expect(displayPorts(portSummaries([bind(80, 32768)]))).toBe("0.0.0.0:32768->80/tcp");
  });

  test("same host and container ports collapse into one range", () => {
    const b = [bind(8002, 8002), bind(8000, 8000), bind(8001, 8001)];
    expect(displayPorts(portSummaries(b))).toBe("0.0.0.0:8000-8002->8000-8002/tcp");
  });

  test("other host ports are listed one by one, after the groups (as Docker does)", () => {
    const b = [bind(80, 8000), bind(81, 8001), bind(82, 8002), bind(443, 443, "127.0.0.1")];
    expect(displayPorts(portSummaries(b))).toBe(
      "127.0.0.1:443->443/tcp, 0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp, 0.0.0.0:8002->82/tcp",
    );
  });

  test("exposed-only ports, grouped and with gaps; IPv6 in brackets", () => {
    const rows = portSummaries(
      [bind(80, 8080, "::")],
      ["80/tcp", "53/udp", "9000-9001/tcp", "9003/tcp"],
    );
    // Docker's own order: a group closed by a gap is written at once, the open ones at the end.
    expect(displayPorts(rows)).toBe("9000-9001/tcp, 53/udp, 9003/tcp, [::]:8080->80/tcp");
    expect(displayPorts([])).toBe("");
  });

  test("a gap closes a group at once, and the last group of each key follows", () => {
    const b = [bind(1, 1), bind(2, 2), bind(5, 5), bind(6, 6)];
    expect(displayPorts(portSummaries(b))).toBe("0.0.0.0:1-2->1-2/tcp, 0.0.0.0:5-6->5-6/tcp");
  });
});

describe("port C and inspect", () => {
  const bindings = [bind(8080, 9090, "127.0.0.1"), bind(53, 5353, "", "udp"), bind(80, 8000, "::")];

  test("port C: one line per binding, sorted by container port", () => {
    expect(portLines(bindings, "web")).toEqual([
      "53/udp -> 0.0.0.0:5353",
      "80/tcp -> [::]:8000",
      "8080/tcp -> 127.0.0.1:9090",
    ]);
  });

  test("port C 8080: the host addresses only; tcp by default; an error for a port not published", () => {
    expect(portLines(bindings, "web", "8080")).toEqual(["127.0.0.1:9090"]);
    expect(portLines(bindings, "web", "53/udp")).toEqual(["0.0.0.0:5353"]);
    expect(() => portLines(bindings, "web", "53")).toThrow(
      "no public port '53/tcp' published for web",
    );
  });

  test("NetworkSettings.Ports: bindings by port key, null for a port only exposed", () => {
    expect(networkSettingsPorts(bindings.slice(0, 1), ["8080/tcp", "9000/tcp"])).toEqual({
      "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "9090" }],
      "9000/tcp": null,
    });
    expect(networkSettingsPorts([bind(80, 32768), bind(80, 32769, "::")])).toEqual({
      "80/tcp": [
        { HostIp: "0.0.0.0", HostPort: "32768" },
        { HostIp: "::", HostPort: "32769" },
      ],
    });
  });

  test("HostConfig.PortBindings: the requests as given", () => {
    expect(
      hostConfigPortBindings(parsePortSpecs(["127.0.0.1:9090:8080", "80", "8000-8001:80"])),
    ).toEqual({
      "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "9090" }],
      "80/tcp": [
        { HostIp: "", HostPort: "" },
        { HostIp: "", HostPort: "8000-8001" },
      ],
    });
  });
});

describe("choosing host ports", () => {
  const free = async () => true;
  const RANGE: [number, number] = [32768, 60999];

  test("ip_local_port_range is read as the kernel writes it; a bad one falls back to Linux's default", () => {
    expect(parseLocalPortRange("32768\t60999\n")).toEqual([32768, 60999]);
    expect(parseLocalPortRange("1024 2048")).toEqual([1024, 2048]);
    expect(parseLocalPortRange(undefined)).toEqual([32768, 60999]);
    expect(parseLocalPortRange("9 1")).toEqual([32768, 60999]);
  });

  test("two bindings clash on the same protocol and port when their addresses overlap", () => {
    expect(bindingsClash(bind(80, 8080), bind(81, 8080, "127.0.0.1"))).toBe(true);
    expect(bindingsClash(bind(80, 8080, "127.0.0.1"), bind(81, 8080, "127.0.0.2"))).toBe(false);
    expect(bindingsClash(bind(80, 8080), bind(80, 8080, "", "udp"))).toBe(false);
    expect(bindingsClash(bind(80, 8080, "0.0.0.0"), bind(80, 8080, "10.0.0.1"))).toBe(true);
  });

  test("a fixed port is taken as asked, unless another container has it (Docker's words)", async () => {
    expect(await chooseBindings([req(80, "8080")], [], RANGE, async () => false)).toEqual([
      bind(80, 8080),
    ]);
    await expect(chooseBindings([req(80, "8080")], [bind(81, 8080)], RANGE, free)).rejects.toThrow(
      "Bind for 0.0.0.0:8080 failed: port is already allocated",
    );
    await expect(
      chooseBindings([req(80, "8080", "127.0.0.1"), req(81, "8080")], [], RANGE, free),
    ).rejects.toThrow("Bind for 0.0.0.0:8080 failed: port is already allocated");
  });

  test("any port: the first of ip_local_port_range that no container has and the probe finds free", async () => {
    const probed: number[] = [];
    const isFree = async (b: PortBinding) => {
      probed.push(b.hostPort);
      return b.hostPort !== 32769;
    };
    const got = await chooseBindings([req(80), req(81)], [bind(1, 32768)], RANGE, isFree);
    expect(got).toEqual([bind(80, 32770), bind(81, 32771)]);
    // Each request scans from the start again: a port busy for one may have been let go for the next.
    expect(probed).toEqual([32769, 32770, 32769, 32771]);
  });

  test("a host range gives the first free port in it; none free is an error", async () => {
    const isFree = async (b: PortBinding) => b.hostPort > 8000;
    expect(await chooseBindings([req(80, "8000-8002")], [], RANGE, isFree)).toEqual([
      bind(80, 8001),
    ]);
    await expect(
      chooseBindings([req(80, "8000-8001")], [bind(1, 8001)], RANGE, isFree),
    ).rejects.toThrow("Bind for 0.0.0.0:8000-8001 failed: port is already allocated");
    await expect(chooseBindings([req(80)], [], [5000, 5001], async () => false)).rejects.toThrow(
      "all ports are allocated",
    );
  });
});

describe("publishing", () => {
  test("bindings become DNAT rules to the container's address; every interface has no host address", () => {
    expect(
      publishedPorts([bind(8080, 9090, "127.0.0.1"), bind(53, 5353, "", "udp")], "172.30.0.2"),
    ).toEqual([
      {
        proto: "tcp",
        hostIp: "127.0.0.1",
        hostPort: 9090,
        containerIp: "172.30.0.2",
        containerPort: 8080,
      },
      { proto: "udp", hostPort: 5353, containerIp: "172.30.0.2", containerPort: 53 },
    ]);
  });

  test("route_localnet is needed for 127/8 and every-interface ports, not for another address", () => {
    const p = { proto: "tcp", hostPort: 1, containerIp: "172.30.0.2", containerPort: 1 } as const;
    expect(needsRouteLocalnet([])).toBe(false);
    expect(needsRouteLocalnet([{ ...p, hostIp: "198.18.0.1" }])).toBe(false);
    expect(needsRouteLocalnet([{ ...p, hostIp: "127.0.0.1" }])).toBe(true);
    expect(needsRouteLocalnet([p])).toBe(true);
  });

  test("one warning line for every port open on every interface, with the way to limit it", () => {
    expect(everyInterfaceWarning([bind(8080, 9090, "127.0.0.1")])).toBeUndefined();
    const line = everyInterfaceWarning([
      bind(80, 8081),
      bind(53, 5353, "", "udp"),
      bind(1, 2, "127.0.0.1"),
    ]);
    expect(line?.split("\n")).toHaveLength(1);
    expect(line).toContain("5353->53/udp, 8081->80/tcp published on every interface");
    expect(line).toContain("-p 127.0.0.1:5353:53/udp");
  });

  test("only IPv4 host addresses are publishable", () => {
    expect(() => checkPublishable(parsePortSpec("127.0.0.1:80:80"))).not.toThrow();
    expect(() => checkPublishable(parsePortSpec("[::1]:80:80"))).toThrow(
      "publishing on ::1: only IPv4 host addresses are supported",
    );
  });

  test("at start: the -p requests, and with -P every other exposed port", () => {
    const explicit = [req(80, "8080")];
    expect(launchRequests({ portRequests: explicit, exposedPorts: ["80/tcp", "53/udp"] })).toEqual(
      explicit,
    );
    expect(
      launchRequests({
        portRequests: explicit,
        publishAll: true,
        exposedPorts: ["80/tcp", "53/udp"],
      }),
    ).toEqual([...explicit, req(53, "", "", "udp")]);
  });

  test("ps shows ports only while the container runs", () => {
    const c = { ports: [bind(8080, 9090, "127.0.0.1")], exposedPorts: ["8080/tcp", "22/tcp"] };
    expect(psPorts({ ...c, running: true })).toBe("22/tcp, 127.0.0.1:9090->8080/tcp");
    expect(psPorts({ ...c, running: false })).toBe("");
  });
});

describe("hold-port steps", () => {
  test("one per binding, every interface as 0.0.0.0, in the executor's field order", () => {
    const steps = holdPortSteps([bind(8080, 9090, "127.0.0.1"), bind(53, 5353, "", "udp")]);
    expect(steps.map(stepFields)).toEqual([
      ["tcp", "127.0.0.1", "9090"],
      ["udp", "0.0.0.0", "5353"],
    ]);
    expect(steps[0]?.describe).toBe("hold tcp 127.0.0.1:9090 (published 8080/tcp)");
  });

  test("an IPv6 address or a port out of range is refused before the executor runs", () => {
    expect(() => holdPortSteps([bind(80, 80, "::1")])).toThrow("only IPv4 host addresses");
    expect(() => holdPortSteps([bind(80, 0)])).toThrow("invalid host port 0");
  });
});
