// Start-up diagnosis: which modules a dbs command loads, and through which import chain the
// heavy packages (age, execa, cosmiconfig, node-cron, better-sqlite3, commander) arrive.
//   node_modules/node/bin/node --import ./bench/loaded-modules.mjs bin/dbs.js plan list >/dev/null
// prints, on stderr at exit, one chain per package and the dist modules loaded.
import { registerHooks } from 'node:module';
const parent = new Map();
registerHooks({ resolve(s, c, n) { const r = n(s, c); if (!parent.has(r.url)) parent.set(r.url, c.parentURL); return r; } });
const short = (u) => (u ?? '').replace(new RegExp(`^${new URL('..', import.meta.url).href}`), '');
process.on('exit', () => {
  for (const want of ['age-encryption', 'execa/index', 'cosmiconfig/dist/index', 'node-cron', 'better-sqlite3/lib/index', 'commander/index']) {
    const u = [...parent.keys()].find((k) => k.includes(want));
    if (!u) continue;
    const chain = []; let x = u; while (x && chain.length < 12) { chain.push(short(x)); x = parent.get(x); }
    process.stderr.write(want + ': ' + chain.join(' <- ') + '\n');
  }
  process.stderr.write([...parent.keys()].filter(k=>k.includes('/dist/')&&!k.includes('node_modules')).map(short).join(' ') + '\n');
});
