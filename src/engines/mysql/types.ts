// The MySQL engine's own types: its selection, its manifest facts, its restore options. Kept
// apart from descriptor.ts and the engine modules so both can use them without a cycle.
import type { BackupOutcome, BackupRequest, RestoreRequest, VerifyRequest } from '../types.js';
import type { ListSelection } from '../descriptor.js';
import type { MysqlFlavor } from './conn.js';
import type { BinlogFacts } from './dump.js';
import type { PhysicalToolKind, ServerIdentity } from './physical-files.js';

export interface LogicalBackupFacts {
  flavor: 'mariadb' | 'mysql';
  /** Databases in the dump, in dump order. */
  databases: string[];
  /**
   * Every table, view and sequence in the dump, as "db.name": read from the dump's sections
   * (guard mode stream), or from the tool's account of each table (mode edges).
   */
  tables: string[];
  views: string[];
  /** True when only some tables were dumped (then no routines/events). */
  tableSubset: boolean;
  routines: boolean;
  events: boolean;
  /** Binlog coordinates of the snapshot, when the server writes a binlog. */
  binlog?: { file: string; position: number; gtid?: string };
  /** Raw bytes of the SQL stream. */
  dumpBytes: number;
}


/** Facts a physical/incremental backup records in its manifest (read back by restore and by incrementals). */
export interface PhysicalBackupFacts {
  flavor: MysqlFlavor;
  /** 'full' for type physical, 'incremental' for type incremental. */
  backupKind: 'full' | 'incremental';
  /** mariabackup | xtrabackup: decides the tools of a restore. */
  tool: PhysicalToolKind;
  toolVersion: string;
  serverVersion: string;
  /**
   * LSN range from xtrabackup_checkpoints, as decimal strings (64-bit): `from` is 0 for a full
   * backup and the parent's `to` for an incremental; `to` is the checkpoint the backup starts
   * from (the next incremental's base), `last` the end of the copied redo log (the point in
   * time the prepared backup reflects).
   */
  lsn: { from: string; to: string; last: string };
  /** Binlog coordinates of the backup's point in time, when the server writes a binlog. */
  binlog?: BinlogFacts;
  /** Which server this is of (incrementals must continue on the same one). */
  server: ServerIdentity;
  /** [mysqld] settings of the backup's backup-my.cnf (page size, data file path...). */
  innodb: Record<string, string>;
  /** The backup tool's own id of this backup (xtrabackup_info uuid). */
  backupUuid?: string;
  /** The user the backup connected as (a started restore lets this user in). */
  user: string;
  /** Raw bytes of the xbstream, and the number of files in it. */
  streamBytes: number;
  /** Files in the stream; absent when only its start and end were inspected. */
  files?: number;
  /** The parent backup (incrementals). */
  parentId?: string;
}


/** Databases (empty with all=true: every database but the system schemas) and single db.table names. */
export type MysqlSelection = ListSelection;

/** The facts of a logical or a physical backup (which fields are there depends on the type). */
export type MysqlFacts = Partial<LogicalBackupFacts> & Partial<PhysicalBackupFacts>;

export interface MysqlRestoreOptions {
  /** Logical: restore only these tables (db.table) out of the backup. */
  tables?: string[];
  /** Logical: restore database SRC under the name DST (others are skipped when set). */
  renameDatabase?: { from: string; to: string };
  /** Logical: overwrite existing tables. */
  replace?: boolean;
  /** Physical: an empty (or missing) directory to become the new datadir. */
  toDatadir?: string;
  /** Physical: start a server on the restored datadir on this port. */
  start?: { port: number };
}

export type MysqlBackupRequest = BackupRequest<MysqlSelection, MysqlFacts>;
export type MysqlBackupOutcome = BackupOutcome<MysqlFacts>;
export type MysqlRestoreRequest = RestoreRequest<MysqlSelection, MysqlFacts, MysqlRestoreOptions>;
export type MysqlVerifyRequest = VerifyRequest<MysqlSelection, MysqlFacts>;

