// The round-trip comparisons (compare.ts, the fixtures' readers) see what a bad round trip
// could lose: a value, an expiry, a row, a table. Otherwise "equal data" would prove nothing.
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../support/redis.js';
import { mysqlConn, servers, tempDir, testbed } from '../support/testbed.js';
import { mysqlTables, redisFacts } from './compare.js';
import { client, fillRedis } from './fixtures/redis-data.js';
import { sqliteFacts } from './fixtures/sqlite.js';

beforeAll(() => servers('mariadb'));

describe('the round-trip comparisons see a difference', () => {
  it('redis: a changed value, a lost or moved expiry, a missing key, a key in another db', async () => {
    const srv = await startRedis();
    const c = client(srv);
    try {
      await fillRedis(c);
      const before = await redisFacts(c);
      expect(before).toEqual(await redisFacts(c));
      const changes: Array<[string, () => Promise<unknown>, () => Promise<unknown>]> = [
        ['hash field', () => c.hset('h:1', 'b', 'x'), () => c.hset('h:1', 'b', Buffer.from([0, 255, 1]))],
        ['lost TTL', () => c.persist('ttl:5'), () => c.expire('ttl:5', 3605)],
        ['zset score', () => c.zadd('z:3', 9, 'n'), () => c.zadd('z:3', 3.5, 'n')],
        ['missing key', () => c.del('s:7'), () => c.set('s:7', 'value 7 ✓')],
        ['other db', () => c.move('s:8', 1), () => c.select(1).then(() => c.move('s:8', 0)).finally(() => c.select(0))],
      ];
      for (const [what, change, undo] of changes) {
        await change();
        const after = await redisFacts(c);
        expect(after, what).not.toEqual(before);
        await undo();
      }
      // The TTL put back is a new absolute expiry: only that key differs, not the count.
      const back = await redisFacts(c);
      expect((back['db0'] as { keys: number }).keys).toBe((before['db0'] as { keys: number }).keys);
    } finally {
      c.disconnect();
      await srv.stop();
    }
  });

  it('mysql: a changed cell, a missing row, a missing table', async () => {
    const db = `rtc_${randomBytes(3).toString('hex')}`;
    const conn = await mysqlConn(testbed().mariadb);
    try {
      await conn.query(`CREATE DATABASE \`${db}\`; USE \`${db}\`; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO a VALUES (1, 'x'), (2, 'y'); CREATE TABLE b (id INT);`);
      const before = await mysqlTables(conn, db);
      expect(Object.keys(before)).toEqual(['a', 'b']);
      await conn.query("UPDATE a SET v = 'z' WHERE id = 2");
      expect(await mysqlTables(conn, db)).not.toEqual(before);
      await conn.query("UPDATE a SET v = 'y' WHERE id = 2");
      expect(await mysqlTables(conn, db)).toEqual(before);
      await conn.query('DELETE FROM a WHERE id = 1');
      expect(await mysqlTables(conn, db)).not.toEqual(before);
      await conn.query("INSERT INTO a VALUES (1, 'x'); DROP TABLE b");
      expect(await mysqlTables(conn, db)).not.toEqual(before);
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await conn.end();
    }
  });

  it('sqlite: a changed blob byte, a NULL for a value, a missing row', () => {
    const path = join(tempDir('rtc'), 'a.db');
    const db = new Database(path);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, n TEXT); INSERT INTO t VALUES (1, x'00ff', 'a'), (2, x'0102', NULL);");
    db.close();
    const before = sqliteFacts(path);
    for (const sql of ["UPDATE t SET b = x'00fe' WHERE id = 1", "UPDATE t SET n = NULL WHERE id = 1", 'DELETE FROM t WHERE id = 2']) {
      const copy = join(tempDir('rtc'), 'b.db');
      copyFileSync(path, copy);
      const w = new Database(copy);
      w.exec(sql);
      w.close();
      expect(sqliteFacts(copy), sql).not.toEqual(before);
    }
  });
});
