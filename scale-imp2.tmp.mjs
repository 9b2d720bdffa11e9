import { registerHooks } from 'node:module';
const parent = new Map();
registerHooks({ resolve(s, c, n) { const r = n(s, c); if (!parent.has(r.url)) parent.set(r.url, c.parentURL); return r; } });
const short = (u) => (u ?? '').replace(/^file:\/\/\/work\/wt-scale\//, '');
process.on('exit', () => {
  for (const want of ['age-encryption', 'execa/index', 'cosmiconfig/dist/index', 'node-cron', 'better-sqlite3/lib/index', 'commander/index']) {
    const u = [...parent.keys()].find((k) => k.includes(want));
    if (!u) continue;
    const chain = []; let x = u; while (x && chain.length < 12) { chain.push(short(x)); x = parent.get(x); }
    process.stderr.write(want + ': ' + chain.join(' <- ') + '\n');
  }
  process.stderr.write([...parent.keys()].filter(k=>k.includes('/dist/')&&!k.includes('node_modules')).map(short).join(' ') + '\n');
});
