import { describe, expect, it } from "vitest";
import { bindSteps } from "../../src/runtime/plan/bind-steps.js";
import { deviceSteps } from "../../src/runtime/plan/device-steps.js";
import { cloneStep } from "../../src/runtime/plan/namespace-steps.js";
import { outputSteps } from "../../src/runtime/plan/output-steps.js";
import { readOnlyRootSteps, rootfsSteps } from "../../src/runtime/plan/rootfs-steps.js";
import { context, HOST_ROOT, IDMAP, lines } from "./plan-fixtures.js";

const R = HOST_ROOT;

describe("rootfsSteps", () => {
  it("idmaps the layers top first under a user namespace, then mounts the overlay on them", () => {
    const steps = lines(rootfsSteps(context({ idmap: IDMAP })));
    expect(steps.slice(0, 6)).toEqual([
      "mountns",
      "root /c/rootfs",
      `idmap-userns 0 ${R} 65536\n 0 ${R} 65536\n`,
      "idmap-mount /l/1 /c/lower/0",
      "idmap-mount /l/0 /c/lower/1",
      "mount overlay /c/rootfs overlay 0x4 lowerdir=/c/lower/0:/c/lower/1,upperdir=/c/upper,workdir=/c/work",
    ]);
  });

  it("uses the layers as they are without idmapped mounts", () => {
    const steps = lines(rootfsSteps(context({ idmap: IDMAP }, { idmappedLayers: false })));
    expect(steps[2]).toBe(
      "mount overlay /c/rootfs overlay 0x4 lowerdir=/l/1:/l/0,upperdir=/c/upper,workdir=/c/work",
    );
  });

  it("mounts the overlay nodev unless the container may use every device (--privileged)", () => {
    const overlay = (privileged: boolean) =>
      lines(rootfsSteps(context({ idmap: IDMAP, privileged }))).find((l) =>
        l.startsWith("mount overlay"),
      );
    expect(overlay(false)).toContain(" overlay 0x4 ");
    expect(overlay(true)).toContain(" overlay 0x0 ");
  });

  it("creates missing mount points owned by the container's root, /dev's excepted", () => {
    const steps = lines(rootfsSteps(context({ idmap: IDMAP })));
    expect(steps).toContain(`mkdir /c/rootfs/proc 0755 ${R} ${R}`);
    expect(steps).toContain(`touch /c/rootfs/etc/hosts 0644 ${R} ${R}`);
    expect(steps.some((l) => l.startsWith("mkdir /c/rootfs/dev/"))).toBe(false);
  });

  it("refuses more layers than one overlay mount can list", () => {
    const layers = Array.from({ length: 400 }, (_, i) => `/var/lib/minibox/layers/${i}/diff`);
    expect(() => rootfsSteps(context({}, { layers, idmappedLayers: false }))).toThrow(
      /too many layers \(400\)/,
    );
  });
});

describe("readOnlyRootSteps", () => {
  it("remounts the rootfs read-only with --read-only only", () => {
    expect(lines(readOnlyRootSteps(context({ readOnly: true })))).toEqual(["remount-ro /c/rootfs"]);
    expect(readOnlyRootSteps(context())).toEqual([]);
  });
});

describe("deviceSteps", () => {
  it("mounts a tmpfs on /dev owned by the container's root, with devices and links chowned to it", () => {
    const steps = lines(deviceSteps(context({ idmap: IDMAP })));
    expect(steps[0]).toBe(
      `mount tmpfs /c/rootfs/dev tmpfs 0x1000002 mode=755,size=65536k,uid=${R},gid=${R}`,
    );
    expect(steps.slice(1, 3)).toEqual([
      "mknod /c/rootfs/dev/null 020666 1 3",
      `chown /c/rootfs/dev/null ${R} ${R}`,
    ]);
    expect(steps).toContain("symlink pts/ptmx /c/rootfs/dev/ptmx");
    expect(steps).toContain("mkdir /c/rootfs/dev/pts 0755");
    expect(steps.at(-1)).toBe(`chown /c/rootfs/dev/shm ${R} ${R}`);
  });

  it("without a user namespace: no chown, no owner in the tmpfs options", () => {
    const steps = lines(deviceSteps(context()));
    expect(steps[0]).toBe("mount tmpfs /c/rootfs/dev tmpfs 0x1000002 mode=755,size=65536k");
    expect(steps.some((l) => l.startsWith("chown"))).toBe(false);
    expect(steps.filter((l) => l.startsWith("mknod"))).toHaveLength(6);
  });
});

describe("bindSteps", () => {
  const volumes = (idmap: boolean) => [
    { source: "/v/etc", destination: "/etc", readOnly: false, idmap },
    { source: "/srv", destination: "/srv/site", readOnly: true, idmap },
  ];

  it("binds shallow destinations first and remakes mount points a volume hid, in its source", () => {
    const steps = lines(bindSteps(context({ idmap: IDMAP, volumes: volumes(false) })));
    expect(steps.slice(0, 4)).toEqual([
      "mount /v/etc /c/rootfs/etc - 0x5000 -",
      "root /v/etc",
      `touch /v/etc/hostname 0644 ${R} ${R}`,
      "mount /c/hostname /c/rootfs/etc/hostname - 0x5000 -",
    ]);
    expect(steps.slice(-2)).toEqual([
      "mount /srv /c/rootfs/srv/site - 0x5001 -",
      "mount - /c/rootfs/srv/site - 0x1021 -",
    ]);
  });

  it("idmaps volumes asked to be; what it remakes in them is owned by host 0", () => {
    const steps = lines(bindSteps(context({ idmap: IDMAP, volumes: volumes(true) })));
    expect(steps[0]).toBe("idmap-mount /v/etc /c/rootfs/etc");
    expect(steps[1]).toBe("root /v/etc"); // a container sharing the volume may plant symlinks
    expect(steps[2]).toBe("touch /v/etc/hostname 0644 0 0");
  });
});

describe("outputSteps and cloneStep", () => {
  it("pty with -t, the log, and under -d the exit file and hook", () => {
    const ctx = context(
      { tty: true },
      {
        log: { file: "/c/log", maxSize: 10, maxFiles: 2 },
        detach: { exitFile: "/c/exit", hook: ["m", "x"] },
      },
    );
    expect(lines(outputSteps(ctx))).toEqual([
      "pty",
      "log /c/log 10 2 tty",
      "exit-file /c/exit",
      "on-exit m x",
    ]);
    expect(outputSteps(context())).toEqual([]);
  });

  it("clones with the container's namespaces (the cgroup one comes later)", () => {
    const step = cloneStep(context({ idmap: IDMAP }));
    expect(step.describe).toBe(
      "clone(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET)",
    );
    expect(cloneStep(context({ network: "host" })).describe).not.toContain("NEWNET");
  });
});
