/**
 * What every command needs from the global options: the store under
 * --root, the credentials under --config, and how to reach registries.
 */
import type { Command } from "commander";
import { CredentialStore } from "../image/credentials.js";
import { hostPlatform, type Platform, parsePlatform } from "../image/manifest.js";
import type { EndpointOptions } from "../image/registry.js";
import { Store } from "../image/store.js";
import { DEFAULT_ROOT } from "../layout.js";

export interface GlobalOptions {
  root?: string;
  config?: string;
  debug?: boolean;
  insecureRegistry?: string[];
  registryMirror?: string;
}

export interface Context {
  store: Store;
  credentials: CredentialStore;
  endpoints: EndpointOptions;
  debug: boolean;
  platform(text?: string): Platform;
}

export { DEFAULT_ROOT };

export function contextFrom(command: Command): Context {
  const opts = command.optsWithGlobals<GlobalOptions>();
  const root = opts.root || process.env.MINIBOX_ROOT || DEFAULT_ROOT;
  return {
    store: new Store(root),
    credentials: new CredentialStore(opts.config),
    endpoints: {
      insecureRegistries: [
        ...(opts.insecureRegistry ?? []),
        ...(process.env.MINIBOX_INSECURE_REGISTRIES?.split(",").filter(Boolean) ?? []),
      ],
      registryMirror: opts.registryMirror || process.env.MINIBOX_REGISTRY_MIRROR || undefined,
    },
    debug: Boolean(opts.debug),
    platform: (text) => (text ? parsePlatform(text) : hostPlatform()),
  };
}
