// What a bucket restore must remember, in a scratch SQLite file in the run's tmpDir (never a
// JS array: memory stays flat at a million objects): the index it restores (filtered by
// --path), the keys the target already has, the keys it writes. (A backup needs none of this:
// it streams, see index-file.ts.) Rows are keyed by the object key (relative to
// the prefix); BINARY collation orders them as S3 lists them (UTF-8 byte order).
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { lineBatches, parseIndexLine } from './index-file.js';

export interface ObjectRow {
  key: string;
  size: number;
  etag: string;
  content_type: string | null;
  metadata: string;
  last_modified: string;
  /** The backup whose data.tar holds the bytes; null: this backup. */
  src: string | null;
  off: number;
  headers: string | null;
  deleted: number;
}

const COLUMNS = 'key TEXT PRIMARY KEY, size INTEGER, etag TEXT, content_type TEXT, metadata TEXT, last_modified TEXT, src TEXT, off INTEGER, headers TEXT, deleted INTEGER NOT NULL DEFAULT 0';

/** Commits every this many writes (one long transaction would be fine too; this bounds the WAL-less journal). */
const BATCH = 5000;

export class Scratch {
  readonly db: DatabaseSync;
  #pending = 0;

  constructor(dir: string, name: string) {
    this.db = new DatabaseSync(join(dir, name));
    this.db.exec('PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16000; PRAGMA temp_store = FILE');
    this.db.exec(`CREATE TABLE IF NOT EXISTS cur (${COLUMNS}); CREATE TABLE IF NOT EXISTS existing (key TEXT PRIMARY KEY); CREATE TABLE IF NOT EXISTS written (key TEXT PRIMARY KEY, existed INTEGER NOT NULL)`);
    this.db.exec('BEGIN');
  }

  /** Counts a write; commits in batches. */
  tick(): void {
    if (++this.#pending >= BATCH) this.flush();
  }

  flush(): void {
    this.#pending = 0;
    this.db.exec('COMMIT; BEGIN');
  }

  close(): void {
    try {
      if (this.db.isTransaction) this.db.exec('COMMIT');
    } finally {
      this.db.close();
    }
  }

  /** Loads an index artifact's object lines into `cur`, line by line (checked by parseIndexLine). `keep` filters them. */
  async load(lines: Readable, where: string, selfId: string | null, keep: (key: string) => boolean = () => true): Promise<number> {
    const ins = this.db.prepare('INSERT OR REPLACE INTO cur (key, size, etag, content_type, metadata, last_modified, src, off, headers, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    let n = 0;
    let lineNo = 0;
    for await (const batch of lineBatches(lines)) {
      for (const text of batch) {
        const l = parseIndexLine(text, ++lineNo, where);
        if (l === undefined || l === 'header' || 'deleted' in l || !keep(l.key)) continue;
        ins.run(l.key, l.size, l.etag, l.contentType ?? null, JSON.stringify(l.metadata ?? {}), l.lastModified, l.in ?? selfId, l.offset, l.headers ? JSON.stringify(l.headers) : null, 0);
        n++;
        this.tick();
      }
    }
    return n;
  }
}
