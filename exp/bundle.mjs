import { build } from 'esbuild';
const r = await build({ entryPoints: ['src/main.ts'], bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node22', outdir: '/tmp/bund/dist', external: ['better-sqlite3', 'ssh2', 'cpu-features'], metafile: true, logLevel: 'warning', banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
console.log(Object.keys(r.metafile.outputs).length, 'outputs');
