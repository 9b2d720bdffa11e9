// Start-up floor variant: util.parseArgs, better-sqlite3 reads the plans. See run.mjs.
import Database from 'better-sqlite3';
const { parseArgs } = await import('node:util'); const { positionals } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean' } } });
if (positionals.join(' ') === 'plan list') {
  const db = new Database(process.env.DBS_HOME + '/catalog.db');
  db.pragma('journal_mode = WAL'); db.pragma('busy_timeout = 5000'); db.pragma('foreign_keys = ON');
  const rows = db.prepare('SELECT * FROM plans ORDER BY created_at, name').all();
  const cols = Object.keys(rows[0] ?? {}).slice(0, 15);
  process.stdout.write(cols.join('  ') + '\n' + rows.map((r) => cols.map((c) => String(r[c] ?? '-')).join('  ')).join('\n') + '\n');
  db.close();
}

