// S3-compatible pool. Streams are uploaded as multipart uploads whose part size grows with
// the stream, so the 10,000-part limit is not reached before S3's 5 TiB object limit, while
// memory stays bounded by a byte budget rather than by the object's size. Any failure aborts
// the multipart upload before the error is thrown. Small bodies are one PutObject, which
// honours If-None-Match: * (create-if-absent) on AWS and on Ceph RGW.
//
// Why not @aws-sdk/lib-storage's Upload: it uses one fixed partSize for every part and
// rejects a part of any other size, so it cannot grow parts with a stream of unknown length.
import { webcrypto } from 'node:crypto';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { DbsError, isAbort } from '../errors.js';
import { Secret, redactText } from '../secret.js';
import { validateKey, validatePrefix } from './layout.js';
import { iterateBody, throwIfAborted } from './body.js';
import { isPullBody, type GetOptions, type IncompleteUpload, type ObjectInfo, type OpOptions, type PoolCapabilities, type PoolDriver, type PutBody, type PutOptions, type PutResult, type ServerCopy } from './types.js';
import { AUTH_NAMES, networkCode, TLS_CERT_HINT, tlsCertCode, type AwsLikeError } from '../aws-errors.js';

// node:http(s) through getBuiltinModule, not an ESM import: the ESM facade of node:http reads
// every export, and its WebSocket getter loads undici (~20-30 ms of start-up for nothing).
const { Agent: HttpAgent } = process.getBuiltinModule('node:http');
const { Agent: HttpsAgent } = process.getBuiltinModule('node:https');

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
/** Parts per size step: after every this many parts the part size doubles. */
export const PARTS_PER_STEP = 1000;

export interface S3DriverOptions {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  pathStyle: boolean;
  accessKey?: string;
  secretKey?: Secret;
  /** First part size in bytes (default 8 MiB). */
  partSize?: number;
  /** Parts uploaded at once at the first part size (default 4). */
  concurrency?: number;
  /**
   * How long (ms) one attempt of a request may go without any byte from the server before it
   * fails (default 30 s); connecting takes at most 5 s of it. An attempt that times out is
   * retried; with MAX_ATTEMPTS a request fails after at most about MAX_ATTEMPTS x this.
   */
  timeoutMs?: number;
  /**
   * The local address every connection to the endpoint leaves from (the gateway's): the
   * client's http and https agents bind to it, so uploads, downloads, listings and probes all do.
   */
  localAddress?: string;
}

/** Attempts per request (the first and two retries). */
export const MAX_ATTEMPTS = 3;
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The SHA-256 of a part for its SigV4 signature (x-amz-content-sha256), computed on the libuv
 * thread pool (WebCrypto) instead of by the SDK's signer on the main thread: with parts in
 * flight this runs on the other core while the main thread reads, checks and sends.
 */
function payloadSha256(data: Buffer): Promise<string> {
  return webcrypto.subtle.digest('SHA-256', data).then((d) => Buffer.from(d).toString('hex'));
}

/** Gives the signer the payload hash it would otherwise compute itself (it uses a header that is set). */
function withPayloadHash(cmd: UploadPartCommand, sha256: string): UploadPartCommand {
  cmd.middlewareStack.add(
    (next) => (args) => {
      const req = args.request as { headers?: Record<string, string> };
      if (req.headers) req.headers['x-amz-content-sha256'] = sha256;
      return next(args);
    },
    { step: 'build', name: 'dbsPayloadHash' },
  );
  return cmd;
}

/** A part's CRC32 as S3 carries it (x-amz-checksum-crc32: the 4 big-endian bytes in base64). */
export function crc32Base64(data: Uint8Array): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(data) >>> 0);
  return b.toString('base64');
}

/**
 * How a part's bytes are protected on the way. Over plain HTTP the part is signed
 * (x-amz-content-sha256 is its SHA-256, which the server checks: a part damaged in transit is
 * refused). Over HTTPS, TLS already guards the bytes in transit, so the part goes as
 * UNSIGNED-PAYLOAD with an x-amz-checksum-crc32 (what the AWS CLI and SDKs do over HTTPS): one
 * SHA-256 pass per upload less. AWS S3 and current MinIO/Ceph check the CRC; Ceph 16 (the test
 * bed) accepts and ignores it (probed: a wrong CRC32 was stored).
 */
export type PartIntegrity = 'signed-sha256' | 'tls-crc32';

/** https endpoints (and AWS itself, which dbs reaches over https) use TLS; see PartIntegrity. */
export function partIntegrityFor(endpoint: string | undefined): PartIntegrity {
  return endpoint === undefined || endpoint === '' || /^https:/i.test(endpoint) ? 'tls-crc32' : 'signed-sha256';
}

/** Bytes per pull of a PullBody (into a staging buffer of the put, reused). */
const STAGING_CHUNK = 1024 * 1024;

/** Size of part `n` (1-based) when the first part is `base` bytes. */
export function partSizeFor(n: number, base: number): number {
  const step = Math.floor((n - 1) / PARTS_PER_STEP);
  return Math.min(MAX_PART_SIZE, base * 2 ** step);
}

export class S3Driver implements PoolDriver {
  readonly type = 's3' as const;
  readonly capabilities: PoolCapabilities = { createIfAbsent: true, atomicPut: true, rangedReads: true, incompleteUploads: true, localFiles: false, serverSideCopy: true };
  readonly location: string;
  readonly client: S3Client;
  readonly bucket: string;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #budget: number;
  readonly #secret?: Secret;
  readonly #timeoutMs: number;
  /** The gateway's address connections leave from, when there is one. */
  readonly localAddress?: string;
  /** Endpoint and access key: two drivers with the same (and the same secret) may copy server side. */
  readonly #account: string;
  /** How parts are protected on the way (see PartIntegrity). */
  readonly partIntegrity: PartIntegrity;

  constructor(o: S3DriverOptions) {
    this.partIntegrity = partIntegrityFor(o.endpoint);
    this.localAddress = o.localAddress;
    this.bucket = o.bucket;
    this.#prefix = o.prefix.replace(/^\/+|\/+$/g, '');
    this.#partSize = Math.max(MIN_PART_SIZE, o.partSize ?? 8 * 1024 * 1024);
    this.#budget = this.#partSize * Math.max(1, o.concurrency ?? 4);
    this.#secret = o.secretKey;
    this.#timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#account = `${o.endpoint}\n${o.accessKey ?? ''}`;
    this.location = `s3://${o.bucket}${this.#prefix ? `/${this.#prefix}` : ''} @ ${o.endpoint}`;
    this.client = new S3Client({
      endpoint: o.endpoint,
      region: o.region,
      forcePathStyle: o.pathStyle,
      credentials: o.accessKey && o.secretKey ? { accessKeyId: o.accessKey, secretAccessKey: o.secretKey.reveal() } : undefined,
      maxAttempts: MAX_ATTEMPTS,
      // S3-compatible servers (RGW 16, MinIO) lag behind AWS's default CRC trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // socketTimeout is the idle timeout: a frozen endpoint (accepts, never answers; a
      // stopped gateway) fails the attempt after it, however long a healthy transfer takes.
      // requestTimeout is left unset: it bounds a whole request (a 5 GiB part may take
      // minutes) and, without throwOnRequestTimeout, only prints a warning.
      requestHandler: {
        connectionTimeout: Math.min(5000, this.#timeoutMs),
        socketTimeout: this.#timeoutMs,
        // The SDK's own defaults, plus the gateway's address to leave from.
        ...(o.localAddress
          ? {
              httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 50, localAddress: o.localAddress }),
              httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 50, localAddress: o.localAddress }),
            }
          : {}),
      },
    });
  }

  #full(key: string): string {
    validateKey(key);
    return this.#prefix ? `${this.#prefix}/${key}` : key;
  }

  #fullPrefix(prefix: string): string {
    validatePrefix(prefix);
    return this.#prefix ? `${this.#prefix}/${prefix}` : prefix;
  }

  #rel(fullKey: string): string {
    return this.#prefix ? fullKey.slice(this.#prefix.length + 1) : fullKey;
  }

  /** Maps an SDK error to a DbsError that names the object; never includes a secret. */
  mapError(e: unknown, what: string, signal?: AbortSignal): unknown {
    if (signal?.aborted || isAbort(e)) return signal?.reason ?? e;
    if (e instanceof DbsError) return e;
    const err = e as AwsLikeError;
    const status = err.$metadata?.httpStatusCode;
    const name = err.name ?? err.Code ?? '';
    const msg = redactText(err.message ?? String(e), [this.#secret]);
    const cert = tlsCertCode(e);
    if (cert) return new DbsError('POOL_UNREACHABLE', `${what}: cannot trust the TLS certificate of ${this.location} (${cert})`, { cause: e, hint: TLS_CERT_HINT });
    const net = networkCode(e);
    if (net) {
      return new DbsError('POOL_UNREACHABLE', `${what}: cannot reach ${this.location}${this.localAddress ? ` from the gateway address ${this.localAddress}` : ''} (${net})`, {
        cause: e,
        hint: this.localAddress
          ? 'check the endpoint URL, that the S3 server runs, and that the gateway address (dbs gateway show) is still on this host and of the endpoint\'s address family'
          : 'check the endpoint URL, the network and that the S3 server is running',
      });
    }
    if (AUTH_NAMES.has(name) || status === 403 || status === 401) {
      return new DbsError('POOL_AUTH', `${what}: access denied by ${this.location} (${name || status})`, {
        cause: e,
        hint: 'check the access key and secret key (or the AWS credential chain) and the bucket policy',
      });
    }
    if (name === 'NoSuchBucket') {
      return new DbsError('NOT_FOUND', `${what}: bucket ${this.bucket} does not exist at ${this.location}`, {
        cause: e,
        hint: 'create the bucket, or bind without --bucket to use (and create) the bucket "dbs"',
      });
    }
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return new DbsError('OBJECT_NOT_FOUND', `${what}: not found`, { cause: e });
    }
    if (name === 'PreconditionFailed' || status === 412) {
      return new DbsError('ALREADY_EXISTS', `${what}: already exists`, { cause: e });
    }
    return new DbsError('IO_ERROR', `${what}: ${name ? `${name}: ` : ''}${msg}`, { cause: e });
  }

  /** Checks the bucket; creates it when missing and `create` is set. */
  async ensureBucket(create: boolean, options: OpOptions = {}): Promise<'exists' | 'created'> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: options.signal });
      return 'exists';
    } catch (e) {
      const status = (e as AwsLikeError).$metadata?.httpStatusCode;
      const name = (e as AwsLikeError).name;
      if (!(status === 404 || name === 'NotFound' || name === 'NoSuchBucket')) throw this.mapError(e, `bucket ${this.bucket}`, options.signal);
    }
    if (!create) {
      throw new DbsError('NOT_FOUND', `bucket ${this.bucket} does not exist at ${this.location}`, {
        hint: 'create the bucket first, or bind without --bucket to use (and create) the bucket "dbs"',
      });
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }), { abortSignal: options.signal });
      return 'created';
    } catch (e) {
      const name = (e as AwsLikeError).name;
      if (name === 'BucketAlreadyOwnedByYou') return 'exists';
      throw this.mapError(e, `cannot create bucket ${this.bucket}`, options.signal);
    }
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<PutResult> {
    const Key = this.#full(key);
    const signal = options.signal;
    const what = `${this.location}: cannot write ${key}`;
    throwIfAborted(signal);
    let base = this.#partSize;
    const hint = options.sizeHint ?? (isPullBody(body) ? body.size : undefined);
    if (hint && hint > base * PARTS_PER_STEP) {
      base = Math.min(MAX_PART_SIZE, Math.ceil(hint / (PARTS_PER_STEP * 2)));
    }
    // A pull body is read into staging buffers of this put, reused once their bytes were
    // copied into a part; any other body is iterated (its chunks are its own).
    const pull = isPullBody(body) ? body : undefined;
    const it = pull ? undefined : iterateBody(body)[Symbol.asyncIterator]();
    const staging: Buffer[] = [];
    const owner = new WeakMap<Buffer, Buffer>();
    const released = (view: Buffer): void => {
      const o = owner.get(view);
      if (o) staging.push(o);
    };
    // Buffer up to the first part: a body that ends before it is a single PutObject.
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let done = false;
    const fill = async (want: number): Promise<void> => {
      while (!done && pendingBytes < want) {
        if (pull) {
          const sb = staging.pop() ?? Buffer.allocUnsafe(STAGING_CHUNK);
          const n = await pull.pull(sb);
          if (n === 0) {
            done = true;
            staging.push(sb);
          } else {
            const view = sb.subarray(0, n);
            owner.set(view, sb);
            pending.push(view);
            pendingBytes += n;
          }
          continue;
        }
        const r = await it!.next();
        if (r.done) done = true;
        else if (r.value.length) {
          pending.push(r.value);
          pendingBytes += r.value.length;
        }
      }
    };
    const take = (n: number): Buffer => {
      const out = Buffer.concat(pending, pendingBytes);
      for (const v of pending) released(v);
      pending.length = 0;
      pendingBytes = 0;
      if (out.length > n) {
        pending.push(out.subarray(n));
        pendingBytes = out.length - n;
        return out.subarray(0, n);
      }
      return out;
    };
    // Part buffers are reused once their part settled: a fresh buffer per part is garbage the
    // collector must chase (an 8 MiB part buffer per 8 MiB sent: ~30 full collections a GB).
    const spare: Buffer[] = [];
    const takePart = (n: number): { part: Buffer; data: Buffer } => {
      const len = Math.min(n, pendingBytes);
      const i = spare.findIndex((b) => b.length === n);
      const part = i >= 0 ? spare.splice(i, 1)[0]! : Buffer.allocUnsafe(n);
      let off = 0;
      while (off < len) {
        const c = pending[0]!;
        const k = Math.min(c.length, len - off);
        c.copy(part, off, 0, k);
        off += k;
        if (k === c.length) released(pending.shift()!);
        else {
          const rest = c.subarray(k);
          const o = owner.get(c);
          if (o) owner.set(rest, o);
          pending[0] = rest;
        }
      }
      pendingBytes -= len;
      return { part, data: part.subarray(0, len) };
    };
    try {
      await fill(base + 1);
    } catch (e) {
      await it?.return?.();
      throw this.mapError(e, what, signal);
    }
    if (done && pendingBytes <= base) {
      const data = take(pendingBytes);
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key, Body: data, ContentLength: data.length, IfNoneMatch: options.ifAbsent ? '*' : undefined }),
          { abortSignal: signal },
        );
      } catch (e) {
        throw this.mapError(e, options.ifAbsent ? `${this.location}: ${key}` : what, signal);
      }
      return { key, size: data.length };
    }
    if (options.ifAbsent && (await this.stat(key, { signal }))) {
      await it?.return?.();
      throw new DbsError('ALREADY_EXISTS', `${this.location}: ${key} already exists`);
    }
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];
    const inflight = new Map<number, Promise<void>>();
    let inflightBytes = 0;
    let failure: unknown;
    let size = 0;
    // One failed part dooms the upload: the others in flight stop at once rather than each
    // running out its own timeouts and retries.
    const partsStop = new AbortController();
    const partSignal = signal ? AbortSignal.any([signal, partsStop.signal]) : partsStop.signal;
    try {
      // Not aborted by the signal: an upload the server created after an abort must still be
      // known here, to be aborted below (else it is left for the recovery sweep to find).
      const crc = this.partIntegrity === 'tls-crc32';
      const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ChecksumAlgorithm: crc ? 'CRC32' : undefined }));
      uploadId = created.UploadId!;
      throwIfAborted(signal);
      for (let n = 1; ; n++) {
        if (n > MAX_PARTS) throw new DbsError('IO_ERROR', `${what}: the stream exceeds ${MAX_PARTS} parts`);
        const want = partSizeFor(n, base);
        await fill(want + 1);
        if (pendingBytes === 0 && n > 1) break;
        const { part, data } = takePart(want);
        const isLast = done && pendingBytes === 0;
        // Bounded memory: wait while the bytes in flight would exceed the budget (one part
        // always fits, however large it has grown).
        while (inflight.size > 0 && inflightBytes + data.length > Math.max(this.#budget, want)) {
          await Promise.race(inflight.values());
        }
        if (failure) throw failure;
        throwIfAborted(signal);
        size += data.length;
        inflightBytes += data.length;
        const checksum = crc ? crc32Base64(data) : undefined;
        const p = (checksum ? Promise.resolve('UNSIGNED-PAYLOAD') : payloadSha256(data))
          .then((sha) =>
            this.client.send(
              withPayloadHash(new UploadPartCommand({ Bucket: this.bucket, Key, UploadId: uploadId, PartNumber: n, Body: data, ContentLength: data.length, ChecksumCRC32: checksum }), sha),
              { abortSignal: partSignal },
            ),
          )
          .then(
            (r) => {
              parts.push({ PartNumber: n, ETag: r.ETag, ChecksumCRC32: checksum });
            },
            (e) => {
              failure ??= e;
              partsStop.abort();
            },
          )
          .finally(() => {
            inflight.delete(n);
            inflightBytes -= data.length;
            spare.push(part);
          });
        inflight.set(n, p);
        if (isLast) break;
      }
      await Promise.all(inflight.values());
      if (failure) throw failure;
      throwIfAborted(signal);
      parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          IfNoneMatch: options.ifAbsent ? '*' : undefined,
        }),
        { abortSignal: signal },
      );
      return { key, size };
    } catch (e) {
      failure ??= e;
      await Promise.allSettled(inflight.values());
      await it?.return?.().catch(() => undefined);
      if (uploadId) await this.#abortUpload(Key, uploadId);
      throw this.mapError(failure, what, signal);
    }
  }

  /**
   * Aborts a multipart upload; retried because parts racing the abort can re-create state.
   * Bounded by one timeout in all (the upload failed already, maybe because the endpoint hangs;
   * an upload left behind is aborted by recovery).
   */
  async #abortUpload(Key: string, UploadId: string, signal?: AbortSignal): Promise<void> {
    const deadline = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), ...(signal ? [signal] : [])]);
    for (let attempt = 0; attempt < 3 && !deadline.aborted; attempt++) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }), { abortSignal: deadline });
        return;
      } catch (e) {
        const name = (e as AwsLikeError).name;
        if (name === 'NoSuchUpload' || (e as AwsLikeError).$metadata?.httpStatusCode === 404) return;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
  }

  /** Same endpoint, access key and secret key: the server can read what the other pool holds. */
  #sameAccount(other: S3Driver): boolean {
    return this.#account === other.#account && (this.#secret?.reveal() ?? '') === (other.#secret?.reveal() ?? '');
  }

  /**
   * Server-side copy from another S3 pool on the same endpoint with the same credentials:
   * CopyObject up to 5 GiB, else a multipart upload of UploadPartCopy ranges. Any failure aborts
   * the multipart upload; nothing is left at `key`.
   */
  async copyFrom(source: PoolDriver, sourceKey: string, key: string, options: OpOptions & { size: number }): Promise<ServerCopy | false> {
    if (!(source instanceof S3Driver) || !this.#sameAccount(source)) return false;
    const Key = this.#full(key);
    const from = `${source.bucket}/${source.#full(sourceKey)}`.split('/').map(encodeURIComponent).join('/');
    const signal = options.signal;
    const what = `${this.location}: cannot copy ${key} from ${source.location}`;
    if (options.size <= MAX_PART_SIZE) {
      try {
        const before = await this.client.send(new HeadObjectCommand({ Bucket: source.bucket, Key: source.#full(sourceKey) }), { abortSignal: signal });
        // Asks the server for the copy's SHA-256 (AWS computes it; servers without additional
        // checksums, e.g. Ceph RGW 16, ignore the header and report none).
        const out = await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key, CopySource: from, ChecksumAlgorithm: 'SHA256' }), { abortSignal: signal });
        const after = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal });
        const b64 = out.CopyObjectResult?.ChecksumSHA256;
        const sha256 = b64 && !b64.includes('-') ? Buffer.from(b64, 'base64').toString('hex') : undefined;
        const sameAsSource = Boolean(before.ETag) && before.ETag === after.ETag && before.ContentLength === options.size && after.ContentLength === options.size;
        return { ...(sha256 && sha256.length === 64 ? { sha256 } : {}), sameAsSource };
      } catch (e) {
        await this.delete(key).catch(() => undefined);
        throw this.mapError(e, what, signal);
      }
    }
    let uploadId: string | undefined;
    try {
      // Not aborted by the signal (see put): an upload created after an abort is aborted below.
      uploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }))).UploadId!;
      throwIfAborted(signal);
      // Ranges of 1 GiB (at most 5 GiB each, 10,000 parts), four at a time.
      const partSize = Math.max(1024 ** 3, Math.ceil(options.size / MAX_PARTS));
      const ranges: { n: number; start: number; end: number }[] = [];
      for (let start = 0, n = 1; start < options.size; start += partSize, n++) ranges.push({ n, start, end: Math.min(options.size, start + partSize) - 1 });
      const parts: CompletedPart[] = [];
      let next = 0;
      const worker = async () => {
        while (next < ranges.length) {
          const r = ranges[next++];
          const out = await this.client.send(
            new UploadPartCopyCommand({ Bucket: this.bucket, Key, UploadId: uploadId, PartNumber: r.n, CopySource: from, CopySourceRange: `bytes=${r.start}-${r.end}` }),
            { abortSignal: signal },
          );
          parts.push({ PartNumber: r.n, ETag: out.CopyPartResult?.ETag });
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
      // Parts of its own size: the copy's ETag cannot equal the source's, and no checksum of the whole.
      return { sameAsSource: false };
    } catch (e) {
      if (uploadId) await this.#abortUpload(Key, uploadId);
      throw this.mapError(e, what, signal);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const r = options.range;
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.#full(key), Range: r ? `bytes=${r.start}-${r.end ?? ''}` : undefined }),
        { abortSignal: options.signal },
      );
      return out.Body as Readable;
    } catch (e) {
      const name = (e as AwsLikeError).name;
      if (r && (name === 'InvalidRange' || (e as AwsLikeError).$metadata?.httpStatusCode === 416)) {
        const { Readable: R } = await import('node:stream');
        return R.from([]);
      }
      throw this.mapError(e, `${this.location}: cannot read ${key}`, options.signal);
    }
  }

  async stat(key: string, options: OpOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#full(key) }), { abortSignal: options.signal });
      return { key, size: h.ContentLength ?? 0, modified: h.LastModified ?? new Date(0) };
    } catch (e) {
      const status = (e as AwsLikeError).$metadata?.httpStatusCode;
      if (status === 404 || (e as AwsLikeError).name === 'NotFound') return undefined;
      throw this.mapError(e, `${this.location}: cannot stat ${key}`, options.signal);
    }
  }

  async *list(prefix: string, options: OpOptions = {}): AsyncIterable<ObjectInfo> {
    const Prefix = this.#fullPrefix(prefix);
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken }), { abortSignal: options.signal });
      } catch (e) {
        throw this.mapError(e, `${this.location}: cannot list ${prefix || '/'}`, options.signal);
      }
      for (const o of page.Contents ?? []) {
        yield { key: this.#rel(o.Key!), size: o.Size ?? 0, modified: o.LastModified ?? new Date(0) };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(key: string, options: OpOptions = {}): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#full(key) }), { abortSignal: options.signal });
    } catch (e) {
      const status = (e as AwsLikeError).$metadata?.httpStatusCode;
      if (status === 404) return;
      throw this.mapError(e, `${this.location}: cannot delete ${key}`, options.signal);
    }
  }

  async *listIncomplete(prefix: string, options: OpOptions = {}): AsyncIterable<IncompleteUpload> {
    const Prefix = this.#fullPrefix(prefix);
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix, KeyMarker, UploadIdMarker }), {
          abortSignal: options.signal,
        });
      } catch (e) {
        throw this.mapError(e, `${this.location}: cannot list multipart uploads`, options.signal);
      }
      for (const u of page.Uploads ?? []) yield { key: this.#rel(u.Key!), id: u.UploadId!, started: u.Initiated };
      if (!page.IsTruncated) return;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortIncomplete(prefix: string, options: OpOptions & { olderThan?: Date } = {}): Promise<number> {
    const found: IncompleteUpload[] = [];
    for await (const u of this.listIncomplete(prefix, options)) {
      if (options.olderThan && u.started && u.started >= options.olderThan) continue;
      found.push(u);
    }
    for (const u of found) await this.#abortUpload(this.#full(u.key), u.id, options.signal);
    return found.length;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
