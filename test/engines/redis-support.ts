// Helpers of the Redis engine tests: a file sink, artifact readers, endpoints, data that
// covers every type, and a digest of a whole server (DUMP payload + absolute expiry per key).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, Endpoint, EngineRunContext, StoredArtifact } from '../../src/engines/types.js';
import { Secret } from '../../src/secret.js';

export interface StoredFile extends StoredArtifact {
  file: string;
}

/** Stores each artifact raw in a file; rejects (and removes the file) when the stream errors. */
export class FileSink implements ArtifactSink {
  readonly stored: StoredFile[] = [];
  constructor(
    readonly dir: string,
    readonly onChunk?: (n: number) => Promise<void> | void,
  ) {}

  async write(name: string, stream: Readable, options: ArtifactWriteOptions): Promise<StoredArtifact> {
    const fileName = `${name}${options.extension}`;
    const file = join(this.dir, fileName);
    const hash = createHash('sha256');
    let bytes = 0;
    let chunks = 0;
    const onChunk = this.onChunk;
    const counter = new Transform({
      transform(c: Buffer, _e, cb) {
        hash.update(c);
        bytes += c.length;
        chunks++;
        if (!onChunk) return cb(null, c);
        Promise.resolve(onChunk(chunks)).then(
          () => cb(null, c),
          (e: unknown) => cb(e as Error),
        );
      },
    });
    try {
      await pipeline(stream, counter, createWriteStream(file));
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
    const art: StoredFile = { name: fileName, key: file, file, rawBytes: bytes, storedBytes: bytes, sha256: hash.digest('hex'), compression: 'none' };
    this.stored.push(art);
    return art;
  }
}

export async function readerOf(file: string, name?: string): Promise<ArtifactReader> {
  const size = (await stat(file)).size;
  return { name: name ?? file.split('/').pop()!, rawBytes: size, open: async () => createReadStream(file, { highWaterMark: 64 * 1024 }) };
}

export function runCtx(tmpDir: string, logs: string[] = [], signal = new AbortController().signal): EngineRunContext {
  return { signal, tmpDir, log: (l) => logs.push(l) };
}

export function redisEndpoint(s: { host: string; port: number; password?: string }, o: { db?: string; user?: string; password?: string | null } = {}): Endpoint {
  const pw = o.password === null ? undefined : (o.password ?? s.password);
  return {
    kind: 'redis',
    url: `redis://${o.user ? `${o.user}@` : ''}${s.host}:${s.port}${o.db !== undefined ? `/${o.db}` : ''}`,
    host: s.host,
    port: s.port,
    ...(o.user ? { user: o.user } : {}),
    ...(o.db !== undefined ? { path: o.db } : {}),
    ...(pw !== undefined ? { password: new Secret(pw) } : {}),
    params: {},
  };
}

export function client(s: { host: string; port: number; password?: string }, db = 0): Redis {
  return new Redis({ host: s.host, port: s.port, db, ...(s.password !== undefined ? { password: s.password } : {}), maxRetriesPerRequest: 1, protocol: 2 });
}

/** Every byte 0-255, rotated by `i`. */
export function allBytes(i: number): Buffer {
  const b = Buffer.alloc(256);
  for (let j = 0; j < 256; j++) b[j] = (j + i) & 0xff;
  return b;
}

export const BIN_PREFIX = Buffer.from('bin:\x00\xff\r\n*3\r\n$', 'latin1');
export function binKey(i: number): Buffer {
  return Buffer.concat([BIN_PREFIX, Buffer.from([i, 0, 13, 10, 255 - i])]);
}

const HOUR = 3_600_000;

/**
 * Fills a database with strings (a tenth with TTLs), hashes, lists, sets, sorted sets,
 * streams (one with a consumer group), binary keys/values and a few big values. Returns the
 * number of keys.
 */
export async function fill(c: Redis, db: number, scale: { strings: number; hashes: number; lists: number; sets: number; zsets: number; streams: number; big: boolean }, prefix: string): Promise<number> {
  await c.select(db);
  let keys = 0;
  let pl = c.pipeline();
  let n = 0;
  const step = async (): Promise<void> => {
    if (++n % 5000 === 0) {
      const res = await pl.exec();
      for (const [e] of res ?? []) if (e) throw e;
      pl = c.pipeline();
    }
  };
  for (let i = 0; i < scale.strings; i++) {
    if (i % 10 === 0) pl.set(`${prefix}s:${i}`, `value-${i}-${'x'.repeat(i % 50)}`, 'PX', HOUR + i);
    else pl.set(`${prefix}s:${i}`, `value-${i}`);
    await step();
  }
  keys += scale.strings;
  for (let i = 0; i < scale.hashes; i++) {
    pl.hset(`${prefix}h:${i}`, 'a', i, 'b', `bee-${i}`, 'c', 'see', 'd', i * 2, 'e', 'eee');
    if (i % 7 === 0) pl.pexpire(`${prefix}h:${i}`, 2 * HOUR);
    await step();
  }
  keys += scale.hashes;
  for (let i = 0; i < scale.lists; i++) {
    pl.rpush(`${prefix}l:${i}`, ...Array.from({ length: 10 }, (_, j) => `item-${i}-${j}`));
    await step();
  }
  keys += scale.lists;
  for (let i = 0; i < scale.sets; i++) {
    pl.sadd(`${prefix}set:${i}`, i, i + 1, i + 2, `m-${i}`);
    await step();
  }
  keys += scale.sets;
  for (let i = 0; i < scale.zsets; i++) {
    pl.zadd(`${prefix}z:${i}`, 1, 'one', 2.5, 'two', i, `m-${i}`);
    if (i % 5 === 0) pl.pexpire(`${prefix}z:${i}`, 3 * HOUR);
    await step();
  }
  keys += scale.zsets;
  for (let i = 0; i < scale.streams; i++) {
    for (let j = 0; j < 5; j++) pl.xadd(`${prefix}x:${i}`, `${i + 1}-${j + 1}`, 'f', `v${j}`, 'g', String(i));
    await step();
  }
  keys += scale.streams;
  for (let i = 0; i < 256; i++) {
    pl.set(binKey(i), allBytes(i));
    if (i % 16 === 0) pl.pexpire(binKey(i), HOUR);
    await step();
  }
  pl.set(allBytes(0), allBytes(7)); // a key made of every byte
  keys += 257;
  const res = await pl.exec();
  for (const [e] of res ?? []) if (e) throw e;
  if (scale.streams > 0) await c.xgroup('CREATE', `${prefix}x:0`, 'grp', '0');
  if (scale.big) {
    // Values that span many 64 KiB chunks of the dump.
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    await c.set(`${prefix}big:string`, big);
    for (let i = 0; i < 100_000; i += 10_000) await c.rpush(`${prefix}big:list`, ...Array.from({ length: 10_000 }, (_, j) => `e${i + j}`));
    const fields: string[] = [];
    for (let i = 0; i < 20_000; i++) fields.push(`f${i}`, `v${i}`);
    await c.hset(`${prefix}big:hash`, ...fields);
    keys += 3;
  }
  await c.select(0);
  return keys;
}

/** db -> (key hex -> sha1 of DUMP + ":" + PEXPIRETIME) for the given databases. */
export async function digest(s: { host: string; port: number; password?: string }, dbs: number[]): Promise<Map<number, Map<string, string>>> {
  const out = new Map<number, Map<string, string>>();
  const c = client(s);
  try {
    for (const db of dbs) {
      await c.select(db);
      const m = new Map<string, string>();
      let cursor = '0';
      do {
        const [next, keys] = (await c.callBuffer('SCAN', cursor, 'COUNT', '2000')) as [Buffer, Buffer[]];
        cursor = next.toString();
        if (keys.length === 0) continue;
        const pl = c.pipeline();
        for (const k of keys) {
          pl.dumpBuffer(k);
          pl.pexpiretime(k);
        }
        const res = (await pl.exec())!;
        keys.forEach((k, i) => {
          const d = res[2 * i][1] as Buffer | null;
          if (d === null) return;
          m.set(k.toString('hex'), `${createHash('sha1').update(d).digest('hex')}:${String(res[2 * i + 1][1])}`);
        });
      } while (cursor !== '0');
      out.set(db, m);
    }
  } finally {
    c.disconnect();
  }
  return out;
}

/** Differences between two digests (first few), empty when equal. */
export function diff(a: Map<number, Map<string, string>>, b: Map<number, Map<string, string>>): string[] {
  const out: string[] = [];
  for (const [db, ma] of a) {
    const mb = b.get(db) ?? new Map<string, string>();
    if (ma.size !== mb.size) out.push(`db${db}: ${ma.size} keys vs ${mb.size}`);
    for (const [k, v] of ma) {
      if (out.length > 10) return out;
      const w = mb.get(k);
      if (w !== v) out.push(`db${db} key ${Buffer.from(k, 'hex').toString('latin1').slice(0, 40)}: ${v} vs ${w ?? 'missing'}`);
    }
  }
  return out;
}
