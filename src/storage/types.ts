// The one small interface every pool driver implements. Keys are relative to the pool root
// ('/'-separated, no '..', no leading '/'); all keys come from src/storage/layout.ts.
import type { Readable } from 'node:stream';
import type { PoolType } from '../store/catalog.js';

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
   * Objects are local files: openFile() lets a program write one directly (the data path's
   * `file` execution). A wrapping driver that must see every byte says false.
   */
  localFiles: boolean;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
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

export type PutBody = Readable | AsyncIterable<Uint8Array> | Uint8Array | string;

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
  readonly type: PoolType;
  readonly capabilities: PoolCapabilities;
  /** Human-readable location, no secrets: a path or `s3://bucket/prefix @ endpoint`. */
  readonly location: string;
  put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult>;
  /** Only drivers whose objects are local files: a put whose bytes a child process writes. */
  openFile?(key: string, options?: PutOptions): Promise<FileTarget>;
  get(key: string, options?: GetOptions): Promise<Readable>;
  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined>;
  list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo>;
  delete(key: string, options?: OpOptions): Promise<void>;
  /** Interrupted writes under a prefix (S3 multipart uploads, local temp files). */
  listIncomplete(prefix: string, options?: OpOptions): AsyncIterable<IncompleteUpload>;
  /** Removes interrupted writes under a prefix; returns how many. */
  abortIncomplete(prefix: string, options?: OpOptions & { olderThan?: Date }): Promise<number>;
  close(): Promise<void>;
}
