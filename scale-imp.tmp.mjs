// ESM: list loaded modules via a loader hook
import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(s, c, n) { const r = n(s, c); seen.push(r.url); return r; } });
process.on('exit', () => { const u = [...new Set(seen)]; const pk = {}; for (const x of u) { const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(x); const k = m ? m[1] : x.startsWith('node:') ? 'node:' : 'dbs'; pk[k] = (pk[k] ?? 0) + 1; } process.stderr.write(JSON.stringify(pk, null, 0) + '\n'); });
