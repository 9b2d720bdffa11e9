// Buckets for the bucket engine's tests: make one with objects of every kind (sizes, content
// types, user metadata, folder markers, long and non-ASCII keys), and read a prefix back key by
// key (sha256 of the bytes, size, content type, metadata, cache-control) to compare.
import { createHash, randomBytes } from 'node:crypto';
import { CopyObjectCommand, CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export interface Obj {
  key: string;
  body: Buffer;
  contentType?: string;
  metadata?: Record<string, string>;
  cacheControl?: string;
}

let n = 0;
/** A fresh bucket name (lowercase, no underscores). */
export function bucketName(tag: string): string {
  return `${tag.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-${process.pid}-${Date.now().toString(36)}-${n++}`.slice(0, 63).replace(/-+$/, '');
}

export async function makeBucket(s3: S3Client, name: string, objects: readonly Obj[] = []): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  await putAll(s3, name, objects);
}

export async function putAll(s3: S3Client, bucket: string, objects: readonly Obj[], concurrency = 16): Promise<void> {
  for (let i = 0; i < objects.length; i += concurrency) {
    await Promise.all(
      objects.slice(i, i + concurrency).map((o) =>
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: o.body, ContentType: o.contentType, Metadata: o.metadata, CacheControl: o.cacheControl })),
      ),
    );
  }
}

export async function deleteKey(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** Changes an object's user metadata only (copy onto itself): same bytes, same ETag. */
export async function replaceMetadata(s3: S3Client, bucket: string, key: string, metadata: Record<string, string>, contentType: string): Promise<void> {
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`, MetadataDirective: 'REPLACE', Metadata: metadata, ContentType: contentType }));
}

/** Objects of every kind under `prefix` (a folder, ending in "/"). */
export function mixedObjects(prefix: string, opts: { big?: number } = {}): Obj[] {
  const objs: Obj[] = [
    { key: `${prefix}empty.txt`, body: Buffer.alloc(0), contentType: 'text/plain' },
    { key: `${prefix}folder/`, body: Buffer.alloc(0), contentType: 'application/x-directory' },
    { key: `${prefix}docs/readme.md`, body: Buffer.from('# hello\n'.repeat(200)), contentType: 'text/markdown; charset=utf-8', metadata: { owner: 'ops', 'x-note': 'kept' }, cacheControl: 'max-age=60' },
    { key: `${prefix}docs/deep/${'long-name-'.repeat(12)}.bin`, body: randomBytes(3000), contentType: 'application/octet-stream' },
    { key: `${prefix}unicode/café ü 数据.json`, body: Buffer.from(JSON.stringify({ ok: true })), contentType: 'application/json', metadata: { lang: 'fr' } },
    { key: `${prefix}with space/a+b=c.txt`, body: Buffer.from('plus and equals'), contentType: 'text/plain' },
    { key: `${prefix}block-512.bin`, body: randomBytes(512) },
  ];
  for (let i = 0; i < 20; i++) objs.push({ key: `${prefix}many/item-${String(i).padStart(3, '0')}.dat`, body: randomBytes(100 + i * 97), contentType: 'application/x-item', metadata: { index: String(i) } });
  if (opts.big) objs.push({ key: `${prefix}big/blob.bin`, body: randomBytes(opts.big), contentType: 'application/x-big', metadata: { size: String(opts.big) } });
  return objs;
}

/** Every object under `prefix`, by key relative to it: sha256, size, content type, metadata, cache-control. */
export async function bucketFacts(s3: S3Client, bucket: string, prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
    for (const o of r.Contents ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      out[o.Key!.slice(prefix.length)] = {
        size: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        contentType: got.ContentType,
        metadata: got.Metadata ?? {},
        cacheControl: got.CacheControl,
      };
    }
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}
