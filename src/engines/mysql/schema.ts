// What a selection means on a live server (which databases/tables/views exist, their sizes),
// and which privileges the connected user holds (parsed from SHOW GRANTS, which on MariaDB
// also lists the grants of the active role).
import type mysql from 'mysql2/promise';
import type {  } from '../types.js';
import type { MysqlSelection } from './types.js';
import { quoteIdent, rows, type MysqlFlavor } from './conn.js';

/** Schemas that are never part of "every database". */
export const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

export type ObjectType = 'table' | 'view' | 'sequence';

export interface DbObject {
  db: string;
  name: string;
  type: ObjectType;
  engine: string | null;
  /** data_length + index_length (0 for views). */
  bytes: number;
}

export interface ResolvedSelection {
  /** Databases for --databases, in order. */
  databases: string[];
  /** Databases dumped whole (with routines and events when there is no table subset). */
  fullDatabases: string[];
  /** Everything that will be dumped. */
  objects: DbObject[];
  /** db.table of objects of the dumped databases that are left out (--ignore-table). */
  ignoreTables: string[];
  /** True when tables were selected: no routines/events are dumped. */
  tableSubset: boolean;
  /** Missing databases/tables, one message each. */
  missing: string[];
  /** Sum of data_length + index_length of the dumped tables. */
  sizeBytes: number;
}

export async function listDatabases(conn: mysql.Connection): Promise<string[]> {
  const r = await rows<{ Database: string }>(conn, 'SHOW DATABASES');
  return r.map((x) => String(x.Database));
}

export async function listObjects(conn: mysql.Connection, dbs: string[]): Promise<DbObject[]> {
  if (dbs.length === 0) return [];
  const r = await rows<{ s: string; n: string; t: string; e: string | null; d: string | number | null; i: string | number | null }>(
    conn,
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n, TABLE_TYPE AS t, ENGINE AS e, DATA_LENGTH AS d, INDEX_LENGTH AS i
       FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    [dbs],
  );
  const out: DbObject[] = [];
  for (const x of r) {
    const type: ObjectType | undefined =
      x.t === 'BASE TABLE' ? 'table' : x.t === 'VIEW' ? 'view' : x.t === 'SEQUENCE' ? 'sequence' : undefined;
    if (!type) continue; // SYSTEM VIEW, TEMPORARY
    out.push({
      db: String(x.s),
      name: String(x.n),
      type,
      engine: x.e === null ? null : String(x.e),
      bytes: type === 'view' ? 0 : Number(x.d ?? 0) + Number(x.i ?? 0),
    });
  }
  return out;
}

/**
 * Splits "db.table" against what exists: names may contain dots, so every split is tried and
 * the first that names an existing object wins; otherwise the split at the first dot.
 */
export function splitTableName(name: string, exists: (db: string, t: string) => boolean): [string, string] | undefined {
  const dots: number[] = [];
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) dots.push(i);
  if (dots.length === 0) return undefined;
  for (const i of dots) {
    const db = name.slice(0, i);
    const t = name.slice(i + 1);
    if (exists(db, t)) return [db, t];
  }
  const i = dots[0] as number;
  return [name.slice(0, i), name.slice(i + 1)];
}

/**
 * Resolves a selection on the server:
 *  - tables set: their databases are dumped with --ignore-table for every other object of
 *    them; databases also listed in `databases` are dumped whole (the union);
 *  - databases set: those;
 *  - otherwise (all, or nothing given): every database except the system schemas.
 */
export async function resolveSelection(conn: mysql.Connection, sel: MysqlSelection): Promise<ResolvedSelection> {
  const existingDbs = await listDatabases(conn);
  const dbSet = new Set(existingDbs);
  const missing: string[] = [];
  const tableSubset = sel.tables.length > 0;

  let full: string[];
  if (tableSubset || (sel.databases.length > 0 && !sel.all)) {
    full = unique(sel.databases);
  } else {
    full = existingDbs.filter((d) => !SYSTEM_SCHEMAS.has(d)).sort();
  }
  for (const d of full) if (!dbSet.has(d)) missing.push(`database \`${d}\` does not exist (or the user has no privilege on it)`);
  full = full.filter((d) => dbSet.has(d));

  // Candidate databases of the selected tables: every prefix before a dot that exists.
  const tableDbsCandidates = new Set<string>();
  for (const t of sel.tables) {
    for (let i = t.indexOf('.'); i >= 0; i = t.indexOf('.', i + 1)) {
      const db = t.slice(0, i);
      if (dbSet.has(db)) tableDbsCandidates.add(db);
    }
  }
  const objects = await listObjects(conn, unique([...full, ...tableDbsCandidates]));
  const byKey = new Map(objects.map((o) => [`${o.db}\u0000${o.name}`, o]));

  const fullSet = new Set(full);
  const selected = new Map<string, DbObject>();
  const partialDbs: string[] = [];
  for (const t of sel.tables) {
    const split = splitTableName(t, (db, n) => byKey.has(`${db}\u0000${n}`));
    if (!split) {
      missing.push(`table "${t}" must be given as database.table`);
      continue;
    }
    const [db, n] = split;
    const o = byKey.get(`${db}\u0000${n}`);
    if (!o) {
      missing.push(
        dbSet.has(db) ? `table \`${db}\`.\`${n}\` does not exist` : `database \`${db}\` of table ${t} does not exist`,
      );
      continue;
    }
    if (fullSet.has(db)) continue;
    selected.set(`${db}\u0000${n}`, o);
    if (!partialDbs.includes(db)) partialDbs.push(db);
  }

  const databases = [...full, ...partialDbs.filter((d) => !fullSet.has(d))];
  const dumped: DbObject[] = [];
  const ignoreTables: string[] = [];
  for (const o of objects) {
    if (fullSet.has(o.db)) dumped.push(o);
    else if (partialDbs.includes(o.db)) {
      if (selected.has(`${o.db}\u0000${o.name}`)) dumped.push(o);
      else ignoreTables.push(`${o.db}.${o.name}`);
    }
  }
  return {
    databases,
    fullDatabases: full,
    objects: dumped,
    ignoreTables,
    tableSubset,
    missing,
    sizeBytes: dumped.reduce((n, o) => n + o.bytes, 0),
  };
}

function unique<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

// ---------------------------------------------------------------------------------------------
// Privileges

const ALL = '*ALL*';

/** The privileges of the connected user, from SHOW GRANTS lines. */
export class Grants {
  readonly global = new Set<string>();
  readonly schemas: Array<{ pattern: string; re: RegExp; privs: Set<string> }> = [];
  readonly tables = new Map<string, Set<string>>();

  has(priv: string, db: string, table?: string): boolean {
    const p = priv.toUpperCase();
    const ok = (s: Set<string> | undefined): boolean => !!s && (s.has(p) || s.has(ALL));
    if (ok(this.global)) return true;
    for (const s of this.schemas) if (s.re.test(db) && ok(s.privs)) return true;
    return table !== undefined && ok(this.tables.get(`${db}\u0000${table}`));
  }

  /** Global privilege only. */
  hasGlobal(priv: string): boolean {
    return this.global.has(priv.toUpperCase()) || this.global.has(ALL);
  }
}

/** Parses `GRANT privs ON obj TO ...` lines (roles, PROXY and column grants are ignored). */
export function parseGrants(lines: string[]): Grants {
  const g = new Grants();
  for (const line of lines) {
    const m = /^GRANT (.+?) ON (?:(TABLE|FUNCTION|PROCEDURE|PACKAGE BODY|PACKAGE) )?((?:\*|`(?:[^`]|``)*`)\.(?:\*|`(?:[^`]|``)*`)) TO /.exec(
      line,
    );
    if (!m) continue;
    if (m[2] && m[2] !== 'TABLE') continue; // routine-level grants
    const privs = splitPrivileges(m[1] as string);
    if (privs.size === 0) continue;
    const obj = m[3] as string;
    const [dbPart, tablePart] = splitObject(obj);
    if (dbPart === '*') {
      addAll(g.global, privs);
    } else if (tablePart === '*') {
      const db = dbPart.slice(1, -1).replace(/``/g, '`');
      g.schemas.push({ pattern: db, re: grantPatternToRegExp(db), privs });
    } else {
      const db = dbPart.slice(1, -1).replace(/``/g, '`');
      const t = tablePart.slice(1, -1).replace(/``/g, '`');
      const k = `${db}\u0000${t}`;
      const s = g.tables.get(k) ?? new Set<string>();
      addAll(s, privs);
      g.tables.set(k, s);
    }
  }
  return g;
}

function addAll(into: Set<string>, from: Set<string>): void {
  for (const p of from) into.add(p);
}

function splitObject(obj: string): [string, string] {
  // obj is `db`.`t`, `db`.*, *.* — find the dot outside backquotes.
  let inQ = false;
  for (let i = 0; i < obj.length; i++) {
    const c = obj[i];
    if (c === '`') inQ = !inQ;
    else if (c === '.' && !inQ) return [obj.slice(0, i), obj.slice(i + 1)];
  }
  return [obj, '*'];
}

/** "SELECT, INSERT (a, b), SHOW VIEW" -> {SELECT, SHOW VIEW}; column privileges are skipped. */
function splitPrivileges(text: string): Set<string> {
  const out = new Set<string>();
  let depth = 0;
  let cur = '';
  let column = false;
  const flush = (): void => {
    const p = cur.trim().toUpperCase();
    if (p && !column && p !== 'USAGE') out.add(p === 'ALL' || p === 'ALL PRIVILEGES' ? ALL : p);
    cur = '';
    column = false;
  };
  for (const c of text) {
    if (c === '(') {
      depth++;
      column = true;
    } else if (c === ')') depth--;
    else if (c === ',' && depth === 0) flush();
    else if (depth === 0) cur += c;
  }
  flush();
  return out;
}

/** A db name pattern of a grant (`%`, `_` wildcards; backslash escapes) as a RegExp. */
export function grantPatternToRegExp(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '\\' && i + 1 < p.length) {
      re += escapeRe(p[++i] as string);
    } else if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** SHOW GRANTS of the current user, plus (MySQL 8) the grants of the active roles. */
export async function readGrants(conn: mysql.Connection, flavor: MysqlFlavor): Promise<Grants> {
  const lines: string[] = [];
  const collect = (r: Record<string, unknown>[]): void => {
    for (const row of r) for (const v of Object.values(row)) lines.push(String(v));
  };
  collect(await rows(conn, 'SHOW GRANTS'));
  if (flavor === 'mysql') {
    try {
      const [r] = await rows<{ r: string | null }>(conn, 'SELECT CURRENT_ROLE() AS r');
      const roles = String(r?.r ?? 'NONE');
      if (roles && roles !== 'NONE') collect(await rows(conn, `SHOW GRANTS FOR CURRENT_USER() USING ${roles}`));
    } catch {
      // no roles (MySQL 5.7)
    }
  }
  return parseGrants(lines);
}

export interface PrivilegeReport {
  problems: string[];
  warnings: string[];
}

/**
 * What the user lacks for a consistent, complete dump of the resolved selection:
 *  - problems: SELECT on every dumped object, SHOW VIEW on views, TRIGGER on tables (without
 *    it triggers are silently left out), EVENT on whole databases (without it the dump fails);
 *  - warnings: routines may be invisible; non-transactional tables are outside the snapshot.
 * LOCK TABLES is not needed: --single-transaction takes no table locks.
 */
export function checkPrivileges(g: Grants, res: ResolvedSelection, flavor: MysqlFlavor): PrivilegeReport {
  const missing = new Map<string, Set<string>>(); // "PRIV\0db" -> objects
  const need = (priv: string, db: string, name?: string): void => {
    if (g.has(priv, db, name)) return;
    const k = `${priv}\u0000${db}`;
    const s = missing.get(k) ?? new Set<string>();
    if (name !== undefined) s.add(name);
    missing.set(k, s);
  };
  for (const o of res.objects) {
    need('SELECT', o.db, o.name);
    if (o.type === 'view') need('SHOW VIEW', o.db, o.name);
    if (o.type === 'table') need('TRIGGER', o.db, o.name);
  }
  if (!res.tableSubset) for (const db of res.fullDatabases) need('EVENT', db);

  const problems: string[] = [];
  for (const [k, objs] of missing) {
    const [priv, db] = k.split('\u0000') as [string, string];
    const list = [...objs];
    const which =
      list.length === 0 ? '' : ` (${list.slice(0, 5).map((n) => quoteIdent(n)).join(', ')}${list.length > 5 ? `, +${list.length - 5} more` : ''})`;
    const why =
      priv === 'TRIGGER'
        ? ': its triggers would be left out of the dump'
        : priv === 'EVENT'
          ? ': the dump of events would fail'
          : '';
    problems.push(`the user lacks the ${priv} privilege on database ${quoteIdent(db)}${which}${why}`);
  }

  const warnings: string[] = [];
  if (!res.tableSubset && res.fullDatabases.length > 0) {
    const seesRoutines =
      g.hasGlobal('SELECT') ||
      (flavor === 'mariadb' ? g.has('SELECT', 'mysql', 'proc') : g.hasGlobal('SHOW_ROUTINE'));
    if (!seesRoutines) {
      warnings.push(
        flavor === 'mariadb'
          ? 'the user can only see its own routines: grant SELECT on mysql.proc (or global SELECT) so every routine is dumped'
          : 'the user can only see its own routines: grant SHOW_ROUTINE (or global SELECT) so every routine is dumped',
      );
    }
  }
  const nonTx = res.objects.filter((o) => o.type === 'table' && o.engine !== null && !/^(InnoDB|RocksDB|TokuDB|ndbcluster)$/i.test(o.engine));
  if (nonTx.length > 0) {
    const names = nonTx.slice(0, 5).map((o) => `${o.db}.${o.name} (${o.engine})`);
    warnings.push(
      `tables of non-transactional engines are not covered by the consistent snapshot: ${names.join(', ')}${nonTx.length > 5 ? `, +${nonTx.length - 5} more` : ''}`,
    );
  }
  return { problems, warnings };
}

/**
 * Whether binlog coordinates can be recorded. MariaDB takes them from the snapshot
 * (binlog_snapshot_file/position status, no privilege, no FTWRL); MySQL's mysqldump needs
 * RELOAD (FLUSH TABLES WITH READ LOCK) and REPLICATION CLIENT (SHOW MASTER STATUS).
 */
export function binlogPlan(
  logBin: boolean,
  server: MysqlFlavor,
  tool: MysqlFlavor,
  g: Grants,
): { record: boolean; reason?: string } {
  if (!logBin) return { record: false, reason: 'the server does not write a binary log (log_bin is off)' };
  if (server === 'mariadb' && tool === 'mariadb') return { record: true };
  const reload = g.hasGlobal('RELOAD');
  const repl = g.hasGlobal('REPLICATION CLIENT') || g.hasGlobal('SUPER') || g.hasGlobal('BINLOG MONITOR');
  if (reload && repl) return { record: true };
  const lacking = [!reload ? 'RELOAD' : '', !repl ? 'REPLICATION CLIENT' : ''].filter(Boolean).join(' and ');
  return { record: false, reason: `binlog coordinates are not recorded: the user lacks ${lacking}` };
}
