// A bucket backup: the prefix is listed page by page (ListObjectsV2, one page read ahead), every
// object is read with GetObject (small ones prefetched with bounded concurrency and a byte
// budget, big ones streamed when their turn comes) and packed into one pax tar (data.tar, key
// as path, attributes in pax records) that the sink compresses; then index.ndjson lists every
// object (key, size, ETag, content type, metadata, last-modified, which backup holds its bytes,
// offset of its tar entry) and, for incrementals, every key gone since the parent.
//
// An incremental reads only what changed: an object whose size, ETag and last-modified equal
// the parent's index entry keeps the parent's bytes (its index line names the backup that has
// them). What must be remembered (the parent's list, the index being built) sits in a scratch
// SQLite file, so memory does not grow with the number of objects.
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, type GetObjectCommandOutput, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { DbsError } from '../../errors.js';
import type { EngineRunContext } from '../types.js';
import { isNotFound, mapS3Error } from './client.js';
import { lineOf, Scratch, type ObjectRow } from './scratch.js';
import { END_OF_ARCHIVE, entryHeader, paddingFor } from './tar.js';
import type { BucketBackupRequest, BucketFacts } from './types.js';

export const FORMAT = 1;
/** Objects at most this big are prefetched whole; bigger ones stream at their turn. */
export const SMALL_OBJECT = 8 * 1024 * 1024;
/** GetObjects in flight ahead of the tar writer. */
export const READ_CONCURRENCY = 16;
/** Bytes of prefetched small objects held at most. */
export const READ_BUDGET = 64 * 1024 * 1024;

export interface Listed {
  /** The full key in the bucket. */
  full: string;
  /** The key relative to the prefix (what the index and the tar name). */
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

export function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

/** '' or a prefix ending in '/': s3://b/photos backs up photos/..., not photos2/... */
export function folderPrefix(path: string | undefined): string {
  const p = (path ?? '').replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/** Every object under the prefix, a page at a time, the next page requested while this one is used. */
export async function* listPages(client: S3Client, bucket: string, prefix: string, where: string, signal: AbortSignal, secret?: import('../../secret.js').Secret): AsyncGenerator<Listed[]> {
  const page = (token?: string): Promise<ListObjectsV2CommandOutput> =>
    client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token, MaxKeys: 1000 }), { abortSignal: signal }).catch((e: unknown) => {
      throw mapS3Error(e, `listing ${where}`, where, secret, signal);
    });
  let next: Promise<ListObjectsV2CommandOutput> | undefined = page();
  while (next) {
    const r: ListObjectsV2CommandOutput = await next;
    next = r.IsTruncated && r.NextContinuationToken ? page(r.NextContinuationToken) : undefined;
    next?.catch(() => undefined);
    yield (r.Contents ?? []).flatMap((o) =>
      o.Key === undefined || !o.Key.startsWith(prefix) ? [] : [{ full: o.Key, key: o.Key.slice(prefix.length), size: o.Size ?? 0, etag: stripQuotes(o.ETag), lastModified: (o.LastModified ?? new Date(0)).toISOString() }],
    );
  }
}

/** HeadBucket: the bucket exists and these keys may read it; a clear error otherwise. */
export async function checkBucket(client: S3Client, bucket: string, where: string, signal: AbortSignal, secret?: import('../../secret.js').Secret): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
  } catch (e) {
    throw mapS3Error(e, `checking ${where}`, where, secret, signal);
  }
}

interface Got {
  listed: Listed;
  out: GetObjectCommandOutput;
  body?: Buffer;
}

const HEADER_FIELDS = [
  ['CacheControl', 'cache-control'],
  ['ContentDisposition', 'content-disposition'],
  ['ContentEncoding', 'content-encoding'],
  ['ContentLanguage', 'content-language'],
] as const;

/** The standard headers an object carries besides its content type (kept and restored). */
export function headersOf(out: Pick<GetObjectCommandOutput, (typeof HEADER_FIELDS)[number][0]>): Record<string, string> | undefined {
  const h: Record<string, string> = {};
  for (const [field, name] of HEADER_FIELDS) if (out[field]) h[name] = String(out[field]);
  return Object.keys(h).length ? h : undefined;
}

export async function backupBucket(client: S3Client, req: BucketBackupRequest, ctx: EngineRunContext): Promise<BucketFacts> {
  const bucket = req.source.host ?? '';
  const prefix = folderPrefix(req.source.path);
  const where = `s3://${bucket}/${prefix} @ ${req.selection.endpoint}`;
  const secret = req.source.password;
  await checkBucket(client, bucket, where, ctx.signal, secret);
  const scratch = new Scratch(ctx.tmpDir, 'bucket-backup.sqlite');
  const facts: BucketFacts = { format: FORMAT, bucket, prefix, objects: 0, bytes: 0, stored: 0, unchanged: 0, deleted: 0, vanished: 0 };
  // Reads are cancelled when the backup ends early (an error downstream, an abort).
  const reads = new AbortController();
  const stopReads = () => reads.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', stopReads, { once: true });
  try {
    if (req.parent) {
      const index = req.parent.artifacts?.find((a) => a.name.startsWith('index.'));
      if (!index) throw new DbsError('REFUSED', `the parent backup ${req.parent.id} has no readable object index in this pool`, { hint: 'take a snapshot first (or set --auto-full)' });
      await scratch.load('parent', await index.open(), `the index of backup ${req.parent.id}`, req.parent.id);
      scratch.flush();
    }
    const findParent = scratch.db.prepare<[string], ObjectRow>('SELECT * FROM parent WHERE key = ?');
    const insert = scratch.db.prepare('INSERT OR REPLACE INTO cur (key, size, etag, content_type, metadata, last_modified, src, off, headers, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)');

    const get = async (l: Listed, whole: boolean): Promise<Got | undefined> => {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: l.full }), { abortSignal: reads.signal });
        if (!whole) return { listed: l, out };
        const bytes = await out.Body!.transformToByteArray();
        return { listed: l, out, body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw mapS3Error(e, `reading ${JSON.stringify(l.full)}`, where, secret, reads.signal);
      }
    };

    let offset = 0;
    async function* emit(l: Listed, pending: Promise<Got | undefined> | undefined): AsyncGenerator<Buffer> {
      const got = await (pending ?? get(l, false));
      if (!got) {
        facts.vanished++;
        ctx.log(`object ${JSON.stringify(l.full)} was deleted after it was listed; it is not in the backup`);
        return;
      }
      const size = Number(got.out.ContentLength ?? got.body?.length ?? 0);
      const etag = stripQuotes(got.out.ETag) || l.etag;
      // What GetObject returned is what is stored (the object may have changed since the listing).
      const changed = got.out.ETag !== undefined && etag !== l.etag;
      const lastModified = changed && got.out.LastModified ? got.out.LastModified.toISOString() : l.lastModified;
      const metadata = got.out.Metadata ?? {};
      const headers = headersOf(got.out);
      const records: Record<string, string> = { 'DBS.s3.etag': etag };
      if (got.out.ContentType) records['DBS.s3.content-type'] = got.out.ContentType;
      for (const [k, v] of Object.entries(metadata)) records[`DBS.s3.meta.${k}`] = v;
      for (const [k, v] of Object.entries(headers ?? {})) records[`DBS.s3.${k}`] = v;
      const directory = l.key.endsWith('/') && size === 0;
      const header = entryHeader({ path: l.key, size, mtime: Date.parse(lastModified), directory, records });
      const at = offset;
      yield header;
      let n = 0;
      if (got.body) {
        n = got.body.length;
        yield got.body;
      } else if (got.out.Body) {
        for await (const chunk of got.out.Body as AsyncIterable<Uint8Array>) {
          n += chunk.length;
          if (n > size) break;
          yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        }
      }
      if (n !== size) throw new DbsError('BACKUP_FAILED', `object ${JSON.stringify(l.full)} of ${where}: read ${n} bytes, its size is ${size}`, { hint: 'the object changed or the connection broke while it was read; run the backup again' });
      const pad = paddingFor(size);
      if (pad.length) yield pad;
      offset += header.length + size + pad.length;
      insert.run(l.key, size, etag, got.out.ContentType ?? null, JSON.stringify(metadata), lastModified, null, at, headers ? JSON.stringify(headers) : null);
      scratch.tick();
      facts.objects++;
      facts.bytes += size;
      facts.stored++;
    }

    async function* tar(): AsyncGenerator<Buffer> {
      const window: { l: Listed; p?: Promise<Got | undefined> }[] = [];
      let windowBytes = 0;
      const next = async function* () {
        const s = window.shift()!;
        if (s.p) windowBytes -= s.l.size;
        yield* emit(s.l, s.p);
      };
      try {
        for await (const page of listPages(client, bucket, prefix, where, ctx.signal, secret)) {
          for (const l of page) {
            const p = req.parent ? findParent.get(l.key) : undefined;
            if (p && p.size === l.size && p.etag === l.etag && p.last_modified === l.lastModified) {
              insert.run(l.key, p.size, p.etag, p.content_type, p.metadata, p.last_modified, p.src, p.off, p.headers);
              scratch.tick();
              facts.objects++;
              facts.bytes += p.size;
              facts.unchanged++;
              continue;
            }
            const whole = l.size <= SMALL_OBJECT;
            const slot: { l: Listed; p?: Promise<Got | undefined> } = { l };
            if (whole) {
              slot.p = get(l, true);
              slot.p.catch(() => undefined);
              windowBytes += l.size;
            }
            window.push(slot);
            while (window.length >= READ_CONCURRENCY || windowBytes > READ_BUDGET) yield* next();
          }
        }
        while (window.length) yield* next();
        yield END_OF_ARCHIVE;
      } finally {
        // Stop what is still being read when the tar ends early (a no-op after a full run).
        reads.abort(new Error('the backup stopped'));
      }
    }

    await req.sink.write('data', Readable.from(tar(), { objectMode: false, highWaterMark: 1 << 20 }), { extension: '.tar', guard: 'none', parallelCompression: true });
    scratch.flush();
    if (req.parent) {
      const r = scratch.db.prepare("INSERT INTO cur (key, size, etag, content_type, metadata, last_modified, src, off, headers, deleted) SELECT key, 0, '', NULL, '{}', '', NULL, 0, NULL, 1 FROM parent WHERE key NOT IN (SELECT key FROM cur)").run();
      facts.deleted = r.changes;
      scratch.flush();
    }
    const rows = scratch.db.prepare<[], ObjectRow>('SELECT * FROM cur ORDER BY key');
    const head = { dbs: 'bucket-index', format: FORMAT, bucket, prefix, ...(req.parent ? { parent: req.parent.id } : {}) };
    async function* index(): AsyncGenerator<Buffer> {
      let batch: string[] = [JSON.stringify(head)];
      for (const r of rows.iterate()) {
        batch.push(JSON.stringify(lineOf(r)));
        if (batch.length >= 512) {
          yield Buffer.from(`${batch.join('\n')}\n`);
          batch = [];
        }
      }
      if (batch.length) yield Buffer.from(`${batch.join('\n')}\n`);
    }
    await req.sink.write('index', Readable.from(index(), { objectMode: false }), { extension: '.ndjson', guard: 'none' });
    return facts;
  } finally {
    ctx.signal.removeEventListener('abort', stopReads);
    scratch.close();
  }
}
