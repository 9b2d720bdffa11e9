// The one small interface every pool driver implements. Keys are relative to the pool root
// ('/'-separated, no '..', no leading '/'); all keys come from src/storage/layout.ts.
import type { Readable } from 'node:stream';
import type { Secret } from '../secret.js';

export interface PoolCapabilities {
  /**
   * put(key, body, { ifAbsent: true }) fails with ALREADY_EXISTS when the key exists, and
   * of two concurrent writers exactly one succeeds. Where false, ifAbsent is a best-effort
   * check before the write.
   */
  createIfAbsent: boolean;
  /** Readers never see a partial object: a put is all or nothing. */
  atomicPut: boolean;
  /** get() honours a byte range. */
  rangedReads: boolean;
  /** Interrupted writes can leave server-side state (multipart uploads) to clean up. */
  incompleteUploads: boolean;
  /**
   * Objects are local files and openFile() is offered: a child process may write a pool file
   * through a raw descriptor, bypassing Node. False for every wrapper (storage/wrap.ts): a
   * wrapper cannot see bytes written through a descriptor, so it does not offer openFile and
   * callers fall back to put().
   */
  localFiles: boolean;
  /**
   * copyFrom() is offered: the pool can copy an object from another pool of its own kind
   * without the bytes passing through dbs (S3 CopyObject / UploadPartCopy) when both share an
   * endpoint and credentials. False for every wrapper.
   */
  serverSideCopy: boolean;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

/** What a server-side copy tells of the copy it made, without the bytes passing through dbs. */
export interface ServerCopy {
  /** The copy's SHA-256 (hex) as the server computed it, where it offers one (S3 additional checksums). */
  sha256?: string;
  /** The server reports the copy with the source's ETag and size (one copy request, not parts). */
  sameAsSource: boolean;
}

export interface IncompleteUpload {
  key: string;
  id: string;
  started: Date | undefined;
}

export interface PutOptions {
  /** Refuse (ALREADY_EXISTS) when the key exists; see capabilities.createIfAbsent. */
  ifAbsent?: boolean;
  signal?: AbortSignal;
  /** Expected size in bytes, when known; lets a driver pick part sizes up front. */
  sizeHint?: number;
}

export interface PutResult {
  key: string;
  /** Bytes stored. */
  size: number;
}

export interface GetOptions {
  /** Byte range, `end` inclusive (HTTP semantics); omit end to read to the end. */
  range?: { start: number; end?: number };
  signal?: AbortSignal;
}

export interface OpOptions {
  signal?: AbortSignal;
}

/**
 * A pool object being written as a plain file by someone else (a child process given `fd` as
 * its stdout), for data that need not pass through Node. Until commit() it is a temp file:
 * invisible to get()/list(), listed by listIncomplete().
 */
export interface FileTarget {
  /** Open for writing at offset 0. */
  readonly fd: number;
  /** Where the bytes can be read back while they are written. */
  readonly path: string;
  /** Makes the file durable and places it at its key, all or nothing (as put() does). */
  commit(): Promise<PutResult>;
  /** Removes the temp file; safe to call after a failed commit, and more than once. */
  abort(): Promise<void>;
}

/**
 * A body the writer reads into buffers of its own: `pull(buf)` fills `buf` from its start and
 * resolves with the bytes it put there, 0 at the end (no buffer per read, so nothing for the
 * garbage collector: a streamed copy of a local file into S3 moves a GB this way). `size` is the
 * whole body's length. A pull may reject (a checked body that did not match): the put fails and
 * leaves nothing.
 */
export interface PullBody {
  readonly size: number;
  pull(buf: Buffer): Promise<number>;
}

/** A PullBody over a pool object (openPull), closed by the caller. */
export interface PullSource extends PullBody {
  close(): Promise<void>;
}

export function isPullBody(b: unknown): b is PullBody {
  return typeof b === 'object' && b !== null && typeof (b as PullBody).pull === 'function' && typeof (b as PullBody).size === 'number';
}

export type PutBody = Readable | AsyncIterable<Uint8Array> | Uint8Array | string | PullBody;

/**
 * What callers may rely on:
 * - put() consumes the body with backpressure and never buffers it whole; when it throws
 *   (including when the body stream errors or the signal aborts) nothing is left at the key
 *   and no incomplete upload remains.
 * - get() throws OBJECT_NOT_FOUND for a missing key before any byte is returned.
 * - stat() returns undefined for a missing key.
 * - list() yields each object under the prefix exactly once, in key order, paginating
 *   internally; it never yields a driver's own temporary objects.
 * - delete() of a missing key succeeds.
 * - Errors are DbsErrors: OBJECT_NOT_FOUND, ALREADY_EXISTS, POOL_AUTH / PERMISSION_DENIED,
 *   POOL_UNREACHABLE, IO_ERROR; an abort rejects with the signal's reason.
 */
export interface PoolDriver {
  /** The driver's name (for messages); callers branch on `capabilities`, never on this. */
  readonly type: string;
  readonly capabilities: PoolCapabilities;
  /** Human-readable location, no secrets: a path or `s3://bucket/prefix @ endpoint`. */
  readonly location: string;
  put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult>;
  /**
   * Only where capabilities.localFiles: a put whose bytes a child process writes. Wrappers never
   * forward it (their faults, throttle or metering could not see those bytes).
   */
  openFile?(key: string, options?: PutOptions): Promise<FileTarget>;
  /**
   * Only where capabilities.serverSideCopy: copies `sourceKey` of `source` to `key` in this pool
   * on the server. Resolves false (and does nothing) when `source` cannot be copied from this
   * way (another kind, endpoint or credentials, or a wrapped driver): the caller streams
   * instead. When it throws, nothing is left at `key`. Resolves with what the server says of
   * the copy it made (ServerCopy): the caller decides whether that is check enough.
   */
  copyFrom?(source: PoolDriver, sourceKey: string, key: string, options: OpOptions & { size: number }): Promise<ServerCopy | false>;
  /** The object's bytes; a missing key rejects here (OBJECT_NOT_FOUND), before any is read. */
  get(key: string, options?: GetOptions): Promise<Readable>;
  /** The object as a PullBody (drivers that read locally: a file read into the caller's buffers). */
  openPull?(key: string, options?: OpOptions): Promise<PullSource>;
  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;
  list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo>;
  delete(key: string, options?: OpOptions): Promise<void>;
  /** Interrupted writes under a prefix (S3 multipart uploads, local temp files). */
  listIncomplete(prefix: string, options?: OpOptions): AsyncIterable<IncompleteUpload>;
  /** Removes interrupted writes under a prefix; returns how many. */
  abortIncomplete(prefix: string, options?: OpOptions & { olderThan?: Date }): Promise<number>;
  close(): Promise<void>;
}

/** Settings every driver may honour (from dbs's settings; see driverSettings()). */
export interface DriverSettings {
  partSize?: number;
  concurrency?: number;
  /** S3: ms a request may go without an answer (per attempt). */
  timeoutMs?: number;
  /** The local address network drivers connect from (the gateway's; core/gateway.ts). */
  localAddress?: string;
}

/**
 * What `dbs pool bind` passes to a driver kind: every driver's flags in one bag (a driver
 * takes the ones it lists in `flags` and refuses none itself; core refuses the others).
 */
export interface BindFlags {
  path?: string;
  endpoint?: string;
  bucket?: string;
  prefix?: string;
  region?: string;
  accessKey?: string;
  pathStyle?: boolean;
  /** A secret key was given. */
  secretKey: boolean;
}

/** The flags of BindFlags that a user gives (pathStyle has a default and is not checked). */
export type BindFlag = 'path' | 'endpoint' | 'bucket' | 'prefix' | 'region' | 'accessKey';

/**
 * A pool driver as the catalog and the CLI know it: the shape of its config (stored by the
 * catalog as opaque JSON), how it is built from bind flags and decoded when read back, how
 * it shows, and how it is opened. One registry line per kind (storage/registry.ts). A kind's
 * module must be cheap to import: `open` loads the driver (and its SDK) lazily.
 */
export interface DriverKind<C extends object = object> {
  readonly type: string;
  /** The bind flags it takes; core refuses any other flag given. */
  readonly flags: readonly BindFlag[];
  /** Hints for flags of other kinds given to this one (default: "drop it for --type T"). */
  readonly misfitHints?: Partial<Record<BindFlag, string>>;
  /** Takes an access key and a secret key (pool bind/update credential options). */
  readonly credentials: boolean;
  /**
   * Its traffic leaves the host over the network (S3): while a gateway exists, its
   * connections leave from the gateway's address and its bytes count against the cap.
   */
  readonly network?: boolean;
  /** Validates bind flags into a config; DbsError (USAGE, INVALID_ARGUMENT, INVALID_PATH) naming the flag. */
  fromBind(flags: BindFlags): C;
  /** Decodes a config read back from the catalog; a DbsError naming `what` when it is not one. */
  decode(data: unknown, what: string): C;
  /** Human-readable location, no secrets; also what makes two bindings the same place. */
  location(config: C): string;
  /** Labelled fields for `dbs pool show` besides the location. */
  fields(config: C): [string, string][];
  /** The config with a new access key (kinds with credentials). */
  withAccessKey?(config: C, accessKey: string): C;
  open(config: C, secretKey: Secret | undefined, settings: DriverSettings): Promise<PoolDriver>;
  /**
   * At bind, on the unwrapped driver, before the probe: make the place exist where that is
   * the driver's job (an S3 bucket). Returns what it created, e.g. "bucket dbs".
   */
  prepare?(driver: PoolDriver, config: C, flags: BindFlags, options: OpOptions): Promise<string | undefined>;
}
