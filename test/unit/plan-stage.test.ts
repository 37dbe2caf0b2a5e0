// The spec's mounts in mounts[] order: what setup makes (/dev, binds) is set
// aside at its end and bound back by the init at its turn.
import { describe, expect, it } from "vitest";
import { childMountSteps } from "../../src/runtime/plan/child-mount-steps.js";
import { stageSteps } from "../../src/runtime/plan/stage-steps.js";
import { context, lines } from "./plan-fixtures.js";

describe("stageSteps", () => {
  it("moves /dev and each top bind to a slot (a file for a file's bind) at the end of setup", () => {
    const ctx = context();
    const at = (dest: string) => ctx.spec.mounts.findIndex((m) => m.destination === dest);
    const steps = lines(stageSteps(ctx));
    expect(steps[0]).toBe("mkdir /c/staged 0711");
    expect(steps).toContain(`mkdir /c/staged/${at("/dev")} 0711`);
    expect(steps).toContain(`mount /c/rootfs/dev /c/staged/${at("/dev")} - 0x2000 -`);
    // /etc/hosts is a file: its slot is one.
    const slot = `/c/staged/${at("/etc/hosts")}`;
    expect(steps).toContain(`touch ${slot} 0600 0 0`);
    expect(steps).toContain(`mount /c/rootfs/etc/hosts ${slot} - 0x2000 -`);
  });

  it("a bind inside another bind (/etc/hosts in a volume on /etc) travels with it", () => {
    const ctx = context({
      volumes: [{ source: "/v/etc", destination: "/etc", readOnly: false, idmap: false }],
    });
    const moved = lines(stageSteps(ctx)).filter((l) => l.endsWith(" - 0x2000 -"));
    expect(moved.map((l) => l.split(" ")[1])).toEqual(["/c/rootfs/dev", "/c/rootfs/etc"]);
  });

  it("a bind inside /dev under a mount the init makes (/dev/shm/x) is staged on its own, moved out first", () => {
    const ctx = context();
    ctx.spec.mounts.push({
      destination: "/dev/shm/x",
      type: "bind",
      source: "/s",
      options: ["rbind"],
    });
    const moved = lines(stageSteps(ctx)).filter((l) => l.endsWith(" - 0x2000 -"));
    const sources = moved.map((l) => l.split(" ")[1]);
    expect(sources).toContain("/c/rootfs/dev/shm/x");
    expect(sources.indexOf("/c/rootfs/dev/shm/x")).toBeLessThan(sources.indexOf("/c/rootfs/dev"));
    // The init brings it back after /dev/shm's tmpfs.
    const child = lines(childMountSteps(ctx));
    const shm = child.findIndex((l) => l.includes(" /c/rootfs/dev/shm tmpfs "));
    const back = child.findIndex((l) => l.endsWith(" /c/rootfs/dev/shm/x - 0x5000 -"));
    expect(shm).toBeGreaterThan(0);
    expect(back).toBeGreaterThan(shm);
  });

  it("nothing to stage without /dev or binds", () => {
    const ctx = context();
    ctx.spec.mounts = ctx.spec.mounts.filter((m) => m.type !== "bind" && m.destination !== "/dev");
    expect(stageSteps(ctx)).toEqual([]);
  });
});

describe("childMountSteps brings them back in mounts[] order", () => {
  it("a tmpfs listed before a bind under it is mounted first, so it does not hide the bind", () => {
    const ctx = context();
    ctx.spec.mounts.push(
      { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid"] },
      { destination: "/run/secrets", type: "bind", source: "/s", options: ["rbind"] },
    );
    const steps = lines(childMountSteps(ctx));
    const tmpfs = steps.indexOf("mount tmpfs /c/rootfs/run tmpfs 0x2 -");
    const bind = steps.findIndex((l) => / \/c\/rootfs\/run\/secrets - 0x5000 -$/.test(l));
    expect(tmpfs).toBeGreaterThanOrEqual(0);
    expect(bind).toBeGreaterThan(tmpfs);
    expect(steps[bind]).toMatch(/^mount \/c\/staged\/\d+ /);
  });

  it("a bind that came back inside another gets no step of its own", () => {
    const ctx = context({
      volumes: [{ source: "/v/etc", destination: "/etc", readOnly: false, idmap: false }],
    });
    const steps = lines(childMountSteps(ctx));
    expect(steps.some((l) => l.includes(" /c/rootfs/etc/hosts "))).toBe(false);
    expect(steps.filter((l) => l.endsWith(" /c/rootfs/etc - 0x5000 -"))).toHaveLength(1);
  });
});
