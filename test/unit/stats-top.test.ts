// The figures of `stats` and the rows of `top`, from readings given here.
import { describe, expect, test } from "vitest";
import { binarySize, humanSize } from "../../src/cli/format.js";
import { computeStats, parseNetDev } from "../../src/runtime/stats.js";
import { parseProcess, readProcess } from "../../src/runtime/top.js";

describe("stats", () => {
  const c = { id: "a".repeat(64), name: "web" };
  const reading = (cpuUsageNs: number, memoryUsage = 0, memoryLimit = 0, pids = 0) => ({
    cpuUsageNs,
    memoryUsage,
    memoryLimit,
    pids,
  });

  test("CPU % is the CPU time used between the readings over the time between them", () => {
    const s = computeStats(c, reading(1_000_000_000), reading(1_250_000_000), 500_000_000);
    expect(s.cpuPercent).toBe(50);
    // Two CPUs busy: above 100, as Docker shows it.
    expect(computeStats(c, reading(0), reading(1e9), 5e8).cpuPercent).toBe(200);
  });

  test("memory % of the limit, PIDs, from the second reading", () => {
    const s = computeStats(c, reading(0), reading(0, 25 * 2 ** 20, 100 * 2 ** 20, 3), 5e8);
    expect(s).toMatchObject({
      id: c.id,
      name: "web",
      memoryUsage: 25 * 2 ** 20,
      memoryLimit: 100 * 2 ** 20,
      memoryPercent: 25,
      pids: 3,
    });
  });

  test("a cgroup gone between the readings: zeros, not NaN", () => {
    for (const s of [
      computeStats(c, undefined, undefined, 5e8),
      computeStats(c, reading(5), undefined, 5e8),
      computeStats(c, undefined, reading(5, 10, 0, 1), 5e8),
    ]) {
      expect(s.cpuPercent).toBe(0);
      expect(s.memoryPercent).toBe(0);
    }
  });

  test("memory in binary units, as docker stats prints it", () => {
    expect(binarySize(0)).toBe("0B");
    expect(binarySize(1023)).toBe("1023B");
    expect(binarySize(1536 * 1024)).toBe("1.5MiB");
    expect(binarySize(80 * 2 ** 20)).toBe("80MiB");
    expect(binarySize(2 ** 40 * 3)).toBe("3TiB");
  });
});

describe("top", () => {
  const status = [
    "Name:\tsleep",
    "State:\tS (sleeping)",
    "Tgid:\t4242",
    "NSpid:\t4242\t7",
    "PPid:\t4200",
    "Uid:\t100000\t100000\t100000\t100000",
    "Gid:\t100000\t100000\t100000\t100000",
  ].join("\n");

  test("host uid and PIDs, the PID inside the namespace, state letter, command line", () => {
    expect(parseProcess(4242, status, "sleep\u000060\u0000")).toEqual({
      uid: "100000",
      pid: 4242,
      ppid: "4200",
      containerPid: "7",
      state: "S",
      command: "sleep 60",
    });
  });

  test("a process outside any PID namespace has one NSpid: it is its own container PID", () => {
    const row = parseProcess(1, status.replace("NSpid:\t4242\t7", "NSpid:\t1"), "");
    expect(row.containerPid).toBe("1");
    expect(row.command).toBe("");
  });

  test("a live process is read from /proc; one that is gone gives no row", () => {
    expect(readProcess(process.pid)?.pid).toBe(process.pid);
    expect(readProcess(2 ** 22 + 1)).toBeUndefined();
  });
});

describe("network I/O", () => {
  const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    1450      12    0    0    0     0          0         0      648       7    0    0    0     0       0          0
  eth1:      50       1    0    0    0     0          0         0       52       1    0    0    0     0       0          0
`;

  test("/proc/PID/net/dev: bytes summed over every interface but lo", () => {
    expect(parseNetDev(netDev)).toEqual({ rx: 1500, tx: 700 });
    expect(parseNetDev(netDev.split("\n").slice(0, 3).join("\n"))).toEqual({ rx: 0, tx: 0 });
  });

  test("NET I/O in decimal units with 3 significant digits, as docker stats prints it", () => {
    expect(humanSize(1450, 3)).toBe("1.45kB");
    expect(humanSize(648, 3)).toBe("648B");
    expect(humanSize(0, 3)).toBe("0B");
    expect(humanSize(3072)).toBe("3.072kB");
  });
});
