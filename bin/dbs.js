#!/usr/bin/env -S node --max-semi-space-size=4
// Shebang shim: checks the Node.js version, then loads the compiled program (see src/main.ts),
// bundled by scripts/bundle.mjs into dist/bundle/ (npm run build).
// --max-semi-space-size=4 caps V8's young generation at 2 x 4 MiB. Left to itself V8 grows it
// to 2 x 64 MiB while a backup or restore streams (bytes are external, but the per-chunk and
// per-file objects are not), and keeps it: a 1 GB directory restore peaked at 311-321 MB RSS,
// 243-254 MB with the cap, no slower (bench/results/dir-1gb.md). Only flags that a shebang can
// carry belong here; the single executable gets the same ones (scripts/build-exe.mjs reads
// them from this line). `node bin/dbs.js` runs without them: slower to no one, only bigger.
// Nothing but node:module is imported statically: under an old Node a dependency would crash
// before the check. The V8 compile cache lets later runs skip parsing and compiling dbs and its
// dependencies (start-up is most of what a short command costs); it lives in dbs's cache folder
// (NODE_COMPILE_CACHE, DBS_CACHE_DIR, systemd's CACHE_DIRECTORY, $XDG_CACHE_HOME/dbs or
// ~/.cache/dbs), never in the temp dir that dbs's own scratch folders share.
import module from 'node:module';
import { join } from 'node:path';

const REQUIRED = [22, 16]; // keep equal to package.json "engines.node" (test/unit/node-check.test.ts)
const have = process.versions.node.split('.').map(Number);
if (have[0] < REQUIRED[0] || (have[0] === REQUIRED[0] && have[1] < REQUIRED[1])) {
  process.stderr.write(
    `dbs: needs Node.js >= ${REQUIRED.join('.')}, this is v${process.versions.node} (${process.execPath})\n` +
      'hint: install Node.js 24, run it through the checkout (npx dbs, which uses the pinned Node), or use the single executable (npm run build:exe)\n',
  );
  process.exit(2);
}
const env = process.env;
const cacheDir = env.NODE_COMPILE_CACHE ?? join(env.DBS_CACHE_DIR ?? env.CACHE_DIRECTORY ?? join(env.XDG_CACHE_HOME ?? join(env.HOME || process.getBuiltinModule('node:os').homedir(), '.cache'), 'dbs'), 'node-compile-cache');
try {
  module.enableCompileCache?.(cacheDir);
} catch {
  // No cache (a read-only home): only slower.
}
// The catalog is node:sqlite, which Node 22 calls experimental on every load: that warning is
// not dbs's to pass on (every other warning still is).
if (have[0] < 23) {
  const emit = process.emitWarning.bind(process);
  process.emitWarning = (warning, ...rest) => {
    const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
    if (type === 'ExperimentalWarning' && /SQLite/.test(String(warning?.message ?? warning))) return;
    emit(warning, ...rest);
  };
}
await import('../dist/bundle/main.js');
