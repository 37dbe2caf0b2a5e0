// system df, system prune, builder prune: a store with used and unused
// images, running and stopped containers, used and unused volumes and a build
// cache. `system df`'s "reclaimable" must be exactly what the prunes free,
// and what a running container uses must survive them.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { humanSize } from "../../src/format-size.js";
import { Store } from "../../src/image/store.js";
import {
  type DiskUsageReport,
  diskUsageReport,
  type Totals,
} from "../../src/runtime/disk-usage.js";
import {
  oneLineError,
  pullInto,
  removeContainers,
  type Sandbox,
  sandbox,
} from "../support/minibox.js";
import { testEnv } from "../support/testenv.js";

const env = testEnv();
const BASE = `${env.registries.anon}/fixtures/base`;
const LAYERED = `${env.registries.anon}/fixtures/layered`;

let box: Sandbox;
beforeAll(async () => {
  box = sandbox();
  await pullInto(box, BASE, LAYERED);
});
afterAll(async () => {
  await removeContainers(box);
  box.cleanup();
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await box.run(args, input === undefined ? undefined : { input });
  expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function report(): Promise<DiskUsageReport> {
  return diskUsageReport(new Store(box.root));
}

/** Docker's RECLAIMABLE cell: "1.2MB (40%)", no percentage when the size is 0. */
function reclaimableCell(t: { size: number; reclaimable: number }): string {
  const r = humanSize(t.reclaimable);
  return t.size > 0 ? `${r} (${Math.floor((t.reclaimable * 100) / t.size)}%)` : r;
}

/** The store: images used (by a running / a stopped container) and not, volumes likewise, a build cache. */
async function populate(): Promise<void> {
  const ctx = path.join(path.dirname(box.root), "ctx");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(
    path.join(ctx, "Dockerfile"),
    `FROM ${BASE}\nRUN dd if=/dev/zero of=/built bs=1024 count=64\nENV STEP=two\n`,
  );
  await ok(["build", "-q", "-t", "built", ctx]);
  // Running: the base image, a named volume, a file in its writable layer.
  await ok([
    "run",
    "-d",
    "--name",
    "up",
    "-v",
    "kept:/data",
    BASE,
    "sh",
    "-c",
    "echo keep > /data/f; dd if=/dev/zero of=/upper bs=1024 count=8; sleep 1000",
  ]);
  // Stopped: the built image, an anonymous volume and an unused-after-prune named one.
  await ok([
    "run",
    "--name",
    "down",
    "-v",
    "/anon",
    "-v",
    "spare:/spare",
    "built",
    "sh",
    "-c",
    "dd if=/dev/zero of=/anon/f bs=1024 count=32; dd if=/dev/zero of=/spare/f bs=1024 count=16; dd if=/dev/zero of=/top bs=1024 count=24",
  ]);
  // The running container's files are there before df looks.
  for (let tries = 0; tries < 200; tries++) {
    const out = await box.run(["exec", "up", "cat", "/upper"]);
    if (out.code === 0 && out.stdout.length === 8 * 1024) break;
  }
  expect(readFileSync(path.join(box.root, "volumes", "kept", "_data", "f"), "utf8")).toBe("keep\n");
}

describe("system df / system prune", () => {
  test("df's reclaimable is exactly what system prune -a --volumes (then volume prune -a) frees", async () => {
    await populate();
    const before = await report();

    // The summary: Docker's header and rows, the numbers the report holds.
    const table = (await ok(["system", "df"])).trimEnd().split("\n");
    expect(table[0]).toBe("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE");
    const expectRow = (line: string | undefined, type: string, t: Totals, pct = true) =>
      expect(line?.split(/ {2,}/)).toEqual([
        type,
        String(t.total),
        String(t.active),
        humanSize(t.size),
        pct ? reclaimableCell(t) : humanSize(t.reclaimable),
      ]);
    expectRow(table[1], "Images", before.images);
    expectRow(table[2], "Containers", before.containers);
    expectRow(table[3], "Local Volumes", before.volumes);
    expectRow(table[4], "Build Cache", before.buildCache, false);
    expect(table).toHaveLength(5);

    // What the store holds, counted as Docker counts it.
    expect(before.images.total).toBe(3); // base, layered, built (its step images are its parts)
    expect(before.images.active).toBe(2); // base (running), built (stopped)
    // layered shares base's layer: counted once.
    const layerBytes = new Set<string>();
    let unique = 0;
    for (const i of before.images.items) {
      for (const l of i.record.layers)
        if (!layerBytes.has(l.chainId) && layerBytes.add(l.chainId)) unique += l.size;
    }
    expect(before.images.size).toBe(unique);
    expect(before.images.size).toBeLessThan(
      before.images.items.reduce((n, i) => n + i.record.size, 0),
    );
    expect(before.containers).toMatchObject({ total: 2, active: 1 });
    expect(before.containers.reclaimable).toBeGreaterThanOrEqual(24 * 1024);
    expect(before.containers.size - before.containers.reclaimable).toBeGreaterThanOrEqual(8 * 1024);
    expect(before.volumes).toMatchObject({ total: 3, active: 3 });
    expect(before.volumes.reclaimable).toBe((32 + 16) * 1024); // anon + spare; kept is in use
    expect(before.buildCache.total).toBe(2);
    expect(before.buildCache.reclaimable).toBeGreaterThan(0);

    // -v: Docker's four sections.
    const verbose = await ok(["system", "df", "-v"]);
    expect(verbose).toMatch(
      /^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/,
    );
    expect(verbose).toMatch(
      /\nContainers space usage:\n\nCONTAINER ID +IMAGE +COMMAND +LOCAL VOLUMES +SIZE +CREATED +STATUS +NAMES\n/,
    );
    expect(verbose).toMatch(/\nLocal Volumes space usage:\n\nVOLUME NAME +LINKS +SIZE\n/);
    expect(verbose).toMatch(/\nkept +1 +5B\n/);
    expect(verbose).toContain(
      `\nBuild cache usage: ${humanSize(before.buildCache.size)}\n\nCACHE ID`,
    );
    const json = (await ok(["system", "df", "--format", "{{json .}}"])).trimEnd().split("\n");
    expect(JSON.parse(json[0] ?? "")).toEqual({
      Active: "2",
      Reclaimable: reclaimableCell(before.images),
      Size: humanSize(before.images.size),
      TotalCount: "3",
      Type: "Images",
    });

    // Without -f it asks; stdin at its end answers no and nothing goes.
    const asked = await box.run(["system", "prune", "-a", "--volumes"]);
    expect(asked.code).toBe(0);
    expect(asked.stdout).toBe(
      "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n" +
        "  - all anonymous volumes not used by at least one container\n" +
        "  - all images without at least one container associated to them\n  - all build cache\n\n" +
        "Are you sure you want to continue? [y/N] ",
    );
    expect(await report()).toEqual(before);

    const pruned = await ok(["system", "prune", "-a", "--volumes"], "y\n");
    const after = await report();
    // Named volumes stay (Docker ≥ 23): only the anonymous one went.
    const anonBytes = 32 * 1024;
    expect(pruned).toContain("Deleted Containers:\n");
    expect(pruned).toContain("Deleted Volumes:\n");
    expect(pruned).toContain("Deleted Images:\n");
    expect(pruned).toContain("Deleted build cache objects:\n");
    expect(pruned.trimEnd().split("\n").at(-1)).toBe(
      `Total reclaimed space: ${humanSize(before.images.reclaimable + before.containers.reclaimable + anonBytes + before.buildCache.reclaimable)}`,
    );
    for (const kind of ["images", "containers", "buildCache"] as const) {
      expect(after[kind].size, kind).toBe(before[kind].size - before[kind].reclaimable);
      expect(after[kind].reclaimable, kind).toBe(0);
    }
    expect(after.volumes.size).toBe(before.volumes.size - anonBytes);
    // The rest of the volumes' reclaimable: the named one no container uses any more.
    const volumes = await ok(["volume", "prune", "-a", "-f"]);
    expect(volumes).toBe(
      `Deleted Volumes:\nspare\n\nTotal reclaimed space: ${humanSize(16 * 1024)}\n`,
    );
    const final = await report();
    expect(final.volumes.size).toBe(before.volumes.size - before.volumes.reclaimable);
    expect(final.volumes.reclaimable).toBe(0);

    // The running container, its image and its volume survived, and the disk holds only what is counted.
    expect((await ok(["ps", "-q", "--no-trunc"])).trim()).toBe(final.containers.items[0]?.view.id);
    expect(final.containers.items[0]?.view.name).toBe("up");
    expect(final.images.items.map((i) => i.tags)).toEqual([[`${BASE}:latest`]]);
    expect(await ok(["exec", "up", "cat", "/data/f"])).toBe("keep\n");
    expect(readdirSync(path.join(box.root, "volumes")).filter((n) => !n.startsWith("."))).toEqual([
      "kept",
    ]);
    const chains = new Set(
      final.images.items.flatMap((i) =>
        i.record.layers.map((l) => l.chainId.replace("sha256:", "")),
      ),
    );
    const onDisk = readdirSync(path.join(box.root, "layers")).map((n) =>
      n.replace(/^sha256[:-]/, ""),
    );
    expect(new Set(onDisk)).toEqual(chains);
    expect(final.containers).toMatchObject({ total: 1, active: 1, reclaimable: 0 });
    expect(final.buildCache).toMatchObject({ total: 0, size: 0 });
  });

  test("builder prune empties the cache: the next build runs its steps again", async () => {
    const ctx = path.join(path.dirname(box.root), "ctx2");
    mkdirSync(ctx, { recursive: true });
    writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${BASE}\nRUN echo once > /once\n`);
    await ok(["build", "-t", "again", ctx]);
    expect(await ok(["build", "-t", "again", ctx])).toContain("Using cache");
    const pruned = await ok(["builder", "prune", "-f"]);
    expect(pruned).toMatch(
      /^Deleted build cache objects:\n([0-9a-f]{64}\n)+\nTotal reclaimed space: \d[\d.]*k?B\n$/,
    );
    expect(await ok(["build", "-t", "again", ctx])).not.toContain("Using cache");
    // Asked without -f and answered no: the cache stays.
    const kept = await box.run(["builder", "prune"]);
    expect(kept.stdout).toBe(
      "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ",
    );
    expect((await report()).buildCache.total).toBe(1);
    expect(await ok(["builder", "prune", "-f"])).toMatch(
      /^Deleted build cache objects:\n[0-9a-f]{64}\n\n/,
    );
    expect((await report()).buildCache).toMatchObject({ total: 0, size: 0 });
    await ok(["rmi", "again"]);
  });

  test("bad input: one line, non-zero, nothing removed", async () => {
    const before = await report();
    for (const args of [
      ["system", "prune", "-f", "--bogus"],
      ["system", "df", "--bogus"],
      ["builder", "prune", "-f", "--nope"],
    ]) {
      const r = await box.run(args);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.stderr).toMatch(/unknown option/);
    }
    const filter = await box.run(["system", "prune", "-f", "--filter", "colour=red"]);
    expect(filter.code).not.toBe(0);
    expect(oneLineError(filter)).toBe(
      "minibox: invalid filter 'colour'; Docker's prune filters are label=, label!= and until=",
    );
    const format = await box.run(["system", "df", "-v", "--format", "{{.Type}}"]);
    expect(format.code).not.toBe(0);
    expect(oneLineError(format)).toMatch(/^minibox: unsupported --format/);
    expect(await report()).toEqual(before);
  });
});
