// Data sources shared by tests.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from './testbed.js';

/** A small SQLite file: one table with one row. */
export function smallSqlite(): string {
  const path = join(tempDir('src'), 'small.db');
  const db = new Database(path);
  db.exec("CREATE TABLE t (x); INSERT INTO t VALUES ('hello');");
  db.close();
  return path;
}

/** A SQLite file of about `mb` MB of incompressible rows: slow enough to back up. */
export function bigSqlite(mb: number): string {
  const path = join(tempDir('src'), 'big.db');
  const db = new Database(path);
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
  const ins = db.prepare('INSERT INTO blobs (b) VALUES (randomblob(65536))');
  db.transaction(() => {
    for (let i = 0; i < mb * 16; i++) ins.run();
  })();
  db.close();
  return path;
}
