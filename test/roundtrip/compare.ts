// Reading data in a comparable form, shared by fixtures of one engine family.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Connection } from 'mysql2/promise';
import { queryRows } from '../support/testbed.js';

/** Every base table of `db`: its row count and CHECKSUM TABLE (content, row order independent). */
export async function mysqlTables(conn: Connection, db: string): Promise<Record<string, { rows: number; checksum: string }>> {
  const tables = await queryRows<{ t: string }>(conn, "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name", [db]);
  const out: Record<string, { rows: number; checksum: string }> = {};
  for (const { t } of tables) {
    const [c] = await queryRows<{ n: number }>(conn, `SELECT COUNT(*) AS n FROM \`${db}\`.\`${t}\``);
    const [k] = await queryRows<{ Checksum: string | null }>(conn, `CHECKSUM TABLE \`${db}\`.\`${t}\``);
    out[t] = { rows: Number(c?.n), checksum: String(k?.Checksum) };
  }
  return out;
}

/** sha256 of values in order, each framed by its length (so ["ab","c"] differs from ["a","bc"]). */
export function hashValues(values: Iterable<string | Buffer>): string {
  const h = createHash('sha256');
  for (const v of values) {
    const b = typeof v === 'string' ? Buffer.from(v) : v;
    h.update(`${b.length}:`).update(b);
  }
  return h.digest('hex');
}

/**
 * Every key of every non-empty db of a Redis server: per db the key count, how many keys
 * have a TTL, a hash over (key, type, value, absolute expiry in ms) in key order, and the
 * server's own DEBUG DIGEST of the whole dataset (an independent oracle; it covers expiries).
 * Reads in pipelines (a round trip per key costs seconds on a loaded machine).
 */
export async function redisFacts(c: Redis): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { digest: String(await c.call('DEBUG', 'DIGEST')) };
  const keyspace = await c.info('keyspace');
  for (const [, db] of keyspace.matchAll(/^db(\d+):keys=/gm)) {
    await c.select(Number(db));
    const keys: Buffer[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await c.scanBuffer(cursor, 'COUNT', 1000);
      cursor = String(next);
      keys.push(...batch);
    } while (cursor !== '0');
    keys.sort(Buffer.compare);
    const meta = await exec(keys.reduce((p, k) => p.type(k).call('PEXPIRETIME', k), c.pipeline()));
    const types = keys.map((_, i) => String(meta[2 * i]));
    const values = await exec(keys.reduce((p, k, i) => readValue(p, k, types[i] as string), c.pipeline()));
    const entries: Array<string | Buffer> = [];
    let withTtl = 0;
    keys.forEach((k, i) => {
      const expiresAt = Number(meta[2 * i + 1]);
      if (expiresAt > 0) withTtl++;
      entries.push(k, types[i] as string, String(expiresAt), ...canonical(types[i] as string, values[i]));
    });
    out[`db${db}`] = { keys: keys.length, withTtl, hash: hashValues(entries) };
  }
  await c.select(0);
  return out;
}

type Pipeline = ReturnType<Redis['pipeline']>;

async function exec(p: Pipeline): Promise<unknown[]> {
  const res = (await p.exec()) ?? [];
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

function readValue(p: Pipeline, k: Buffer, type: string): Pipeline {
  switch (type) {
    case 'string':
      return p.getBuffer(k);
    case 'hash':
      return p.callBuffer('HGETALL', k);
    case 'list':
      return p.lrangeBuffer(k, 0, -1);
    case 'set':
      return p.smembersBuffer(k);
    case 'zset':
      return p.callBuffer('ZRANGE', k, '0', '-1', 'WITHSCORES');
    case 'stream':
      return p.xrange(k, '-', '+');
    default:
      throw new Error(`redisFacts: no reader for type ${type}`);
  }
}

/** A value as buffers in a canonical order (sets and hashes have none of their own). */
function canonical(type: string, v: unknown): Array<string | Buffer> {
  const sorted = (xs: Buffer[]) => xs.sort(Buffer.compare);
  switch (type) {
    case 'string':
      return [v as Buffer];
    case 'hash': {
      const xs = v as Buffer[];
      const pairs: Buffer[] = [];
      for (let i = 0; i < xs.length; i += 2) pairs.push(Buffer.concat([Buffer.from(`${(xs[i] as Buffer).length}:`), xs[i] as Buffer, xs[i + 1] as Buffer]));
      return sorted(pairs);
    }
    case 'list':
    case 'zset': // ioredis may answer ZRANGE WITHSCORES as [[member, score], ...]
      return (v as Array<Buffer | Buffer[]>).flat();
    case 'set':
      return sorted(v as Buffer[]);
    default:
      return [JSON.stringify(v)];
  }
}
