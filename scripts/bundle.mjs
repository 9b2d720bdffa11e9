#!/usr/bin/env node
// npm run build (after tsc) -> dist/bundle/: what bin/dbs.js runs. esbuild bundles dbs's own
// modules (dist/main.js and everything it imports) into ESM chunks; every dynamic import() stays
// a chunk of its own, loaded on first use, so a command still loads only what it needs. The
// packages in node_modules stay outside (imported from there, as from dist/), except the small
// pure-JS ones every list or setting loads (INLINE): resolving a package costs ~1 ms of start-up.
// Also inlined: commander (every command), execa (its ~300 modules were resolved one by one by
// every restore, spawning or not: ~100 ms) and the AWS SDK, from its ESM build ('module' first
// in mainFields) so that esbuild drops the commands dbs never sends (the CommonJS build of
// client-s3 is one 950 KB file of all of them). With the --path index scan of the same change,
// a one-file restore from an S3 pool went 545 -> 421 ms (hyperfine, 20 runs; the session's
// final number is in bench/results/dir-one-file-s3.md).
// Why: Node's ESM loader costs about 0.7 M instructions per module (resolve, stat, package.json
// scope lookups, link), and a short command such as `dbs plan list` loaded ~30 of dbs's modules:
// 1/3 of what dbs adds to `node -e 0` (issue 17; bench/results/startup.md).
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outdir = join(root, 'dist', 'bundle');
const INLINE = new Set(['bytes', 'pretty-ms', 'parse-ms', '@aws-sdk/client-s3', '@aws-sdk/lib-storage', 'commander', 'execa']);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// Each external package and its subpaths (@aws-sdk/client-s3/..., age-encryption/...).
const external = Object.keys(pkg.dependencies).filter((d) => !INLINE.has(d)).flatMap((d) => [d, `${d}/*`]);
// The AWS SDK's ESM build imports node:http and node:https (default imports only). An ESM
// import of a built-in makes Node read every export of it once, and node:http's WebSocket and
// friends are lazy getters that load undici: ~30 ms of a short S3 command (the CommonJS
// require() of the listing script reads none). process.getBuiltinModule gives the same object
// without that.
const builtinObjects = {
  name: 'builtin-objects',
  setup(b) {
    b.onResolve({ filter: /^node:https?$/ }, (a) => ({ path: a.path, namespace: 'dbs-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'dbs-builtin' }, (a) => ({ contents: `export default process.getBuiltinModule(${JSON.stringify(a.path)});`, loader: 'js' }));
  },
};
rmSync(outdir, { recursive: true, force: true }); // chunk names carry hashes: no stale chunk stays
await build({
  entryPoints: [join(root, 'dist', 'main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  external,
  plugins: [builtinObjects],
  mainFields: ['module', 'main'],
  minifySyntax: true,
  legalComments: 'none',
  // CommonJS packages bundled into ESM chunks call require() for Node's built-ins.
  banner: { js: "import { createRequire as __dbsCreateRequire } from 'node:module'; const require = __dbsCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
