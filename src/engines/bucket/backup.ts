// A bucket backup: the prefix is listed page by page (ListObjectsV2, one page read ahead, its XML
// read by list-xml.ts), every object is read with GetObject (small ones prefetched with bounded
// concurrency and a byte budget, big ones streamed when their turn comes) and packed into one
// pax tar (data.tar, key as path, attributes in pax records) that the sink compresses; then
// index.ndjson lists every object (key, size, ETag, content type, metadata, last-modified,
// which backup holds its bytes, offset of its tar entry) and, for incrementals, every key gone
// since the parent.
//
// An incremental reads only what changed: an object whose size, ETag and last-modified equal
// the parent's index entry keeps the parent's bytes (its index line names the backup that has
// them). The listing and the parent's index are both in key order, so they are merged as they
// stream (index-file.ts), and the new index is written to a file as the tar is: memory does not
// grow with the number of objects, and an unchanged object costs a key comparison.
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { DbsError } from '../../errors.js';
import type { EngineRunContext } from '../types.js';
import { isNotFound, mapS3Error } from './client.js';
import { rawListing, type ListPage } from './list-xml.js';
import { compareKeys, IndexWriter, ParentCursor } from './index-file.js';
import { END_OF_ARCHIVE, entryHeader, paddingFor } from './tar.js';
import type { BucketBackupRequest, BucketFacts, IndexLine } from './types.js';

export const FORMAT = 1;
/** Objects at most this big are prefetched whole; bigger ones stream at their turn. */
export const SMALL_OBJECT = 8 * 1024 * 1024;
/** GetObjects in flight ahead of the tar writer. */
export const READ_CONCURRENCY = 32;
/** Bytes of prefetched small objects held at most. */
export const READ_BUDGET = 64 * 1024 * 1024;
/** An index up to this size is compressed in Node (WriteOptions.small). */
const SMALL_INDEX = 4 * 1024 * 1024;
/** Index lines (unchanged objects, deletions) queued behind a read at most. */
const MAX_QUEUED = 4096;

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

export interface ListOptions {
  secret?: import('../../secret.js').Secret;
  /** List only keys after this full key (ListObjectsV2 StartAfter). */
  startAfter?: string;
  /** ...and up to this full key, included: a range of the listing. */
  until?: string;
  /** Let the SDK deserialize the pages (tests compare with dbs's own read). */
  sdkParse?: boolean;
}

/** Every object under the prefix (or in a range of it), a page at a time, the next page requested while this one is used. */
export async function* listPages(client: S3Client, bucket: string, prefix: string, where: string, signal: AbortSignal, o: ListOptions = {}): AsyncGenerator<Listed[]> {
  const page = async (token?: string): Promise<ListPage> => {
    const cmd = new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token, StartAfter: token ? undefined : o.startAfter, MaxKeys: 1000 });
    const raw = o.sdkParse ? undefined : rawListing(cmd);
    try {
      const r = await client.send(cmd, { abortSignal: signal });
      return (
        raw?.page() ?? {
          contents: (r.Contents ?? []).flatMap((x) => (x.Key === undefined ? [] : [{ key: x.Key, size: x.Size ?? 0, etag: x.ETag ?? '', lastModified: (x.LastModified ?? new Date(0)).toISOString() }])),
          truncated: r.IsTruncated === true,
          ...(r.NextContinuationToken ? { nextToken: r.NextContinuationToken } : {}),
        }
      );
    } catch (e) {
      throw mapS3Error(e, `listing ${where}`, where, o.secret, signal);
    }
  };
  const inRange = (key: string) => o.until === undefined || compareKeys(key, o.until) <= 0;
  let next: Promise<ListPage> | undefined = page();
  while (next) {
    const r: ListPage = await next;
    const last = r.contents.at(-1)?.key;
    next = r.truncated && r.nextToken && (last === undefined || inRange(last)) ? page(r.nextToken) : undefined;
    next?.catch(() => undefined);
    yield r.contents.flatMap((x) => (!x.key.startsWith(prefix) || !inRange(x.key) ? [] : [{ full: x.key, key: x.key.slice(prefix.length), size: x.size, etag: stripQuotes(x.etag), lastModified: x.lastModified }]));
  }
}

/** Listing streams an incremental runs at once, split at the parent's split keys. */
export const LIST_STREAMS = 4;
/** Pages each later range lists ahead of the one being read. */
const RANGE_AHEAD = 2;

/**
 * The listing split into ranges at the parent's split keys, listed at once and read in order:
 * range j is (b[j], b[j+1]], so every key is in exactly one and their concatenation is the whole
 * listing in key order. Each range's pages are asked for ahead (at most RANGE_AHEAD), so later
 * ranges are listed while the first is read. One range (no splits): listPages.
 */
export async function* listRanges(client: S3Client, bucket: string, prefix: string, where: string, signal: AbortSignal, splits: readonly string[], o: Pick<ListOptions, 'secret'> = {}): AsyncGenerator<Listed[]> {
  // Sorted and distinct whatever the manifest held: ranges that overlapped would list keys twice.
  const picked = Array.from({ length: LIST_STREAMS - 1 }, (_, j) => splits[Math.floor(((j + 1) * splits.length) / LIST_STREAMS)]).filter((k): k is string => k !== undefined);
  const bounds = [...new Set(picked)].sort(compareKeys);
  const ranges = [undefined, ...bounds].map((from, j) => listPages(client, bucket, prefix, where, signal, { ...o, ...(from !== undefined ? { startAfter: prefix + from } : {}), ...(bounds[j] !== undefined ? { until: prefix + bounds[j] } : {}) }));
  // A range's next pages, asked for ahead of its turn (an async generator runs its next() calls in order).
  const queues = ranges.map((g, j) => (j === 0 ? [] : Array.from({ length: RANGE_AHEAD }, () => g.next())));
  for (const q of queues) for (const p of q) p.catch(() => undefined);
  try {
    for (const [j, g] of ranges.entries()) {
      const q = queues[j]!;
      for (;;) {
        const r = await (q.shift() ?? g.next());
        if (r.done) break;
        if (j > 0) {
          const p = g.next();
          p.catch(() => undefined);
          q.push(p);
        }
        yield r.value;
      }
    }
  } finally {
    for (const g of ranges) void g.return(undefined).catch(() => undefined);
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

/** An object to read (its read started when it is small) or an index line waiting for the reads before it. */
type ReadSlot = { l: Listed; p?: Promise<Got | undefined>; inParent: boolean };
type Slot = ReadSlot | { line: IndexLine };

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
  const facts: BucketFacts = { format: FORMAT, bucket, prefix, objects: 0, bytes: 0, stored: 0, unchanged: 0, deleted: 0, vanished: 0 };
  const out = new IndexWriter(join(ctx.tmpDir, 'bucket-index.ndjson'), { dbs: 'bucket-index', format: FORMAT, bucket, prefix, ...(req.parent ? { parent: req.parent.id } : {}) });
  // Reads are cancelled when the backup ends early (an error downstream, an abort).
  const reads = new AbortController();
  const stopReads = () => reads.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', stopReads, { once: true });
  let parent: ParentCursor | undefined;
  try {
    if (req.parent) {
      const index = req.parent.artifacts?.find((a) => a.name.startsWith('index.'));
      if (!index) throw new DbsError('REFUSED', `the parent backup ${req.parent.id} has no readable object index in this pool`, { hint: 'take a snapshot first (or set --auto-full)' });
      parent = new ParentCursor(await index.open(), `the index of backup ${req.parent.id}`, req.parent.id);
    }

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
    const writeLine = (line: IndexLine) => {
      out.add(line, where, 'deleted' in line ? undefined : parent?.textOf(line));
      if ('deleted' in line) facts.deleted++;
    };

    let offset = 0;
    async function* emit(s: ReadSlot): AsyncGenerator<Buffer> {
      const l = s.l;
      const got = await (s.p ?? get(l, false));
      if (!got) {
        facts.vanished++;
        ctx.log(`object ${JSON.stringify(l.full)} was deleted after it was listed; it is not in the backup`);
        if (s.inParent) writeLine({ key: l.key, deleted: true });
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
      writeLine({ key: l.key, size, etag, ...(got.out.ContentType ? { contentType: got.out.ContentType } : {}), metadata, lastModified, offset: at, ...(headers ? { headers } : {}) });
      facts.objects++;
      facts.bytes += size;
      facts.stored++;
    }

    async function* tar(): AsyncGenerator<Buffer> {
      // The objects being read and the index lines behind them, in listing order: a line is
      // written when every object listed before it is in the tar, so the index stays in key order.
      const window: Slot[] = [];
      let reading = 0;
      let windowBytes = 0;
      // A line with no read before it is written at once.
      const queueLine = (line: IndexLine) => (window.length ? window.push({ line }) : writeLine(line));
      const next = async function* () {
        const s = window.shift()!;
        if ('line' in s) return writeLine(s.line);
        reading--;
        if (s.p) windowBytes -= s.l.size;
        yield* emit(s);
      };
      try {
        for await (const page of listRanges(client, bucket, prefix, where, ctx.signal, req.parent?.facts.splits ?? [], { secret })) {
          for (const l of page) {
            while (parent) {
              let gone = parent.before(l.key, MAX_QUEUED);
              if (gone instanceof Promise) gone = await gone;
              if (!gone.length) break;
              for (const g of gone) queueLine({ key: g.key, deleted: true });
              while (window.length > MAX_QUEUED) yield* next();
            }
            let p = parent?.take(l.key);
            if (p instanceof Promise) p = await p;
            if (p && p.size === l.size && p.etag === l.etag && p.lastModified === l.lastModified) {
              queueLine(p);
              facts.objects++;
              facts.bytes += p.size;
              facts.unchanged++;
            } else {
              const slot: ReadSlot = { l, inParent: p !== undefined };
              if (l.size <= SMALL_OBJECT) {
                slot.p = get(l, true);
                slot.p.catch(() => undefined);
                windowBytes += l.size;
              }
              window.push(slot);
              reading++;
            }
            while (reading >= READ_CONCURRENCY || windowBytes > READ_BUDGET || window.length > MAX_QUEUED) yield* next();
          }
        }
        while (window.length) yield* next();
        // Keys after the last one listed.
        for (let gone; parent && (gone = await parent.before(null, MAX_QUEUED)).length; ) for (const g of gone) writeLine({ key: g.key, deleted: true });
        yield END_OF_ARCHIVE;
      } finally {
        // Stop what is still being read when the tar ends early (a no-op after a full run).
        reads.abort(new Error('the backup stopped'));
      }
    }

    await req.sink.write('data', Readable.from(tar(), { objectMode: false, highWaterMark: 1 << 20 }), { extension: '.tar', guard: 'none', parallelCompression: true });
    out.end();
    const indexBytes = statSync(out.path).size;
    await req.sink.write('index', createReadStream(out.path), { extension: '.ndjson', guard: 'none', small: indexBytes <= SMALL_INDEX, sizeHint: indexBytes });
    // Split keys are object keys: not in the plaintext manifest of an encrypted backup (its
    // next incremental lists in one range).
    if (!req.sink.encrypted) facts.splits = out.splits();
    return facts;
  } finally {
    ctx.signal.removeEventListener('abort', stopReads);
    parent?.close();
    out.close();
  }
}
