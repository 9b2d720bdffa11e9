// The directory engine's own types: its selection, its manifest facts, its restore options, and
// the records of its index artifact. Kept apart from descriptor.ts and the engine modules so
// both can use them without a cycle.
import type { BackupOutcome, BackupRequest, Json, RestoreRequest } from '../types.js';

export interface DirSelection extends Json {
  /** Globs: only paths matching one (or under a match) are taken; empty: everything. */
  include: string[];
  /** Globs: paths matching one are left out (a directory with its whole subtree). */
  exclude: string[];
  oneFileSystem: boolean;
  skipUnreadable: boolean;
}

/** Counts of what the backup holds and met. */
export interface DirFacts extends Json {
  entries?: number;
  files?: number;
  dirs?: number;
  symlinks?: number;
  hardlinks?: number;
  /** Content bytes of the regular files in the tree. */
  bytes?: number;
  /** Entries written into this backup's tar (an incremental: the changed ones). */
  written?: number;
  unchanged?: number;
  deleted?: number;
  /** Files whose size or mtime changed while they were read. */
  changed?: number;
  vanished?: number;
  unreadable?: number;
  /** Sockets, fifos and devices: not backed up. */
  skipped?: number;
}

export interface DirRestoreOptions {
  replace: boolean;
  /** Only these paths (a file, or a directory with its subtree); empty: the whole tree. */
  paths: string[];
}

export type DirBackupRequest = BackupRequest<DirSelection, DirFacts>;
export type DirBackupOutcome = BackupOutcome<DirFacts>;
export type DirRestoreRequest = RestoreRequest<DirSelection, DirFacts, DirRestoreOptions>;

/** An entry type in the index: file, dir, symlink, hard link. */
export type IndexType = 'file' | 'dir' | 'symlink' | 'hardlink';

/**
 * One line of index.jsonl: an entry of the tree at this backup. `path` is the UTF-8 path
 * relative to the root (or `path64`, base64 of its bytes, when it is not UTF-8); `link` (or
 * `link64`) the symlink's target or the hard link's first path. `offset` is where its headers
 * start in the raw tar of backup `in` (this backup when absent), `span` the bytes of its
 * headers, data and padding.
 */
export interface IndexEntry {
  type: IndexType;
  path?: string;
  path64?: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** "SECONDS.NANOSECONDS" */
  mtime: string;
  ino: number;
  link?: string;
  link64?: string;
  sha256?: string;
  offset: number;
  span: number;
  in?: string;
}
