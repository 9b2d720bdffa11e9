// Start-up floor variant: commander parses argv, better-sqlite3 reads the plans (the chosen stack). See run.mjs.
import { Command } from 'commander';
import Database from 'better-sqlite3';
const program = new Command('dbs');
program.command('plan').command('list').option('--json').action(() => {
  const db = new Database(process.env.DBS_HOME + '/catalog.db');
  db.pragma('journal_mode = WAL'); db.pragma('busy_timeout = 5000'); db.pragma('foreign_keys = ON');
  const rows = db.prepare('SELECT * FROM plans ORDER BY created_at, name').all();
  const cols = Object.keys(rows[0] ?? {}).slice(0, 15);
  process.stdout.write(cols.join('  ') + '\n' + rows.map((r) => cols.map((c) => String(r[c] ?? '-')).join('  ')).join('\n') + '\n');
  db.close();
});
await program.parseAsync(process.argv);
