// One minibox-like process for test/integration/ipam.test.ts: loads the
// built IPAM module (dist/, from `npm run build`) and does one thing to one
// network, so that concurrency is between real processes, each with its own
// flock — as twenty `minibox run`s would be.
//
//   node ipam-worker.mjs ROOT NETWORK allocate CONTAINER_ID   prints the lease as JSON
//   node ipam-worker.mjs ROOT NETWORK release CONTAINER_ID    prints true/false
//   node ipam-worker.mjs ROOT NETWORK hold                    takes the lease lock, prints "held", waits
import { allocate, release, withLeaseLock } from "../../dist/runtime/network/ipam.js";
import { getNetwork } from "../../dist/runtime/network/networks.js";

const [root, ref, action, containerId] = process.argv.slice(2);
const network = await getNetwork(root, ref);
if (action === "allocate") {
  console.log(JSON.stringify(await allocate(root, network, containerId)));
} else if (action === "release") {
  console.log(JSON.stringify(await release(root, network, containerId)));
} else if (action === "hold") {
  await withLeaseLock(root, network, async () => {
    console.log("held");
    // A timer keeps the process (and so the flock) alive until the test kills it.
    await new Promise(() => setInterval(() => {}, 60_000));
  });
} else {
  throw new Error(`unknown action ${action}`);
}
