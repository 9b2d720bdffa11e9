// SQLite snapshot through SQLite's online backup API: a consistent copy while the
// application keeps writing (WAL readers never block writers), checked with
// PRAGMA quick_check, then streamed into the pool as a plain SQLite file. The same engine
// backs up dbs's own catalog (`--source catalog`). node:sqlite, the SQLite the catalog uses:
// two SQLite libraries must never open one file in one process (their POSIX locks would
// cancel each other: sqlite.org/howtocorrupt.html 2.2.3), and the catalog is such a file.
import { createReadStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { createWriteStream, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { backup as sqliteBackup, DatabaseSync } from 'node:sqlite';
import { DbsError } from '../../errors.js';
import type { Endpoint, Engine, EngineRunContext, ProbeInfo, RestoreOutcome, ToolInfo } from '../types.js';
import type { SqliteBackupOutcome, SqliteBackupRequest, SqliteFacts, SqliteRestoreOptions, SqliteRestoreRequest, SqliteSelection } from './types.js';

/** A pragma's one value (PRAGMA page_size -> 4096). */
function pragmaValue(db: DatabaseSync, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).get();
  return row ? Object.values(row)[0] : undefined;
}

function openReadonly(path: string): DatabaseSync {
  if (!existsSync(path)) {
    throw new DbsError('SOURCE_NOT_FOUND', `the SQLite database ${path} does not exist`, { hint: 'check the path in sqlite:///PATH' });
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    db.exec('PRAGMA busy_timeout = 10000');
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
  } catch (cause) {
    db?.close();
    throw new DbsError('INVALID_ARGUMENT', `${path} is not a SQLite database (${(cause as Error).message})`, {
      cause,
      hint: 'point sqlite:///PATH at a SQLite database file',
    });
  }
  return db;
}

function quickCheck(db: DatabaseSync, what: string): void {
  const rows = db.prepare('PRAGMA quick_check').all() as { quick_check: string }[];
  const bad = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
  if (bad.length) throw new DbsError('BACKUP_FAILED', `${what} failed SQLite's quick_check: ${bad.slice(0, 3).join('; ')}`, { hint: 'repair the database before backing it up' });
}

function pathOf(ep: Endpoint): string {
  if (!ep.path) throw new DbsError('INVALID_ARGUMENT', `${ep.url} has no file path`, { hint: 'use sqlite:///absolute/path.db' });
  return ep.path;
}

export class SqliteEngine implements Engine<SqliteSelection, SqliteFacts, SqliteRestoreOptions> {
  readonly kind = 'sqlite' as const;
  readonly types = ['snapshot'] as const;

  async tools(): Promise<ToolInfo[]> {
    const db = new DatabaseSync(':memory:');
    const v = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    db.close();
    return [{ name: 'SQLite (built into Node.js, node:sqlite)', version: v, found: true, purpose: 'SQLite snapshots and the catalog backup' }];
  }

  async probe(source: Endpoint): Promise<ProbeInfo> {
    const db = openReadonly(pathOf(source));
    try {
      const v = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
      return { flavor: 'sqlite', serverVersion: v, problems: [], facts: { tables } };
    } finally {
      db.close();
    }
  }

  async backup(req: SqliteBackupRequest, ctx: EngineRunContext): Promise<SqliteBackupOutcome> {
    const path = pathOf(req.source);
    const copy = join(ctx.tmpDir, 'snapshot.db');
    const db = openReadonly(path);
    let version: string;
    try {
      version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      // One step copies every page under one read transaction: a consistent snapshot even
      // while other connections write (they would otherwise restart a paged backup).
      await sqliteBackup(db, copy, {
        rate: 0x7fffffff,
        progress: () => ctx.signal.throwIfAborted(),
      });
      ctx.signal.throwIfAborted();
    } catch (e) {
      if (e instanceof DbsError || ctx.signal.aborted) throw e;
      throw new DbsError('BACKUP_FAILED', `SQLite backup of ${path} failed: ${(e as Error).message}`, { cause: e });
    } finally {
      db.close();
    }
    const snap = new DatabaseSync(copy, { readOnly: true });
    let facts: Record<string, unknown>;
    try {
      quickCheck(snap, `the snapshot of ${path}`);
      const tables = (snap.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      const counts: Record<string, number> = {};
      for (const t of tables) counts[t] = (snap.prepare(`SELECT count(*) AS n FROM "${t.replaceAll('"', '""')}"`).get() as { n: number }).n;
      facts = {
        sqliteVersion: version,
        pageSize: pragmaValue(snap, 'page_size'),
        pageCount: pragmaValue(snap, 'page_count'),
        tables: counts,
        quickCheck: 'ok',
      };
    } finally {
      snap.close();
    }
    const size = (await stat(copy)).size;
    await req.sink.write('database', createReadStream(copy, { highWaterMark: 1 << 20 }), { extension: '.sqlite', sizeHint: size });
    return { serverVersion: version, toolName: 'sqlite3_backup', toolVersion: version, facts };
  }

  async restore(req: SqliteRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    const target = pathOf(req.target);
    if (existsSync(target) && !req.options.replace) {
      throw new DbsError('ALREADY_EXISTS', `the restore target ${target} exists`, { hint: 'choose a new file, or pass --yes to replace it' });
    }
    if (!existsSync(dirname(target))) throw new DbsError('INVALID_PATH', `the folder ${dirname(target)} does not exist`, { hint: 'create it first' });
    const art = req.artifacts[0];
    if (!art) throw new DbsError('RESTORE_FAILED', 'the backup has no database artifact');
    const tmp = join(dirname(target), `.dbs-restore-${process.pid}-${Date.now()}.tmp`);
    let bytes = 0;
    try {
      const src = await art.open();
      src.on('data', (c: Buffer) => (bytes += c.length));
      await pipeline(src, createWriteStream(tmp, { mode: 0o600 }), { signal: ctx.signal });
      const db = new DatabaseSync(tmp);
      try {
        const rows = db.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[];
        if (rows.some((r) => r.integrity_check !== 'ok')) throw new DbsError('RESTORE_FAILED', `the restored database fails integrity_check: ${rows[0].integrity_check}`);
      } finally {
        db.close();
      }
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { bytes, facts: { path: target } };
  }
}
