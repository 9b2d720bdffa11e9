// Keeps a Redis restore target as it was when a logical restore fails.
//
// Before the first RESTORE, what the restore will overwrite is saved into an undo file in the
// restore's scratch dir (0700), in the dump's own format (SELECT + RESTORE ... REPLACE ABSTTL):
// - --flush: every key of each database that will be flushed (a SCAN dump of it);
// - --replace: the target's current value of each key of the backup that exists there;
// - neither: nothing (the restore was refused if any key of the backup existed).
// On failure: the backup's keys are deleted again (the artifact is read once more; it was
// proved whole before), flushed databases are emptied, and the undo file is replayed.
// Memory: one batch of keys at a time; disk: the size of what is overwritten.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { argIs, encodeCommand, pushRestoreCommand, RespCommandParser } from './resp.js';

const BATCH = 1000;
type PipelineResult = [error: Error | null, result: unknown][] | null;

/** Calls `each` with batches of the dump's keys, by the target database they go to. */
export async function forEachKeyBatch(stream: Readable, map: (db: string) => string, each: (db: string, keys: Buffer[]) => Promise<void>): Promise<void> {
  const parser = new RespCommandParser();
  let db = map('0');
  let keys: Buffer[] = [];
  const flush = async (): Promise<void> => {
    if (keys.length === 0) return;
    const k = keys;
    keys = [];
    await each(db, k);
  };
  try {
    for await (const chunk of stream) {
      for (const cmd of parser.push(chunk as Buffer)) {
        if (argIs(cmd[0], 'SELECT') && cmd.length === 2) {
          await flush();
          db = map(cmd[1].toString('latin1'));
        } else if (argIs(cmd[0], 'RESTORE') && cmd.length >= 4) {
          keys.push(cmd[1]);
          if (keys.length >= BATCH) await flush();
        }
      }
    }
    parser.end();
    await flush();
  } finally {
    stream.destroy();
  }
}

/** The target databases a dump writes into (read from its SELECTs). */
export async function dumpDatabases(stream: Readable, map: (db: string) => string): Promise<string[]> {
  const dbs = new Set<string>();
  await forEachKeyBatch(stream, map, async (db) => void dbs.add(db));
  return [...dbs];
}

export interface Undo {
  /** The undo file, when anything was saved. */
  file?: string;
  /** Databases the restore flushes (emptied again on rollback before the undo is replayed). */
  flushed: string[];
}

/** A key's DUMP payload and absolute expiry (ms since the epoch, 0 = none). */
export interface DumpedKey {
  key: Buffer;
  absTtl: number;
  payload: Buffer;
}

/**
 * DUMPs a batch of keys of the selected database with their absolute expiry, in one pipeline.
 * Keys that do not exist (vanished, expired) are left out.
 */
export async function dumpKeys(client: Redis, keys: Buffer[], absoluteTtl: boolean): Promise<DumpedKey[]> {
  const pl = client.pipeline();
  for (const k of keys) {
    pl.callBuffer(absoluteTtl ? 'PEXPIRETIME' : 'PTTL', k);
    pl.callBuffer('DUMP', k);
  }
  const sentAt = Date.now();
  const res = (await pl.exec()) as PipelineResult;
  if (!res) throw new Error('the DUMP pipeline was discarded');
  const out: DumpedKey[] = [];
  for (let i = 0; i < keys.length; i++) {
    const [ttlErr, ttlRaw] = res[2 * i];
    const [dumpErr, payload] = res[2 * i + 1];
    if (ttlErr) throw ttlErr;
    if (dumpErr) throw dumpErr;
    const ttl = Number(ttlRaw);
    if (payload === null || payload === undefined || ttl === -2) continue;
    out.push({ key: keys[i], absTtl: ttl === -1 ? 0 : absoluteTtl ? ttl : sentAt + ttl, payload: payload as Buffer });
  }
  return out;
}

/** --replace: saves the current value of each key of the dump that exists in the target. */
export async function saveReplaced(client: Redis, dump: Readable, map: (db: string) => string, o: { dir: string; absoluteTtl: boolean; signal: AbortSignal }): Promise<Undo> {
  const file = join(o.dir, 'undo.resp');
  const out = createWriteStream(file, { mode: 0o600 });
  let saved = 0;
  try {
    await forEachKeyBatch(dump, map, async (db, keys) => {
      o.signal.throwIfAborted();
      await client.call('SELECT', db);
      const found = await dumpKeys(client, keys, o.absoluteTtl);
      if (found.length === 0) return;
      const parts: Buffer[] = [encodeCommand(['SELECT', db])];
      for (const k of found) pushRestoreCommand(parts, k.key, k.absTtl, k.payload);
      saved += found.length;
      if (!out.write(Buffer.concat(parts))) await once(out, 'drain');
    });
  } finally {
    out.end();
    await once(out, 'close');
  }
  return saved > 0 ? { file, flushed: [] } : { flushed: [] };
}

/** --flush: saves every key of the databases that will be flushed. */
export async function saveFlushed(dump: () => Readable, dbs: string[], dir: string): Promise<Undo> {
  const file = join(dir, 'undo.resp');
  await pipeline(dump(), createWriteStream(file, { mode: 0o600 }));
  return { file, flushed: dbs };
}

/**
 * Undoes a failed restore: deletes the dump's keys, empties flushed databases, replays the
 * undo file with `replay`.
 */
export async function rollbackRestore(client: Redis, dump: Readable, map: (db: string) => string, undo: Undo, replay: (file: string) => Promise<void>): Promise<void> {
  await forEachKeyBatch(dump, map, async (db, keys) => {
    const pl = client.pipeline();
    pl.call('SELECT', db);
    pl.callBuffer('DEL', ...keys);
    const res = (await pl.exec()) as PipelineResult;
    const err = res?.find(([e]) => e)?.[0];
    if (!res || err) throw err ?? new Error('the DEL pipeline was discarded');
  });
  for (const db of undo.flushed) {
    await client.call('SELECT', db);
    await client.call('FLUSHDB');
  }
  if (undo.file) await replay(undo.file);
}
