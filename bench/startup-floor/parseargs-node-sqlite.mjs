// Start-up floor variant: util.parseArgs, node:sqlite reads the plans. See run.mjs.
import { parseArgs } from 'node:util';
import { DatabaseSync } from 'node:sqlite';
const { positionals } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean' } } });
if (positionals.join(' ') === 'plan list') {
  const db = new DatabaseSync(process.env.DBS_HOME + '/catalog.db');
  db.exec('PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON');
  const rows = db.prepare('SELECT * FROM plans ORDER BY created_at, name').all();
  const cols = Object.keys(rows[0] ?? {}).slice(0, 15);
  process.stdout.write(cols.join('  ') + '\n' + rows.map((r) => cols.map((c) => String(r[c] ?? '-')).join('  ')).join('\n') + '\n');
  db.close();
}
