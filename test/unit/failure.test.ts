import { describe, expect, it } from "vitest";
import { explainFailure } from "../../src/runtime/failure.js";
import type { PlanStep } from "../../src/runtime/plan.js";

const failure = (call: string, errno: number, step?: PlanStep, detail = "") => ({
  call,
  errno,
  step,
  detail,
});

describe("explainFailure (run and exec alike)", () => {
  it("execve: 127 when not found, 126 when it cannot run", () => {
    expect(explainFailure(failure("execve", 2), "nope", 125)).toEqual({
      code: 127,
      message: 'exec: "nope": executable file not found in $PATH',
    });
    expect(explainFailure(failure("execve", 2), "/bin/nope", 126)).toEqual({
      code: 127,
      message: 'exec: "/bin/nope": no such file or directory',
    });
    expect(explainFailure(failure("execve", 13), "/etc/passwd", 125)).toEqual({
      code: 126,
      message: 'exec: "/etc/passwd": permission denied',
    });
  });

  it("another step: the step, the call, the error; 125 for run, 126 for exec", () => {
    const step = { op: "chdir", value: "/x", describe: "chdir /x", args: ["/x"] } as PlanStep;
    expect(explainFailure(failure("chdir", 2, step), "sh", 125)).toEqual({
      code: 125,
      message: "chdir /x: chdir: No such file or directory",
    });
    expect(explainFailure(failure("chdir", 2, step), "sh", 126).code).toBe(126);
  });

  it("a kernel without openat2: the root step says what is needed", () => {
    const step = { op: "root", value: "/c/rootfs", describe: "paths under /c/rootfs", args: [] };
    const why = "this kernel has no openat2 (Linux 5.6 or later is needed)";
    expect(explainFailure(failure("openat2", 38, step as PlanStep, why), "sh", 125)).toEqual({
      code: 125,
      message: `paths under /c/rootfs: ${why}`,
    });
  });

  it("the executor's own death, and a filesystem that cannot be idmapped", () => {
    expect(
      explainFailure(failure("executor", 0, undefined, "killed by SIGKILL"), "sh", 125),
    ).toEqual({ code: 125, message: "the executor died (killed by SIGKILL)" });
    const step = {
      op: "idmap-mount",
      source: "/nfs",
      target: "/c/rootfs/data",
      describe: "idmapped bind mount of /nfs",
      args: ["/nfs", "/c/rootfs/data"],
    } as PlanStep;
    expect(explainFailure(failure("mount_setattr", 22, step, "/nfs"), "sh", 125).message).toBe(
      "idmapped bind mount of /nfs: the filesystem of /nfs does not support idmapped mounts (Invalid argument); use --userns=host for this container",
    );
  });

  it("a network step: the netlink request, the device and the error; a malformed field", () => {
    const step = {
      op: "veth",
      describe: "veth mbx1 on bridge br0",
      args: [],
    } as unknown as PlanStep;
    const detail = "RTM_NEWLINK veth mbx1 (peer eth0)";
    expect(explainFailure(failure("netlink", 17, step, detail), "sh", 125)).toEqual({
      code: 125,
      message:
        "veth mbx1 on bridge br0: netlink RTM_NEWLINK veth mbx1 (peer eth0): File already exists",
    });
    expect(explainFailure(failure("parse", 22, step, "MAC address zz"), "sh", 125)).toEqual({
      code: 125,
      message: "veth mbx1 on bridge br0: invalid MAC address zz",
    });
  });

  it("a --ulimit the kernel refused: EPERM says why (CAP_SYS_RESOURCE, fs.nr_open)", () => {
    const step = {
      op: "rlimit",
      describe: "setrlimit RLIMIT_NOFILE soft=10 hard=2000000",
      args: [],
    } as unknown as PlanStep;
    const eperm = explainFailure(failure("setrlimit", 1, step, "7"), "sh", 125);
    expect(eperm.code).toBe(125);
    expect(eperm.message).toBe(
      "setrlimit RLIMIT_NOFILE soft=10 hard=2000000: setrlimit: Operation not permitted (a hard limit above minibox's own needs --userns=host; nofile can never exceed /proc/sys/fs/nr_open)",
    );
    expect(explainFailure(failure("setrlimit", 22, step, "7"), "sh", 125).message).toBe(
      "setrlimit RLIMIT_NOFILE soft=10 hard=2000000: setrlimit: Invalid argument",
    );
  });
});
