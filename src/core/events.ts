// What core tells the user, as data: use cases report typed events (and ask typed questions)
// through their context; the commands decide how each is shown (src/commands/report.ts) and
// who answers. Nothing here knows a terminal, --json or --quiet.
import type { RecoveryEvent } from './recovery.js';

/** Something a use case did or noticed. Commands render it; nothing below them prints. */
export type CoreEvent =
  /** Opening the catalog found the dbs home readable by others and tightened its mode. */
  | { type: 'home.tightened'; home: string; from: number; to: number }
  /** `plan delete --with-backups`: one backup of the plan is gone. */
  | { type: 'backup.deleted'; backup: string }
  /** A restore or verify reads a replica copy: the primary's pool is offline. */
  | { type: 'copy.fallback'; backup: string; pool: string; offline: string; reason: string }
  /** A plan run copied (or failed to copy) a backup to a replica pool. */
  | { type: 'copy.done'; backup: string; pool: string; status: 'ready' | 'failed'; error?: string }
  /** A plan run found its pool offline and wrote to its standby pool. */
  | { type: 'pool.failover'; plan: string; from: string; to: string; reason: string }
  /** An incremental run takes a full backup instead (--auto-full): no chain to extend in its pool. */
  | { type: 'backup.auto-full'; plan: string; pool: string; reason: string }
  /** A plan run found its pool back after backups went to the standby. */
  | { type: 'pool.failback'; plan: string; from: string; to: string }
  /** A line a restore tool printed (secrets already redacted). */
  | { type: 'restore.tool-output'; line: string }
  /** Cleanup of what dead processes left (plan run --due; the daemon logs these itself). */
  | { type: 'recovery'; event: RecoveryEvent }
  /** An alert started or stopped firing after a task; `failed`: targets its notification did not reach. */
  | { type: 'alert.transition'; alert: string; plan: string; to: 'firing' | 'resolved'; delivered: number; failed: string[] }
  | { type: 'quickstart.pool'; name: string; id: string; path: string; created: boolean }
  | { type: 'quickstart.database'; path: string; created: boolean }
  | { type: 'quickstart.plan'; name: string; id: string; created: boolean }
  | { type: 'quickstart.backup'; backup: string; rawBytes: number; storedBytes: number }
  | { type: 'quickstart.listed'; plan: string; backups: number }
  | { type: 'quickstart.restored'; path: string }
  | { type: 'quickstart.checked'; tables: { table: string; rows: number }[] };

export type Report = (e: CoreEvent) => void;

/** A yes/no decision core needs from whoever runs it (a command asks the user). */
export type Question =
  /** Restoring into the very server or file the backup was taken from, under the same names. */
  { type: 'restore.over-source'; backup: string; target: string };

/** Answers a question; false when nobody can be asked. */
export type Decide = (q: Question) => Promise<boolean>;
