// The SQLite connection of the catalog: Node's built-in node:sqlite behind the few calls the
// catalog makes (prepare, get/all/iterate/run, pluck, transactions, pragma).
//
// Why node:sqlite and not better-sqlite3: every dbs command opens the catalog, and loading the
// addon was ~20 M instructions of a `plan list` that may cost at most 2x `node -e 0` (issue 17;
// bench/results/startup.md). The SQLite engine and the bucket scratch use node:sqlite too (two
// SQLite libraries must not open one file in one process). Semantics kept from better-sqlite3, which
// the catalog was written against: `undefined` binds NULL, a named-parameter object may hold
// keys the statement does not use, nested transactions are savepoints, and errors carry the
// SQLite code name as `code` (SQLITE_CONSTRAINT_UNIQUE, SQLITE_BUSY: core/names.ts reads it).
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';

/** Positional values, or one object of named values (better-sqlite3's calling convention). */
type Params = unknown[];

/** Extended result codes the catalog's callers tell apart (sqlite3.h), else the primary code's name. */
const CODES: Record<number, string> = {
  1: 'SQLITE_ERROR',
  5: 'SQLITE_BUSY',
  6: 'SQLITE_LOCKED',
  8: 'SQLITE_READONLY',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  19: 'SQLITE_CONSTRAINT',
  26: 'SQLITE_NOTADB',
  275: 'SQLITE_CONSTRAINT_CHECK',
  517: 'SQLITE_BUSY_SNAPSHOT',
  787: 'SQLITE_CONSTRAINT_FOREIGNKEY',
  1299: 'SQLITE_CONSTRAINT_NOTNULL',
  1555: 'SQLITE_CONSTRAINT_PRIMARYKEY',
  2067: 'SQLITE_CONSTRAINT_UNIQUE',
};

/** An error of node:sqlite with `code` set to the SQLite code's name (node:sqlite says ERR_SQLITE_ERROR). */
function named(e: unknown): unknown {
  const err = e as { errcode?: unknown } | null;
  if (e instanceof Error && typeof err?.errcode === 'number') {
    const n = err.errcode;
    Object.defineProperty(e, 'code', { value: CODES[n] ?? CODES[n & 0xff] ?? `SQLITE_${n}`, configurable: true, writable: true });
  }
  return e;
}

/**
 * One parameter as node:sqlite binds it: undefined is NULL (better-sqlite3's rule, which the
 * catalog relies on), a boolean is 1 or 0; anything that is not a SQLite value is refused here,
 * naming the parameter, before it reaches SQLite.
 */
function sqlValue(v: unknown, name: string): SQLInputValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || v instanceof Uint8Array) return v;
  throw new TypeError(`SQL parameter ${name} is a ${typeof v}, not a value SQLite can store (null, number, bigint, string, bytes)`);
}

/** better-sqlite3's calling convention (positional values, or one object of named ones) as node:sqlite's. */
function bind(params: Params): { named?: Record<string, SQLInputValue>; positional: SQLInputValue[] } {
  const [first] = params;
  if (params.length === 1 && first !== null && typeof first === 'object' && !(first instanceof Uint8Array)) {
    const named: Record<string, SQLInputValue> = {};
    for (const [k, v] of Object.entries(first)) named[k] = sqlValue(v, `@${k}`);
    return { named, positional: [] };
  }
  return { positional: params.map((v, i) => sqlValue(v, `${i + 1}`)) };
}

/** Calls a statement method with bound parameters. */
function call<R>(f: (named: Record<string, SQLInputValue>, ...anonymous: SQLInputValue[]) => R, g: (...anonymous: SQLInputValue[]) => R, params: Params): R {
  const b = bind(params);
  return b.named ? f(b.named) : g(...b.positional);
}

const makers = new Map<string, (r: unknown) => unknown>();

/** Rows of one execution made key by key before the maker is compiled (see Statement.#rows). */
const COMPILE_AFTER = 32;

/**
 * A function turning a row array into an object with these column names, as one object literal
 * (one hidden class: ~2x faster than adding the keys one by one, for rows of 30 columns). Made
 * once per column list; the names are quoted with JSON.stringify, never pasted as code.
 */
function rowMaker(names: string[]): (r: unknown) => unknown {
  const key = names.join('\u0000');
  let f = makers.get(key);
  if (!f) {
    // Duplicate names (SELECT a.x, b.x): the last one wins, as in better-sqlite3.
    f = new Function('a', `return {${names.map((n, i) => `${JSON.stringify(n)}: a[${i}]`).join(', ')}};`) as (r: unknown) => unknown;
    if (makers.size < 1024) makers.set(key, f);
  }
  return f;
}

export class Statement<Row = unknown> {
  readonly #st: StatementSync;
  #pluck = false;
  /** True while an iterate() is not finished: the statement cannot run anything else meanwhile. */
  busy = false;

  constructor(st: StatementSync) {
    this.#st = st;
    st.setAllowUnknownNamedParameters(true);
    // Rows come as arrays and become objects here: node:sqlite builds each row object in C++,
    // which made `backup list --json` of 100k backups 1.5x slower than better-sqlite3 (arrays
    // are as fast; bench/results/catalog-scale-100000.md).
    st.setReturnArrays(true);
  }

  /** Rows as their first column's value. */
  pluck(on = true): this {
    this.#pluck = on;
    return this;
  }

  /**
   * The row maker of one execution: the first column's value (pluck), or an object by column
   * name. The compiled maker pays off after a few dozen rows; a short command reads a handful
   * of rows from a dozen statements, where compiling each would cost more than it saves.
   */
  #rows(): (r: unknown) => unknown {
    if (this.#pluck) return (r) => (r as unknown[])[0];
    const names = this.#st.columns().map((c) => c.name);
    let n = 0;
    let fast: ((r: unknown) => unknown) | undefined;
    return (r) => {
      if (fast) return fast(r);
      if (++n > COMPILE_AFTER) return (fast = rowMaker(names))(r);
      const a = r as unknown[];
      const o: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++) o[names[i]!] = a[i];
      return o;
    };
  }

  run(...params: Params): { changes: number; lastInsertRowid: number } {
    try {
      const r = call((n) => this.#st.run(n), (...a) => this.#st.run(...a), params);
      return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
    } catch (e) {
      throw named(e);
    }
  }

  get(...params: Params): Row | undefined {
    try {
      const r = call((n) => this.#st.get(n), (...a) => this.#st.get(...a), params);
      return (r === undefined ? undefined : this.#rows()(r)) as Row | undefined;
    } catch (e) {
      throw named(e);
    }
  }

  all(...params: Params): Row[] {
    try {
      return call((n) => this.#st.all(n), (...a) => this.#st.all(...a), params).map(this.#rows()) as Row[];
    } catch (e) {
      throw named(e);
    }
  }

  iterate(...params: Params): IterableIterator<Row> {
    let it: Iterator<unknown>;
    let row: (r: unknown) => unknown;
    try {
      it = call((n) => this.#st.iterate(n), (...a) => this.#st.iterate(...a), params);
      row = this.#rows();
    } catch (e) {
      throw named(e);
    }
    this.busy = true;
    const done = () => {
      this.busy = false;
    };
    return (function* () {
      try {
        for (;;) {
          let r: IteratorResult<unknown>;
          try {
            r = it.next();
          } catch (e) {
            throw named(e);
          }
          if (r.done) return;
          yield row(r.value) as Row;
        }
      } finally {
        it.return?.();
        done();
      }
    })();
  }
}

/** A function running `fn` in a transaction (BEGIN), with `.immediate()` (BEGIN IMMEDIATE: takes the write lock first). */
export interface Transaction<T> {
  (): T;
  immediate(): T;
}

/** How many prepared statements a connection keeps (lists build a few variants of their SQL). */
const STATEMENT_CACHE = 256;

export class Db {
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, Statement>();
  #depth = 0;

  constructor(path: string, o: { readonly?: boolean; timeout?: number } = {}) {
    try {
      this.#db = new DatabaseSync(path, { readOnly: o.readonly ?? false });
      this.#db.exec(`PRAGMA busy_timeout = ${Math.trunc(o.timeout ?? 5000)}`);
    } catch (e) {
      throw named(e);
    }
  }

  get open(): boolean {
    return this.#db.isOpen;
  }

  /**
   * A prepared statement, reused when the same SQL was prepared before and is not being
   * iterated: a daemon reading 1,000 plans every few seconds would otherwise compile the same
   * SQL again and again. A reused statement starts without pluck.
   */
  prepare<Row = unknown>(sql: string): Statement<Row> {
    const hit = this.#cache.get(sql);
    if (hit && !hit.busy) return hit.pluck(false) as Statement<Row>;
    let st: Statement;
    try {
      st = new Statement(this.#db.prepare(sql));
    } catch (e) {
      throw named(e);
    }
    if (!hit) {
      if (this.#cache.size >= STATEMENT_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(sql, st);
    }
    return st as Statement<Row>;
  }

  exec(sql: string): this {
    try {
      this.#db.exec(sql);
    } catch (e) {
      throw named(e);
    }
    return this;
  }

  /** Runs `PRAGMA text` and returns its rows; with `simple`, the first column of the first row. */
  pragma(text: string, o: { simple?: boolean } = {}): unknown {
    const st = this.prepare(`PRAGMA ${text}`);
    return o.simple ? st.pluck().get() : st.all();
  }

  /** fn in a transaction; inside another one, in a savepoint (an error rolls back only that part). */
  transaction<T>(fn: () => T): Transaction<T> {
    const run = (begin: string): T => {
      const nested = this.#depth > 0;
      const rollback = () => {
        try {
          this.exec(nested ? 'ROLLBACK TO dbs_nested; RELEASE dbs_nested' : 'ROLLBACK');
        } catch {
          // SQLite already rolled back (some errors end the transaction themselves): the first error tells.
        }
      };
      this.exec(nested ? 'SAVEPOINT dbs_nested' : begin);
      this.#depth++;
      let r: T;
      try {
        r = fn();
      } catch (e) {
        this.#depth--;
        rollback();
        throw e;
      }
      this.#depth--;
      try {
        this.exec(nested ? 'RELEASE dbs_nested' : 'COMMIT');
      } catch (e) {
        rollback();
        throw e;
      }
      return r;
    };
    return Object.assign(() => run('BEGIN'), { immediate: () => run('BEGIN IMMEDIATE') });
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

/** The version of SQLite inside node:sqlite (the catalog's). */
export function sqliteVersion(): string {
  const db = new DatabaseSync(':memory:');
  try {
    return String((db.prepare('select sqlite_version() as v').get() as { v: string }).v);
  } finally {
    db.close();
  }
}
