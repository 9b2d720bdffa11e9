// Restores a bucket backup (and its chain) into s3://BUCKET2/PREFIX2. The restored backup's
// index is the object list as it was (deleted keys are absent): it is loaded into a scratch
// SQLite, filtered by --path. Before anything is written the target bucket is checked and its
// prefix listed: keys that exist are refused unless --replace. Then each link of the chain that
// holds needed bytes is read once, in order, and each needed tar entry is PUT with its content
// type, user metadata and headers (big ones as a streamed multipart upload). When the restore
// fails, the keys it created are deleted again (keys it replaced under --replace stay replaced).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import tar from 'tar-stream';
import { DbsError } from '../../errors.js';
import type { ChainLink, EngineRunContext, RestoreOutcome } from '../types.js';
import { checkBucket, folderPrefix, listPages, SMALL_OBJECT } from './backup.js';
import { mapS3Error } from './client.js';
import { Scratch, type ObjectRow } from './scratch.js';
import type { BucketFacts, BucketRestoreRequest } from './types.js';

/** PUTs in flight at once, and the bytes they may hold. */
const WRITE_CONCURRENCY = 16;
const WRITE_BUDGET = 64 * 1024 * 1024;

/** The key is one of the paths, or inside one of them (a folder of keys). */
export function matchesPaths(key: string, paths: readonly string[]): boolean {
  return paths.length === 0 || paths.some((p) => key === p || key.startsWith(p.endsWith('/') ? p : `${p}/`));
}

function headersFor(row: ObjectRow): { CacheControl?: string; ContentDisposition?: string; ContentEncoding?: string; ContentLanguage?: string } {
  const h = row.headers ? (JSON.parse(row.headers) as Record<string, string>) : {};
  return {
    ...(h['cache-control'] ? { CacheControl: h['cache-control'] } : {}),
    ...(h['content-disposition'] ? { ContentDisposition: h['content-disposition'] } : {}),
    ...(h['content-encoding'] ? { ContentEncoding: h['content-encoding'] } : {}),
    ...(h['content-language'] ? { ContentLanguage: h['content-language'] } : {}),
  };
}

async function readAll(entry: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of entry) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function restoreBucket(client: S3Client, req: BucketRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
  const o = req.options;
  const bucket = req.target.host ?? '';
  const prefix = folderPrefix(req.target.path);
  const where = `s3://${bucket}/${prefix} @ ${o.endpoint}`;
  const secret = req.target.password;
  const chain: ChainLink<BucketFacts>[] = req.chain ?? [{ backupId: '', type: req.type, facts: req.facts, artifacts: req.artifacts }];
  const last = chain.at(-1)!;
  const scratch = new Scratch(ctx.tmpDir, 'bucket-restore.sqlite');
  const written = scratch.db.prepare('INSERT OR REPLACE INTO written (key, existed) VALUES (?, ?)');
  let ok = false;
  try {
    // 1. What the restored backup held (its index), filtered by --path.
    const index = last.artifacts.find((a) => a.name.startsWith('index.'));
    if (!index) throw new DbsError('RESTORE_FAILED', `backup ${last.backupId} has no object index`, { hint: 'restore another backup' });
    const wanted = await scratch.load(await index.open(), `the index of backup ${last.backupId}`, last.backupId, (k) => matchesPaths(k, o.paths));
    scratch.flush();
    if (o.paths.length && wanted === 0) {
      throw new DbsError('NOT_FOUND', `no key of backup ${last.backupId} matches --path ${o.paths.join(', ')}; nothing was restored`, { hint: 'paths are keys or folders relative to the backed-up prefix (list them: zstd -dc index.ndjson.zst)' });
    }
    // 2. The target: the bucket exists, and none of these keys is there (unless --replace).
    await checkBucket(client, bucket, where, ctx.signal, secret);
    const isWanted = scratch.db.prepare('SELECT key FROM cur WHERE key = ?');
    const markExisting = scratch.db.prepare('INSERT OR IGNORE INTO existing (key) VALUES (?)');
    let clashes = 0;
    const examples: string[] = [];
    for await (const page of listPages(client, bucket, prefix, where, ctx.signal, { secret })) {
      for (const l of page) {
        if (!isWanted.get(l.key)) continue;
        markExisting.run(l.key);
        scratch.tick();
        if (++clashes <= 3) examples.push(l.full);
      }
    }
    scratch.flush();
    if (clashes && !o.replace) {
      throw new DbsError('ALREADY_EXISTS', `${clashes} key(s) of the restore already exist in ${where}, e.g. ${examples.map((k) => JSON.stringify(k)).join(', ')}; nothing was written`, {
        hint: 'restore into another bucket or prefix, choose keys with --path, or pass --replace to overwrite them',
      });
    }
    const existed = scratch.db.prepare('SELECT key FROM existing WHERE key = ?');

    // 3. Each link holding needed bytes, oldest first: PUT the needed entries.
    const rowOf = scratch.db.prepare('SELECT * FROM cur WHERE key = ? AND src = ?');
    const needs = scratch.db.prepare('SELECT count(*) AS n FROM cur WHERE src = ?');
    let bytes = 0;
    let objects = 0;
    const inflight = new Set<Promise<void>>();
    let inflightBytes = 0;
    let failure: unknown;
    const put = (row: ObjectRow, body: Buffer) => {
      const p = client
        .send(
          new PutObjectCommand({ Bucket: bucket, Key: prefix + row.key, Body: body, ContentLength: body.length, ContentType: row.content_type ?? undefined, Metadata: JSON.parse(row.metadata) as Record<string, string>, ...headersFor(row) }),
          { abortSignal: ctx.signal },
        )
        .then(
          () => undefined,
          (e: unknown) => {
            failure ??= mapS3Error(e, `writing ${JSON.stringify(prefix + row.key)}`, where, secret, ctx.signal);
          },
        )
        .finally(() => {
          inflight.delete(p);
          inflightBytes -= body.length;
        });
      inflight.add(p);
      inflightBytes += body.length;
    };
    for (const link of chain) {
      const id = link.backupId || last.backupId;
      if ((needs.get(id) as { n: number }).n === 0) continue;
      const data = link.artifacts.find((a) => a.name.startsWith('data.'));
      if (!data) throw new DbsError('RESTORE_FAILED', `backup ${id} has no data artifact`, { hint: 'restore another backup' });
      const extract = tar.extract();
      const feeding = pipeline(await data.open(), extract);
      feeding.catch(() => undefined);
      for await (const entry of extract) {
        const key = (entry.header.pax as Record<string, string> | undefined)?.path ?? entry.header.name;
        const row = rowOf.get(key, id) as ObjectRow | undefined;
        if (!row) {
          for await (const _ of entry) void _;
          continue;
        }
        written.run(row.key, existed.get(row.key) ? 1 : 0);
        scratch.tick();
        if (row.size <= SMALL_OBJECT) {
          const body = await readAll(entry);
          if (body.length !== row.size) throw new DbsError('RESTORE_FAILED', `backup ${id}: the entry of ${JSON.stringify(key)} holds ${body.length} bytes, the index says ${row.size}`, { hint: 'the backup is damaged; restore another one' });
          while (inflight.size >= WRITE_CONCURRENCY || inflightBytes > WRITE_BUDGET) await Promise.race(inflight);
          if (failure) throw failure;
          put(row, body);
        } else {
          await Promise.all(inflight);
          const pass = Readable.from(entry, { objectMode: false, highWaterMark: 1 << 20 });
          const up = new Upload({
            client,
            params: { Bucket: bucket, Key: prefix + row.key, Body: pass, ContentType: row.content_type ?? undefined, Metadata: JSON.parse(row.metadata) as Record<string, string>, ...headersFor(row) },
            partSize: 8 * 1024 * 1024,
            queueSize: 4,
            leavePartsOnError: false,
          });
          const stop = () => void up.abort();
          ctx.signal.addEventListener('abort', stop, { once: true });
          try {
            await up.done();
          } catch (e) {
            throw mapS3Error(e, `writing ${JSON.stringify(prefix + row.key)}`, where, secret, ctx.signal);
          } finally {
            ctx.signal.removeEventListener('abort', stop);
          }
        }
        if (failure) throw failure;
        bytes += row.size;
        objects++;
      }
      await feeding;
    }
    await Promise.all(inflight);
    if (failure) throw failure;
    scratch.flush();
    if (objects !== wanted) {
      throw new DbsError('RESTORE_FAILED', `the chain of backup ${last.backupId} held ${objects} of the ${wanted} objects of its index`, { hint: 'the backup is damaged; restore another one' });
    }
    ok = true;
    return { bytes, facts: { objects, bytes, replaced: clashes, target: where } };
  } finally {
    try {
      if (!ok) await rollback(client, scratch, bucket, prefix, ctx);
    } finally {
      scratch.close();
    }
  }
}

/** Deletes the keys this restore created (not the ones it replaced), best effort. */
async function rollback(client: S3Client, scratch: Scratch, bucket: string, prefix: string, ctx: EngineRunContext): Promise<void> {
  scratch.flush();
  const keys = (scratch.db.prepare('SELECT key FROM written WHERE existed = 0').all() as { key: string }[]).map((r) => r.key);
  const signal = AbortSignal.timeout(120_000);
  let failed = 0;
  for (let i = 0; i < keys.length; i += WRITE_CONCURRENCY) {
    await Promise.all(keys.slice(i, i + WRITE_CONCURRENCY).map((k) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: prefix + String(k) }), { abortSignal: signal }).catch(() => void failed++)));
  }
  if (failed) ctx.log(`could not remove ${failed} key(s) this failed restore had written under ${prefix || '/'}`);
}
