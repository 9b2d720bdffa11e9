// Helpers of the Redis engine tests: a file sink, artifact readers, endpoints, data that
// covers every type, and a digest of a whole server (DUMP payload + absolute expiry per key).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { encodeCommand } from '../../src/engines/redis/resp.js';
import { guardStage, writeToolViaPipe } from '../support/streams.js';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, Endpoint, EngineRunContext, StoredArtifact, Inspector, ToolStart } from '../../src/engines/types.js';
import { Secret } from '../../src/secret.js';

export interface StoredFile extends StoredArtifact {
  file: string;
}

/** Stores each artifact raw in a file; rejects (and removes the file) when the stream errors. */
export class FileSink implements ArtifactSink {
  readonly encrypted = false;
  readonly stored: StoredFile[] = [];
  constructor(
    readonly dir: string,
    readonly onChunk?: (n: number) => Promise<void> | void,
  ) {}

  writeTool(name: string, options: ArtifactWriteOptions, spawn: (stdout: 'pipe' | Writable) => ToolStart): Promise<StoredArtifact> {
    return writeToolViaPipe(this, name, options, spawn);
  }

  async write(name: string, stream: Readable, options: ArtifactWriteOptions & { inspector?: Inspector }): Promise<StoredArtifact> {
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

export interface Scale {
  strings: number;
  hashes: number;
  lists: number;
  sets: number;
  zsets: number;
  streams: number;
  big: boolean;
}

export interface Filled {
  keys: number;
  /** Keys that were given a TTL. */
  ttlKeys: Buffer[];
}

/**
 * Fills a database with strings (a tenth with TTLs), hashes, lists, sets, sorted sets,
 * streams (one with a consumer group), binary keys and values (every byte) and a few big
 * values that span many 64 KiB chunks. Loaded with `redis-cli --pipe` (fast).
 */
export async function fill(s: { host: string; port: number; password?: string }, db: number, scale: Scale, prefix: string, workDir: string): Promise<Filled> {
  const cmds: Buffer[] = [encodeCommand(['SELECT', String(db)])];
  const ttlKeys: Buffer[] = [];
  const add = (...args: (string | Buffer)[]): void => {
    cmds.push(encodeCommand(args));
  };
  const expire = (key: string | Buffer, ms: number): void => {
    add('PEXPIRE', key, String(ms));
    ttlKeys.push(typeof key === 'string' ? Buffer.from(key) : key);
  };
  let keys = 0;
  for (let i = 0; i < scale.strings; i++) {
    add('SET', `${prefix}s:${i}`, i % 10 === 0 ? `value-${i}-${'x'.repeat(i % 50)}` : `value-${i}`);
    if (i % 10 === 0) expire(`${prefix}s:${i}`, HOUR + i);
  }
  keys += scale.strings;
  for (let i = 0; i < scale.hashes; i++) {
    add('HSET', `${prefix}h:${i}`, 'a', String(i), 'b', `bee-${i}`, 'c', 'see', 'd', String(i * 2), 'e', 'eee');
    if (i % 7 === 0) expire(`${prefix}h:${i}`, 2 * HOUR);
  }
  keys += scale.hashes;
  for (let i = 0; i < scale.lists; i++) add('RPUSH', `${prefix}l:${i}`, ...Array.from({ length: 10 }, (_, j) => `item-${i}-${j}`));
  keys += scale.lists;
  for (let i = 0; i < scale.sets; i++) add('SADD', `${prefix}set:${i}`, String(i), String(i + 1), String(i + 2), `m-${i}`);
  keys += scale.sets;
  for (let i = 0; i < scale.zsets; i++) {
    add('ZADD', `${prefix}z:${i}`, '1', 'one', '2.5', 'two', String(i), `m-${i}`);
    if (i % 5 === 0) expire(`${prefix}z:${i}`, 3 * HOUR);
  }
  keys += scale.zsets;
  for (let i = 0; i < scale.streams; i++) {
    for (let j = 0; j < 5; j++) add('XADD', `${prefix}x:${i}`, `${i + 1}-${j + 1}`, 'f', `v${j}`, 'g', String(i));
  }
  if (scale.streams > 0) add('XGROUP', 'CREATE', `${prefix}x:0`, 'grp', '0');
  keys += scale.streams;
  for (let i = 0; i < 256; i++) {
    add('SET', binKey(i), allBytes(i));
    if (i % 16 === 0) expire(binKey(i), HOUR);
  }
  add('SET', allBytes(0), allBytes(7)); // a key made of every byte
  keys += 257;
  if (scale.big) {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    add('SET', `${prefix}big:string`, big);
    for (let i = 0; i < 100_000; i += 10_000) add('RPUSH', `${prefix}big:list`, ...Array.from({ length: 10_000 }, (_, j) => `e${i + j}`));
    const fields: string[] = [];
    for (let i = 0; i < 20_000; i++) fields.push(`f${i}`, `v${i}`);
    add('HSET', `${prefix}big:hash`, ...fields);
    keys += 3;
  }
  const file = join(workDir, `fill-${db}.resp`);
  await writeFile(file, Buffer.concat(cmds));
  const r = await execa('redis-cli', ['-h', s.host, '-p', String(s.port), '--pipe'], {
    inputFile: file,
    env: s.password !== undefined ? { REDISCLI_AUTH: s.password } : {},
    reject: false,
  });
  if (r.exitCode !== 0 || !/errors: 0,/.test(String(r.stdout))) throw new Error(`fill failed: ${String(r.stdout)} ${String(r.stderr)}`);
  await rm(file, { force: true });
  return { keys, ttlKeys };
}

type Server = { host: string; port: number; password?: string };

/**
 * The state of a server for comparisons: DEBUG DIGEST (every db, key, value and whether it
 * expires; independent of encodings and hash-table order), DBSIZE of each db, and the exact
 * PEXPIRETIME of the given keys.
 */
export async function state(s: Server, dbs: number[], ttlKeys: Map<number, Buffer[]>): Promise<{ digest: string; sizes: Record<number, number>; expiry: Record<number, number[]> }> {
  const c = client(s);
  try {
    const digest = String(await c.call('DEBUG', 'DIGEST'));
    const sizes: Record<number, number> = {};
    const expiry: Record<number, number[]> = {};
    for (const db of dbs) {
      await c.select(db);
      sizes[db] = await c.dbsize();
      const keys = ttlKeys.get(db) ?? [];
      const pl = c.pipeline();
      for (const k of keys) pl.pexpiretime(k);
      const res = keys.length ? ((await pl.exec()) ?? []) : [];
      expiry[db] = res.map(([e, v]) => (e ? -99 : Number(v)));
    }
    return { digest, sizes, expiry };
  } finally {
    c.disconnect();
  }
}

/** db -> sorted list of "key-hex value-digest pexpiretime" (order-independent per-key digest). */
export async function dbDigest(s: Server, db: number): Promise<string[]> {
  const c = client(s, db);
  const out: string[] = [];
  try {
    let cursor = '0';
    do {
      const [next, keys] = (await c.callBuffer('SCAN', cursor, 'COUNT', '2000')) as [Buffer, Buffer[]];
      cursor = next.toString();
      if (keys.length === 0) continue;
      const pl = c.pipeline();
      pl.call('DEBUG', 'DIGEST-VALUE', ...keys);
      for (const k of keys) pl.pexpiretime(k);
      const res = (await pl.exec())!;
      const digests = res[0][1] as string[];
      keys.forEach((k, i) => out.push(`${k.toString('hex')} ${digests[i]} ${String(res[i + 1][1])}`));
    } while (cursor !== '0');
  } finally {
    c.disconnect();
  }
  return out.sort();
}
