// Keeps a MySQL restore target as it was when the restore fails.
//
// Before the dump is sent:
// - the databases that exist, and the objects (tables, views, sequences, routines, events)
//   they hold, are recorded;
// - with --replace, every object the restore would overwrite is moved aside inside its own
//   database (RENAME TABLE to `_dbs_h<tag>_<n>`: metadata only, its triggers and foreign keys
//   move with it; a cross-database move is refused for views and tables with triggers).
//   Trigger and stored-program definitions the dump would replace are saved in a table
//   `_dbs_h<tag>_ddl` of the same database and dropped, since their names are per database.
// After a failure (rollback): everything the restore created is dropped (databases that did
// not exist, objects that were not there before), and what was moved aside is put back.
// After success (commit): what was moved aside and is now replaced is dropped; an object the
// dump did not recreate is put back.
//
// When dbs is killed in the middle, the previous data is still there under the `_dbs_h` names.
import type mysql from 'mysql2/promise';
import { randomBytes } from 'node:crypto';
import { rows, quoteIdent } from './conn.js';

type Kind = 'BASE TABLE' | 'VIEW' | 'SEQUENCE';
interface Held {
  db: string;
  name: string;
  hold: string;
  kind: Kind;
}
interface SavedDdl {
  db: string;
  kind: 'TRIGGER' | 'PROCEDURE' | 'FUNCTION' | 'EVENT';
  name: string;
  ddl: string;
  /** Triggers: the table they belong to. */
  table?: string;
}

const q = quoteIdent;
const key = (db: string, name: string): string => `${db}\u0000${name}`;

async function objectsOf(conn: mysql.Connection, dbs: string[]): Promise<Array<{ db: string; name: string; kind: Kind }>> {
  if (dbs.length === 0) return [];
  const r = await rows<{ s: string; n: string; t: string }>(conn, "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n, TABLE_TYPE AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) AND TABLE_TYPE IN ('BASE TABLE','VIEW','SEQUENCE')", [dbs]);
  return r.map((x) => ({ db: String(x.s), name: String(x.n), kind: String(x.t) as Kind }));
}

async function programsOf(conn: mysql.Connection, dbs: string[]): Promise<Array<{ db: string; name: string; kind: SavedDdl['kind'] }>> {
  if (dbs.length === 0) return [];
  const r = await rows<{ s: string; n: string; t: string }>(conn, 'SELECT ROUTINE_SCHEMA AS s, ROUTINE_NAME AS n, ROUTINE_TYPE AS t FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (?)', [dbs]);
  const e = await rows<{ s: string; n: string }>(conn, 'SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (?)', [dbs]);
  return [
    ...r.map((x) => ({ db: String(x.s), name: String(x.n), kind: String(x.t) as SavedDdl['kind'] })),
    ...e.map((x) => ({ db: String(x.s), name: String(x.n), kind: 'EVENT' as const })),
  ];
}

async function showCreate(conn: mysql.Connection, kind: SavedDdl['kind'], db: string, name: string): Promise<string> {
  const r = await rows<Record<string, unknown>>(conn, `SHOW CREATE ${kind} ${q(db)}.${q(name)}`);
  const col = { TRIGGER: 'SQL Original Statement', PROCEDURE: 'Create Procedure', FUNCTION: 'Create Function', EVENT: 'Create Event' }[kind];
  const ddl = r[0]?.[col];
  if (typeof ddl !== 'string') throw new Error(`cannot read the definition of ${kind.toLowerCase()} ${db}.${name} (SHOW CREATE ${kind} gave nothing: missing privilege?)`);
  return ddl;
}

export class TargetGuard {
  readonly tag = randomBytes(3).toString('hex');
  #existingDbs = new Set<string>();
  #before = new Set<string>();
  #programsBefore = new Set<string>();
  #held: Held[] = [];
  #saved: SavedDdl[] = [];
  #dbs: string[] = [];

  /** Where the previous data is while the restore runs (for messages). */
  describeHeld(): string {
    return this.#held.length ? `the previous objects are kept as ${this.#held.map((h) => `${q(h.db)}.${q(h.hold)}`).slice(0, 5).join(', ')}${this.#held.length > 5 ? ', ...' : ''}` : '';
  }

  /**
   * Records the target and, with `replace`, moves aside the objects the restore overwrites:
   * `objects` ([db, name]) when the backup tells, else every object of the target databases.
   */
  async prepare(conn: mysql.Connection, o: { databases: string[]; objects?: Array<[string, string]>; replace: boolean }): Promise<void> {
    this.#dbs = o.databases;
    const have = await rows<{ s: string }>(conn, 'SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA');
    for (const x of have) if (o.databases.includes(String(x.s))) this.#existingDbs.add(String(x.s));
    const dbs = [...this.#existingDbs];
    const objs = await objectsOf(conn, dbs);
    for (const x of objs) this.#before.add(key(x.db, x.name));
    const progs = await programsOf(conn, dbs);
    for (const p of progs) this.#programsBefore.add(`${p.kind}\u0000${key(p.db, p.name)}`);
    if (!o.replace) return;

    const wanted = o.objects ? new Set(o.objects.map(([d, n]) => key(d, n))) : undefined;
    const toHold = objs.filter((x) => !wanted || wanted.has(key(x.db, x.name)));
    if (toHold.length === 0 && (wanted || progs.length === 0)) return;
    const held = new Set(toHold.map((x) => key(x.db, x.name)));
    // Triggers of the objects moved aside (their names would clash with the dump's).
    const trig = dbs.length
      ? await rows<{ s: string; n: string; t: string }>(conn, 'SELECT TRIGGER_SCHEMA AS s, TRIGGER_NAME AS n, EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (?)', [dbs])
      : [];
    const saved: SavedDdl[] = [];
    for (const t of trig) {
      if (!held.has(key(String(t.s), String(t.t)))) continue;
      saved.push({ db: String(t.s), kind: 'TRIGGER', name: String(t.n), table: String(t.t), ddl: await showCreate(conn, 'TRIGGER', String(t.s), String(t.n)) });
    }
    // Whole-database restores recreate stored programs (DROP ... IF EXISTS in the dump).
    if (!wanted) for (const p of progs) saved.push({ ...p, ddl: await showCreate(conn, p.kind, p.db, p.name) });

    for (const db of new Set(saved.map((s) => s.db))) {
      await conn.query(`CREATE TABLE ${q(db)}.${q(`_dbs_h${this.tag}_ddl`)} (kind VARCHAR(16) NOT NULL, name VARCHAR(64) NOT NULL, tbl VARCHAR(64), ddl LONGTEXT NOT NULL)`);
      for (const s of saved.filter((x) => x.db === db)) {
        await conn.query(`INSERT INTO ${q(db)}.${q(`_dbs_h${this.tag}_ddl`)} VALUES (?, ?, ?, ?)`, [s.kind, s.name, s.table ?? null, s.ddl]);
      }
    }
    for (const s of saved) {
      await conn.query(`DROP ${s.kind} IF EXISTS ${q(s.db)}.${q(s.name)}`);
      this.#saved.push(s);
    }
    let n = 0;
    for (const x of toHold) {
      const hold = `_dbs_h${this.tag}_${n++}`;
      await conn.query(`RENAME TABLE ${q(x.db)}.${q(x.name)} TO ${q(x.db)}.${q(hold)}`);
      this.#held.push({ db: x.db, name: x.name, hold, kind: x.kind });
    }
  }

  #ours(name: string): boolean {
    return name.startsWith(`_dbs_h${this.tag}_`);
  }

  /** Undoes the restore: drops what it created and puts back what was moved aside. */
  async rollback(conn: mysql.Connection): Promise<void> {
    await conn.query('SET FOREIGN_KEY_CHECKS=0');
    const created = [...new Set(this.#dbs)].filter((d) => !this.#existingDbs.has(d));
    const have = new Set((await rows<{ s: string }>(conn, 'SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA')).map((x) => String(x.s)));
    for (const db of created) if (have.has(db)) await conn.query(`DROP DATABASE ${q(db)}`);
    const dbs = [...this.#existingDbs];
    for (const x of await objectsOf(conn, dbs)) {
      if (this.#before.has(key(x.db, x.name)) || this.#ours(x.name)) continue;
      await conn.query(`DROP ${x.kind === 'VIEW' ? 'VIEW' : 'TABLE'} IF EXISTS ${q(x.db)}.${q(x.name)}`);
    }
    for (const p of await programsOf(conn, dbs)) {
      if (this.#programsBefore.has(`${p.kind}\u0000${key(p.db, p.name)}`) && !this.#saved.some((s) => s.kind === p.kind && s.db === p.db && s.name === p.name)) continue;
      await conn.query(`DROP ${p.kind} IF EXISTS ${q(p.db)}.${q(p.name)}`);
    }
    for (const h of this.#held) {
      await conn.query(`DROP ${h.kind === 'VIEW' ? 'VIEW' : 'TABLE'} IF EXISTS ${q(h.db)}.${q(h.name)}`);
      await conn.query(`RENAME TABLE ${q(h.db)}.${q(h.hold)} TO ${q(h.db)}.${q(h.name)}`);
    }
    for (const s of this.#saved) {
      await conn.query(`DROP ${s.kind} IF EXISTS ${q(s.db)}.${q(s.name)}`);
      await conn.query({ sql: `USE ${q(s.db)}` });
      await conn.query(s.ddl);
    }
    await this.#dropDdlTables(conn);
    await conn.query('SET FOREIGN_KEY_CHECKS=1');
  }

  /** Keeps the restore: drops what it replaced; puts back what it did not recreate. */
  async commit(conn: mysql.Connection): Promise<void> {
    if (this.#held.length === 0 && this.#saved.length === 0) return;
    await conn.query('SET FOREIGN_KEY_CHECKS=0');
    const now = new Set((await objectsOf(conn, [...this.#existingDbs])).map((x) => key(x.db, x.name)));
    for (const h of this.#held) {
      if (now.has(key(h.db, h.name))) await conn.query(`DROP ${h.kind === 'VIEW' ? 'VIEW' : 'TABLE'} ${q(h.db)}.${q(h.hold)}`);
      else await conn.query(`RENAME TABLE ${q(h.db)}.${q(h.hold)} TO ${q(h.db)}.${q(h.name)}`);
    }
    // A saved trigger whose table came back from the hold (the dump did not recreate it).
    const progs = new Set((await programsOf(conn, [...this.#existingDbs])).map((p) => `${p.kind}\u0000${key(p.db, p.name)}`));
    for (const s of this.#saved) {
      const back = s.kind === 'TRIGGER' ? this.#held.some((h) => h.db === s.db && h.name === s.table && !now.has(key(h.db, h.name))) : !progs.has(`${s.kind}\u0000${key(s.db, s.name)}`);
      if (!back) continue;
      await conn.query({ sql: `USE ${q(s.db)}` });
      await conn.query(s.ddl);
    }
    await this.#dropDdlTables(conn);
    await conn.query('SET FOREIGN_KEY_CHECKS=1');
  }

  async #dropDdlTables(conn: mysql.Connection): Promise<void> {
    for (const db of new Set(this.#saved.map((s) => s.db))) await conn.query(`DROP TABLE IF EXISTS ${q(db)}.${q(`_dbs_h${this.tag}_ddl`)}`);
  }
}
