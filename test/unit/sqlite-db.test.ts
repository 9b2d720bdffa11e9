// store/sqlite.ts at its boundary: what the catalog binds reaches node:sqlite as SQLite values
// (undefined as NULL, booleans as 1/0, unknown named keys ignored), anything else is refused
// naming the parameter; errors carry SQLite's code names; nested transactions are savepoints.
import { describe, expect, it } from 'vitest';
import { Db } from '../../src/store/sqlite.js';

describe('store/sqlite.ts Db', () => {
  it('binds what better-sqlite3 bound and refuses what SQLite cannot store', () => {
    const db = new Db(':memory:');
    try {
      expect(db.prepare('SELECT ? AS a, ? AS b, ? AS c').get(undefined, true, Buffer.from('xy'))).toEqual({ a: null, b: 1, c: new Uint8Array([120, 121]) });
      expect(db.prepare('SELECT @a AS a').get({ a: 'x', unused: 1 })).toEqual({ a: 'x' });
      for (const bad of [{}, [], () => 0, Symbol('s')]) {
        expect(() => db.prepare('SELECT ? AS a, ? AS b').get(1, bad), String(typeof bad)).toThrow(/SQL parameter 2 is a/);
        expect(() => db.prepare('SELECT @a AS a').get({ a: bad }), String(typeof bad)).toThrow(/SQL parameter @a is a/);
      }
    } finally {
      db.close();
    }
  });

  it('names SQLite errors by code and rolls back only the failed savepoint', () => {
    const db = new Db(':memory:');
    try {
      db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
      db.prepare('INSERT INTO t VALUES (?)').run('a');
      expect(() => db.prepare('INSERT INTO t VALUES (?)').run('a')).toThrow(expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }));
      db.transaction(() => {
        db.prepare('INSERT INTO t VALUES (?)').run('b');
        expect(() => db.transaction(() => {
          db.prepare('INSERT INTO t VALUES (?)').run('c');
          throw new Error('inner');
        })()).toThrow('inner');
      }).immediate();
      expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a', 'b']);
    } finally {
      db.close();
    }
  });
});
