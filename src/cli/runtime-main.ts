#!/usr/bin/env node
/**
 * minibox-runc's own entry point (dist/minibox-runc.mjs): the same code as
 * `minibox runtime …`, without loading the rest of minibox's command line —
 * an engine calls the runtime several times per container, and every module
 * node does not load is start-up time saved.
 */
import { runRuntimeCli } from "./runtime-command.js";

process.exitCode = await runRuntimeCli(process.argv.slice(2));
