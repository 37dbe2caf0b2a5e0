// The store's seccomp cache (src/runtime/seccomp/cache.ts): a hit gives what
// resolving and compiling would, entries follow every input (capabilities,
// kernel, profile), a damaged entry is a miss, and the sources digest that
// versions the keys is current.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compiledSeccomp, resolvedSeccomp } from "../../src/runtime/seccomp/cache.js";
import { compileFilter } from "../../src/runtime/seccomp/compile.js";
import { defaultProfile } from "../../src/runtime/seccomp/default-profile.js";
import { resolveProfile, type SeccompProfile } from "../../src/runtime/seccomp/profile.js";
import { DEFAULT_CAPABILITIES } from "../../src/runtime/spec.js";

const TARGET = { arch: "x64", capabilities: DEFAULT_CAPABILITIES, kernel: "6.18.44" };
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "minibox-unit-seccomp-cache-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the seccomp cache", () => {
  it("a miss resolves and compiles; the hit after it gives the same profile and the same bytes", async () => {
    const first = await resolvedSeccomp(dir, "default", TARGET);
    expect(first.cache).toBe("miss");
    const again = await resolvedSeccomp(dir, "default", TARGET);
    expect(again.cache).toBe("hit");
    expect(again.spec).toEqual(resolveProfile(defaultProfile(), TARGET));

    const compiled = await compiledSeccomp(dir, again.spec, "x64");
    expect(compiled.cache).toBe("miss");
    const hit = await compiledSeccomp(dir, again.spec, "x64");
    expect(hit.cache).toBe("hit");
    const direct = compileFilter(again.spec, "x64");
    expect(hit.filter.instructions).toBe(direct.instructions);
    expect(hit.filter.allowed).toBe(direct.allowed);
    expect(Buffer.from(hit.filter.program).equals(Buffer.from(direct.program))).toBe(true);
  });

  it("another capability set, kernel or profile is another entry", async () => {
    await resolvedSeccomp(dir, "default", TARGET);
    const admin = [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"];
    const withAdmin = await resolvedSeccomp(dir, "default", { ...TARGET, capabilities: admin });
    expect(withAdmin.cache).toBe("miss");
    expect(withAdmin.spec).toEqual(
      resolveProfile(defaultProfile(), { ...TARGET, capabilities: admin }),
    );
    // The same set in another order is the same entry.
    const reversed = [...DEFAULT_CAPABILITIES].reverse();
    expect(
      (await resolvedSeccomp(dir, "default", { ...TARGET, capabilities: reversed })).cache,
    ).toBe("hit");
    expect((await resolvedSeccomp(dir, "default", { ...TARGET, kernel: "4.4.0" })).cache).toBe(
      "miss",
    );
    const custom: SeccompProfile = {
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }],
    };
    const own = await resolvedSeccomp(dir, custom, TARGET);
    expect(own.cache).toBe("miss");
    expect(own.spec.syscalls).toEqual([{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }]);
  });

  it("a damaged entry is a miss, and is rewritten", async () => {
    const { spec } = await resolvedSeccomp(dir, "default", TARGET);
    await compiledSeccomp(dir, spec, "x64");
    for (const name of readdirSync(dir)) writeFileSync(path.join(dir, name), '{"program":"AAAA"');
    expect((await resolvedSeccomp(dir, "default", TARGET)).cache).toBe("miss");
    expect((await compiledSeccomp(dir, spec, "x64")).cache).toBe("miss");
    expect((await compiledSeccomp(dir, spec, "x64")).cache).toBe("hit");
  });

  it("the sources digest in the keys is current (npm run build regenerates it)", () => {
    const script = path.resolve(__dirname, "..", "..", "scripts", "gen-seccomp-digest.mjs");
    expect(() =>
      execFileSync(process.execPath, [script, "--check"], { stdio: "pipe" }),
    ).not.toThrow();
  });
});
