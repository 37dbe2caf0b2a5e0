// Phase timeline of one minibox pull, for bench/pull.ts (which spawns it once
// per trace round, like the CLI: a fresh node process, cold JIT).
//
//   node bench/trace-pull.mjs <dist dir> <store root> <reference>
//
// It does what `minibox pull` does (dist/image/pull.js with the CLI's
// defaults) without commander/cli-progress, and prints one JSON line:
// { marks: [[label, ms since the process's time origin], ...],
//   eventLoopUtilization, cpuMs }.
// Request timestamps come from wrapping http.request; layer events from
// the PullReporter that the CLI would draw.
const marks = [["script start", performance.now()]];
const mark = (label) => marks.push([label, performance.now()]);

const [distDir, root, reference] = process.argv.slice(2);
if (!reference) {
  process.stderr.write("usage: node bench/trace-pull.mjs <dist dir> <store root> <reference>\n");
  process.exit(2);
}

// Every registry request goes through node:http's `request` (see
// src/image/http-client.ts): wrap it, and sync the ES-module view of the
// builtin before pull.js binds it.
const http = await import("node:http");
const { syncBuiltinESMExports } = await import("node:module");
const realRequest = http.default.request;
http.default.request = (url, options, callback) => {
  // "blobs 575f0605ef85", "manifests latest": the kind and a short id.
  const m = /\/(manifests|blobs)\/(?:sha256:)?([^/?]+)/.exec(String(url));
  const what = m ? `${m[1]} ${m[2].slice(0, 12)}` : String(url);
  mark(`request ${what}`);
  return realRequest(url, options, (response) => {
    mark(`headers ${what}`);
    callback(response);
  });
};
syncBuiltinESMExports();

const { pullImage } = await import(`${distDir}/image/pull.js`);
const { Store } = await import(`${distDir}/image/store.js`);
const { parseReference } = await import(`${distDir}/image/reference.js`);
const { CredentialStore } = await import(`${distDir}/image/credentials.js`);
const { hostPlatform } = await import(`${distDir}/image/manifest.js`);
mark("modules loaded");

const seen = new Set();
const reporter = {
  status(line) {
    mark(`status ${line.slice(0, 30)}`);
  },
  layer(id, status) {
    // "Downloading" repeats with progress: keep the first one only.
    const key = `layer ${id} ${status}`;
    if (!seen.has(key)) {
      seen.add(key);
      mark(key);
    }
  },
};

await pullImage(new Store(root), parseReference(reference), {
  platform: hostPlatform(),
  credentials: new CredentialStore(process.env.MINIBOX_CONFIG),
  reporter,
});
mark("pull done");
// How busy the main thread was (1 = never idle) and the CPU time of all threads.
const { utilization } = performance.eventLoopUtilization();
const cpu = process.cpuUsage();
const cpuMs = (cpu.user + cpu.system) / 1000;
process.stdout.write(`${JSON.stringify({ marks, eventLoopUtilization: utilization, cpuMs })}\n`);
