import { build } from 'esbuild';
const addon = process.argv[2];
await build({ entryPoints: ['exp/snap-entry.ts'], outfile: '/tmp/snap/dbs.cjs', bundle: true, platform: 'node', format: 'cjs', target: 'node24', logLevel: 'warning',
  plugins: [{ name: 'b', setup(b) { b.onLoad({ filter: /[\\/]better-sqlite3[\\/]lib[\\/]binding\.js$/ }, () => ({ contents: `exports.getBinding = () => require('node:module').createRequire('/x.js')(${JSON.stringify(addon)}); exports.getPrebuildPath = () => null;`, loader: 'js' })); } }],
  define: { DBS_BUILD: JSON.stringify({ version: '0.1.0', commit: 'snap' }), 'import.meta.url': '"file:///dbs-executable/dist/main.js"' } });
