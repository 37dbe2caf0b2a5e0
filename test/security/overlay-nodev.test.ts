// Device nodes in the rootfs: an image can ship them (or a container with
// CAP_MKNOD make them, as root does under --userns=host), and then only the
// device cgroup stands between the node and the device. minibox mounts the
// overlay nodev, so no node in the rootfs opens anything; /dev is its own
// tmpfs, where the default nodes work. --privileged, which may use every
// device, keeps them working (Docker's --privileged does).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Sandbox, sandbox } from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const BASE = `${env.registries.anon}/fixtures/base`;
/** A null device made in the rootfs (/tmp is the overlay), then written; /dev/null for comparison. */
const SCRIPT =
  "mknod /tmp/null c 1 3 && { echo x > /tmp/null && echo rootfs-node-opened; }; echo x > /dev/null && echo dev-null-works";

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  const r = await box.run(["pull", "-q", BASE]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => box.cleanup());

describe("the overlay rootfs is nodev", () => {
  test("--userns=host: a node made in the rootfs cannot be opened; /dev/null works", async () => {
    const r = await box.run([
      "run",
      "--rm",
      "--userns=host",
      "--network",
      "none",
      BASE,
      "sh",
      "-c",
      SCRIPT,
    ]);
    expect(r.stdout).toBe("dev-null-works\n");
    expect(r.stderr).toContain("Permission denied");
  });

  test("--privileged --userns=host: nodes in the rootfs work, as with Docker", async () => {
    const r = await box.run([
      "run",
      "--rm",
      "--privileged",
      "--userns=host",
      "--network",
      "none",
      BASE,
      "sh",
      "-c",
      SCRIPT,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("rootfs-node-opened\ndev-null-works\n");
  });
});
