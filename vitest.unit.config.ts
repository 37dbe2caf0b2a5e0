import { defineConfig } from "vitest/config";

// `npm run test:unit`: the pure tests only — no registry, no root, no kernel
// features. What needs root (device nodes, chown, trusted.* xattrs) or a
// registry lives in test/integration and runs under vitest.config.ts.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    reporters: ["default"],
  },
});
