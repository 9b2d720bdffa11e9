#!/usr/bin/env node
// npm run build:exe -> dist/dbs: one executable (a Node.js single-executable application).
// 1. esbuild bundles src/main.ts into one CommonJS script (dynamic imports stay lazy: esbuild
//    wraps each lazily imported module in an init function that runs on the first import()).
//    SQLite is Node's own (node:sqlite): the executable embeds no native addon.
// 2. node --experimental-sea-config makes the blob (script, and V8's code cache if asked).
// 3. postject injects it into a copy of the pinned node binary (node_modules/node).
// Reproducible: same checkout -> same bytes (no timestamps, no code cache unless DBS_EXE_CODE_CACHE=1).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const work = join(root, 'dist', 'exe');
const out = join(root, 'dist', 'dbs');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const arch = `${process.platform}-${process.arch}`;
if (process.platform !== 'linux') throw new Error(`build:exe builds for Linux only (this is ${arch})`);
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) throw new Error(`build:exe needs the pinned Node 24 (run it with npm run build:exe), this is ${process.version}`);

function git(...args) {
  try {
    return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}
const sha = git('rev-parse', '--short=12', 'HEAD') || 'unknown';
const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
const commit = dirty ? `${sha}-dirty` : sha;

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// core/cron-lib.ts and pipeline/stages/age-lib.ts load node-cron and age-encryption with
// createRequire at first use (start-up of a checkout); one bundle has no node_modules to require
// from, so there they are static imports.
const lazyLibShim = {
  name: 'dbs-lazy-libs-static',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]core[\\/]cron-lib\.ts$/ }, () => ({
      contents: "import * as cron from 'node-cron';\nexport function loadCron() { return cron; }\n",
      loader: 'ts',
      resolveDir: root,
    }));
    b.onLoad({ filter: /[\\/]src[\\/]pipeline[\\/]stages[\\/]age-lib\.ts$/ }, () => ({
      contents: "import * as age from 'age-encryption';\nexport function loadAge() { return age; }\n",
      loader: 'ts',
      resolveDir: root,
    }));
  },
};

const bundle = join(work, 'dbs.cjs');
const result = await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
  metafile: true,
  plugins: [lazyLibShim],
  define: {
    DBS_BUILD: JSON.stringify({ version: pkg.version, commit }),
    'import.meta.url': '"file:///dbs-executable/dist/main.js"',
  },
});
writeFileSync(join(work, 'meta.json'), JSON.stringify(result.metafile));
// The SEA main script is compiled without a dynamic-import callback: import() of a built-in
// module (left by esbuild as is) becomes require(), which the injected script has for built-ins.
writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/\bimport\((["'])(node:[a-z_/]+)\1\)/g, 'Promise.resolve(require("$2"))'));

/** The node flags on bin/dbs.js's first line (`#!/usr/bin/env -S node FLAGS`). */
function shebangFlags() {
  const first = readFileSync(join(root, 'bin', 'dbs.js'), 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`bin/dbs.js: unexpected first line ${JSON.stringify(first)}`);
  return m[1].split(' ').filter(Boolean);
}

const seaConfig = join(work, 'sea-config.json');
const blob = join(work, 'sea-prep.blob');
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    // V8's code cache is not deterministic (two builds differ); without it the build is byte-reproducible.
    useCodeCache: process.env.DBS_EXE_CODE_CACHE === '1',
    useSnapshot: false,
    // The node flags of bin/dbs.js's shebang (one place says what they are).
    execArgv: shebangFlags(),
  }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'inherit', 'inherit'] });

const nodeBinary = realpathSync(process.execPath);
rmSync(out, { force: true });
copyFileSync(nodeBinary, out);
chmodSync(out, 0o755);
execFileSync(bin('postject'), [out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { stdio: ['ignore', 'ignore', 'pipe'] });

const size = statSync(out).size;
const digest = createHash('sha256').update(readFileSync(out)).digest('hex');
writeFileSync(`${out}.sha256`, `${digest}  dbs\n`);
process.stdout.write(`dist/dbs: ${(size / 1e6).toFixed(1)} MB (bundle ${(statSync(bundle).size / 1e6).toFixed(1)} MB), dbs ${pkg.version} ${commit}, Node ${process.versions.node}, sha256 ${digest}\n`);
