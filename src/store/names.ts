// Names for shell completion, read from the catalog read-only: no migrations, no folder
// changes, no lock waits. The catalog may be missing, older or newer than this dbs knows:
// the caller treats any error as "no names".
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOG_FILE } from './catalog.js';
import { Db } from './sqlite.js';

export type NameKind = 'plan' | 'pool' | 'backup' | 'task' | 'restore' | 'alert';

/** At most this many ids of backups, tasks and restores (the newest). */
const ID_LIMIT = 500;

const QUERIES: Record<NameKind, string> = {
  plan: 'SELECT name FROM plans ORDER BY name',
  pool: 'SELECT name FROM pools ORDER BY name',
  // No alerts table before migration 11: the error means no names.
  alert: 'SELECT name FROM alerts ORDER BY name',
  backup: `SELECT id FROM backups ORDER BY rowid DESC LIMIT ${ID_LIMIT}`,
  task: `SELECT id FROM tasks ORDER BY rowid DESC LIMIT ${ID_LIMIT}`,
  restore: `SELECT id FROM restores ORDER BY rowid DESC LIMIT ${ID_LIMIT}`,
};

/** The names (plans, pools) or newest ids (backups, tasks, restores) in the catalog of `home`; [] without a catalog. */
export function readNames(home: string, kind: NameKind): string[] {
  const path = join(home, CATALOG_FILE);
  if (!existsSync(path)) return [];
  const db = new Db(path, { readonly: true, timeout: 200 });
  try {
    return (db.prepare(QUERIES[kind]).pluck().all() as unknown[]).map(String);
  } finally {
    db.close();
  }
}
