import { defineConfig } from "vitest/config";

// Integration tests run as root against the real kernel and a real registry
// (started once in test/support/global-setup.ts). They share the machine, so
// files run one at a time: two pulls racing for the same loopback registry are
// tested on purpose inside one test, not by accident across files.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ["default"],
  },
});
