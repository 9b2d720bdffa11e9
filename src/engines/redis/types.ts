// The Redis engine's own types: its selection, its manifest facts, its restore options. Kept
// apart from descriptor.ts and the engine modules so both can use them without a cycle.
import type { ListSelection } from '../descriptor.js';
import type { BackupOutcome, BackupRequest, Json, RestoreRequest, VerifyRequest } from '../types.js';

/** Database indexes (empty with all=true: every database) and a key pattern; `tables` stays empty. */
export type RedisSelection = ListSelection & { match?: string };

/** Key counts per database, the RDB version, the TTL mode... (read defensively by the engine). */
export type RedisFacts = Json;

export interface RedisRestoreOptions {
  /** Overwrite existing keys (logical) or an existing dump.rdb (snapshot). */
  replace?: boolean;
  /** Logical: flush the target database(s) first. */
  flush?: boolean;
  /** Snapshot: the directory to write dump.rdb into. */
  toPath?: string;
}

export type RedisBackupRequest = BackupRequest<RedisSelection, RedisFacts>;
export type RedisBackupOutcome = BackupOutcome<RedisFacts>;
export type RedisRestoreRequest = RestoreRequest<RedisSelection, RedisFacts, RedisRestoreOptions>;
export type RedisVerifyRequest = VerifyRequest<RedisSelection, RedisFacts>;
