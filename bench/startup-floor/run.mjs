// The start-up floor of `dbs plan list` on a stack: node bench/startup-floor/run.mjs VARIANT.mjs plan list
// (DBS_HOME set to a catalog with a plan). Each variant does only what plan list must: parse argv,
// open the catalog, read the plans, print them; with the V8 compile cache on, as bin/dbs.js has it.
// Measured in bench/results/startup.md ("The floor of the stack").
import module from 'node:module';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';

module.enableCompileCache?.(join(tmpdir(), 'dbs-startup-floor-cache'));
const [variant] = process.argv.splice(2, 1);
await import(pathToFileURL(new URL(variant, import.meta.url).pathname).href);
