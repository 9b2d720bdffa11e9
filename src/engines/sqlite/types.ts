// The SQLite engine's own types: its selection, its manifest facts, its restore options. Kept
// apart from descriptor.ts and the engine module so both can use them without a cycle.
import type { ListSelection } from '../descriptor.js';
import type { BackupOutcome, BackupRequest, Json, RestoreRequest, VerifyRequest } from '../types.js';

/** Always the whole database. */
export type SqliteSelection = ListSelection;
/** Page size and count, row counts per table, the quick_check result. */
export type SqliteFacts = Json;

export interface SqliteRestoreOptions {
  /** Replace an existing file (--replace, or --yes for a file target). */
  replace?: boolean;
}

export type SqliteBackupRequest = BackupRequest<SqliteSelection, SqliteFacts>;
export type SqliteBackupOutcome = BackupOutcome<SqliteFacts>;
export type SqliteRestoreRequest = RestoreRequest<SqliteSelection, SqliteFacts, SqliteRestoreOptions>;
export type SqliteVerifyRequest = VerifyRequest<SqliteSelection, SqliteFacts>;
