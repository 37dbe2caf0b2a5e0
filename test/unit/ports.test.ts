import { describe, expect, test } from "vitest";
import {
  displayPorts,
  hostConfigPortBindings,
  networkSettingsPorts,
  type PortBinding,
  parsePortSpec,
  parsePortSpecs,
  portLines,
  portSummaries,
  publishAllRequests,
} from "../../src/runtime/network/ports.js";

const req = (containerPort: number, hostPort = "", hostIp = "", proto = "tcp") => ({
  containerPort,
  proto,
  hostIp,
  hostPort,
});
const bind = (containerPort: number, hostPort: number, hostIp = "", proto: "tcp" | "udp" = "tcp") =>
  ({ containerPort, hostPort, hostIp, proto }) satisfies PortBinding;

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
