/**
 * The plan text and the --trace descriptions, pinned for a few specs: the C
 * executor reads this text (op names, field order and counts are its
 * protocol) and users read the descriptions, so a refactoring of how the plan
 * is built must leave both byte-identical. The snapshots were taken from the
 * plan builder before it was split by concern.
 */
import { describe, expect, it } from "vitest";
import type { ImageConfig } from "../../src/image/manifest.js";
import { buildExecPlan } from "../../src/runtime/exec.js";
import { buildPlan, type Plan, type PlanLayout, serialisePlan } from "../../src/runtime/plan.js";
import { generateSpec, type RunSettings } from "../../src/runtime/spec.js";

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const C = `/var/lib/minibox/containers/${ID}`;

function settings(over: Partial<RunSettings> = {}): RunSettings {
  const config: ImageConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/bin:/bin"], WorkingDir: "/srv/app" },
    rootfs: { type: "layers", diff_ids: [] },
  };
  return {
    id: ID,
    name: "happy_turing",
    image: { id: `sha256:${"a".repeat(64)}`, ref: "alpine:3.8", config },
    rootfs: `${C}/rootfs`,
    command: ["sh", "-c", "echo\ta\\b\nc"],
    env: ["X=1"],
    user: { uid: 0, gid: 0, additionalGids: [10, 20], home: "/root", name: "root" },
    hostname: ID.slice(0, 12),
    tty: false,
    interactive: false,
    readOnly: false,
    capAdd: [],
    capDrop: [],
    limits: {},
    network: "bridge",
    init: false,
    labels: {},
    hostFiles: { hostname: `${C}/hostname`, hosts: `${C}/hosts`, resolvConf: `${C}/resolv.conf` },
    rlimitHard: { nofile: 20000 },
    ...over,
  };
}

function layout(over: Partial<PlanLayout> = {}): PlanLayout {
  return {
    containerDir: C,
    layers: ["/var/lib/minibox/layers/a/diff", "/var/lib/minibox/layers/b/diff"],
    idmappedLayers: true,
    cgroupProcs: ["/sys/fs/cgroup/minibox/x/cgroup.procs"],
    waitForGo: false,
    init: false,
    interactive: false,
    ...over,
  };
}

/** The plan text, then each step's description as --trace prints it. */
function pinned(plan: Plan): string {
  const { text, byLine } = serialisePlan(plan);
  const described = [...byLine].map(([line, step]) => `${line}: ${step.describe}`);
  return `${text}----\n${described.join("\n")}\n`;
}

const IDMAP = { containerID: 0 as const, hostID: 1 << 20, size: 65536 };

describe("plan text and descriptions stay byte-identical", () => {
  it("run: user namespace, idmapped layers and volumes, -t, -d, --read-only", async () => {
    const spec = generateSpec(
      settings({
        idmap: IDMAP,
        tty: true,
        readOnly: true,
        user: { uid: 1000, gid: 1000, additionalGids: [], home: "/", name: "u" },
        volumes: [
          { source: "/v/etc/_data", destination: "/etc", readOnly: false, idmap: true },
          { source: "/srv", destination: "/srv/site", readOnly: true, idmap: true },
          { source: "/dev/shm", destination: "/dev/shm/x", readOnly: false, idmap: false },
        ],
      }),
    );
    const plan = buildPlan(
      spec,
      layout({
        detach: { exitFile: `${C}/exit.json`, hook: ["node", "minibox", "container-exited", ID] },
        log: { file: `${C}/${ID}-json.log`, maxSize: 1024, maxFiles: 3 },
        fileMounts: ["/srv/site"],
      }),
    );
    await expect(pinned(plan)).toMatchFileSnapshot("__snapshots__/plan-run-userns.txt");
  });

  it("run: --userns=host, --network host, shifted layers, --init, -i, --cap-add", async () => {
    const spec = generateSpec(
      settings({
        network: "host",
        init: true,
        interactive: true,
        capAdd: ["CAP_NET_ADMIN"],
        capDrop: ["CAP_CHOWN"],
        volumes: [{ source: "/h", destination: "/data", readOnly: true, idmap: false }],
      }),
    );
    const plan = buildPlan(
      spec,
      layout({ idmappedLayers: false, waitForGo: true, init: true, interactive: true }),
    );
    await expect(pinned(plan)).toMatchFileSnapshot("__snapshots__/plan-run-host.txt");
  });

  // exec's descriptions only appear in its error messages; its plan text is pinned.
  it("exec: as root with -t, and as a non-root user with -e", async () => {
    const spec = generateSpec(settings({ idmap: IDMAP }));
    const procs = ["/sys/fs/cgroup/minibox/x/cgroup.procs"];
    const asRoot = buildExecPlan(
      spec,
      4242,
      procs,
      { command: ["sh"], tty: true, interactive: true, env: [], detach: false },
      { uid: 0, gid: 0, additionalGids: [1, 2] },
    );
    const asUser = buildExecPlan(
      spec,
      4242,
      procs,
      {
        command: ["id", "-u"],
        tty: false,
        interactive: false,
        env: ["X=2", "Y=3"],
        detach: false,
        workdir: "/tmp",
      },
      { uid: 65534, gid: 65534, additionalGids: [] },
    );
    const text = (plan: Plan) => serialisePlan(plan).text;
    await expect(`${text(asRoot)}====\n${text(asUser)}`).toMatchFileSnapshot(
      "__snapshots__/plan-exec.txt",
    );
  });
});
