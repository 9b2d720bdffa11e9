// The bucket engine's own types: its selection (where the bucket is served), its manifest
// facts, its restore options, and one line of its index artifact. Kept apart from
// descriptor.ts and the engine modules so both can use them without a cycle.
import type { BackupOutcome, BackupRequest, Json, RestoreRequest } from '../types.js';

/** Where the source bucket is served and as whom; the bucket and prefix are the URL's. */
export type BucketSelection = {
  endpoint: string;
  region: string;
  pathStyle: boolean;
  /** Absent: the AWS credential chain. The secret key is the plan's password, never here. */
  accessKey?: string;
};

/** What a bucket backup records in its manifest. */
export type BucketFacts = {
  /** Format of the artifacts (data.tar + index.ndjson); see README "Buckets". */
  format: number;
  bucket: string;
  /** The key prefix backed up ('' or ending in '/'); index keys are relative to it. */
  prefix: string;
  /** Objects at the time of the backup (the index's object lines). */
  objects: number;
  /** Their bytes. */
  bytes: number;
  /** Objects whose bytes are in this backup's data.tar. */
  stored: number;
  /** Incrementals: objects unchanged since the parent (bytes in an older link). */
  unchanged: number;
  /** Incrementals: keys of the parent that are gone (listed in the index as deleted). */
  deleted: number;
  /** Objects listed but gone before they were read (not in the backup). */
  vanished: number;
  /**
   * Keys spread evenly over the object list (at most SPLIT_KEYS, in key order): where the next
   * incremental splits its listing into ranges listed at once.
   */
  splits?: string[];
};

export type BucketRestoreOptions = {
  endpoint: string;
  region: string;
  pathStyle: boolean;
  accessKey?: string;
  replace: boolean;
  /** Restore only these keys or folders of keys (relative to the backed-up prefix). */
  paths: string[];
};

/**
 * One line of index.ndjson. An object line: the key relative to the prefix, its size,
 * ETag, content type, user metadata, last-modified, and where its bytes are (`in`: the
 * backup whose data.tar holds them, left out for this backup; `offset`: where its tar entry starts in that tar,
 * uncompressed). A deletion line (incrementals): `{ key, deleted: true }`.
 */
export type IndexLine =
  | { key: string; size: number; etag: string; contentType?: string; metadata: Record<string, string>; lastModified: string; in?: string; offset: number; headers?: Record<string, string> }
  | { key: string; deleted: true };

export type BucketBackupRequest = BackupRequest<BucketSelection, BucketFacts>;
export type BucketBackupOutcome = BackupOutcome<BucketFacts>;
export type BucketRestoreRequest = RestoreRequest<BucketSelection, BucketFacts, BucketRestoreOptions>;
export type { Json };
