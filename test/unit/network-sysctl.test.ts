// Saving and restoring ip_forward and route_localnet: the plan as pure
// functions, and the file handling on a fake /proc/sys in a temporary
// directory (no root, no host setting touched).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  enableForwarding,
  forwardingKeys,
  IP_FORWARD,
  planEnable,
  planRestore,
  readSaved,
  restoreForwarding,
  restoreSome,
  routeLocalnetKey,
} from "../../src/runtime/network/sysctl.js";

describe("the plan", () => {
  test("keys: ip_forward, and route_localnet per device", () => {
    expect(forwardingKeys({})).toEqual(["net/ipv4/ip_forward"]);
    expect(forwardingKeys({ routeLocalnet: ["minibox0"] })).toEqual([
      "net/ipv4/ip_forward",
      "net/ipv4/conf/minibox0/route_localnet",
    ]);
  });

  test("records the value found and writes 1 where it is not 1", () => {
    const keys = forwardingKeys({ routeLocalnet: ["br0"] });
    const plan = planEnable(keys, { [IP_FORWARD]: "0", [routeLocalnetKey("br0")]: "1" }, {});
    expect(plan.saved).toEqual({ [IP_FORWARD]: "0", [routeLocalnetKey("br0")]: "1" });
    expect(plan.writes).toEqual([[IP_FORWARD, "1"]]);
  });

  test("never records minibox's own 1 over the host's original value", () => {
    const plan = planEnable([IP_FORWARD], { [IP_FORWARD]: "1" }, { [IP_FORWARD]: "0" });
    expect(plan.saved).toEqual({ [IP_FORWARD]: "0" });
    expect(plan.writes).toEqual([]);
  });

  test("a setting that does not exist (device gone) is neither recorded nor written", () => {
    const plan = planEnable([IP_FORWARD, routeLocalnetKey("gone")], { [IP_FORWARD]: "0" }, {});
    expect(plan.saved).toEqual({ [IP_FORWARD]: "0" });
    expect(plan.writes).toEqual([[IP_FORWARD, "1"]]);
  });

  test("restore writes every recorded value back", () => {
    expect(planRestore({ [IP_FORWARD]: "0", [routeLocalnetKey("b")]: "0" })).toEqual([
      [IP_FORWARD, "0"],
      [routeLocalnetKey("b"), "0"],
    ]);
  });
});

describe("on a fake /proc/sys", () => {
  let dir: string;
  let procSys: string;
  let state: string;
  const set = (key: string, value: string) => {
    mkdirSync(dirname(join(procSys, key)), { recursive: true });
    writeFileSync(join(procSys, key), `${value}\n`);
  };
  const get = (key: string) => readFileSync(join(procSys, key), "utf8").trim();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "mbt-sysctl-"));
    procSys = join(dir, "proc-sys");
    state = join(dir, "host-sysctls.json");
    set(IP_FORWARD, "0");
    set(routeLocalnetKey("br0"), "0");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("enable saves, sets 1; enabling again keeps the original; restore puts it back", () => {
    enableForwarding(state, { procSys, routeLocalnet: ["br0"] });
    expect(get(IP_FORWARD)).toBe("1");
    expect(get(routeLocalnetKey("br0"))).toBe("1");
    expect(readSaved(state)).toEqual({ [IP_FORWARD]: "0", [routeLocalnetKey("br0")]: "0" });
    enableForwarding(state, { procSys });
    expect(readSaved(state)).toEqual({ [IP_FORWARD]: "0", [routeLocalnetKey("br0")]: "0" });
    restoreForwarding(state, { procSys });
    expect(get(IP_FORWARD)).toBe("0");
    expect(get(routeLocalnetKey("br0"))).toBe("0");
    expect(existsSync(state)).toBe(false);
  });

  test("restore without a state file does nothing; a host already forwarding stays so", () => {
    restoreForwarding(state, { procSys });
    expect(get(IP_FORWARD)).toBe("0");
    set(IP_FORWARD, "1");
    enableForwarding(state, { procSys });
    restoreForwarding(state, { procSys });
    expect(get(IP_FORWARD)).toBe("1");
  });

  test("a device removed before restore is skipped, the rest restored", () => {
    enableForwarding(state, { procSys, routeLocalnet: ["br0"] });
    rmSync(join(procSys, "net/ipv4/conf/br0"), { recursive: true });
    restoreForwarding(state, { procSys });
    expect(get(IP_FORWARD)).toBe("0");
    expect(existsSync(join(procSys, routeLocalnetKey("br0")))).toBe(false);
    expect(existsSync(state)).toBe(false);
  });

  test("restoreSome puts back only the keys asked (route_localnet no longer needed), keeping ip_forward's record", () => {
    enableForwarding(state, { procSys, routeLocalnet: ["br0"] });
    restoreSome(state, [routeLocalnetKey("br0"), routeLocalnetKey("other")], { procSys });
    expect(get(routeLocalnetKey("br0"))).toBe("0");
    expect(get(IP_FORWARD)).toBe("1");
    expect(readSaved(state)).toEqual({ [IP_FORWARD]: "0" });
    // Needed again later: recorded again from the value found (0), not minibox's 1.
    enableForwarding(state, { procSys, routeLocalnet: ["br0"] });
    expect(readSaved(state)).toEqual({ [IP_FORWARD]: "0", [routeLocalnetKey("br0")]: "0" });
  });
});
