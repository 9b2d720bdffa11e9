// What a round-trip fixture is. One fixture per engine and backup type (fixtures/*.ts),
// registered in fixtures/index.ts; roundtrip.test.ts runs every fixture through every
// pipeline execution into a local and an S3 pool and compares the DATA it restores.
//
// A fixture makes a small, fresh source of its own (its own database, keyspace, file or
// private server), says how to create a plan for it, how to change it between the links of
// a chain, how to read its data in a comparable form, and how to restore into a fresh
// target and read that target's data. The suite does the rest with the real CLI.

import type { ServerName } from '../support/types.js';

/** A value of the data, compared with toEqual: counts, checksums, hashes, keys, TTLs. */
export type Facts = Record<string, unknown>;

/** What `dbs --json backup restore` printed (parsed). */
export type RestoreResult = Record<string, any>;

/** A fresh restore target for one cell of the matrix. */
export interface Target {
  /** Flags for `dbs backup restore <id> ...` (the target and its options). */
  args: string[];
  /** The target's data after the restore, read the same way as Source.facts(). */
  facts(result: RestoreResult): Promise<Facts>;
  /** Stop or remove what the target started (a server on the restored datadir...). */
  cleanup?(result: RestoreResult | undefined): Promise<void>;
}

export interface Source {
  /** `dbs plan create` flags besides the name, --pool and --compress: --source, --type, selection. */
  plan: string[];
  /** Environment the CLI needs for this source (e.g. the password variable). */
  env?: Record<string, string>;
  /**
   * A chained backup type: after the first backup, `change()` the source, create the
   * chained plan (`plan(basePlan)` gives its flags besides the name), run it, and restore
   * the last link. Absent: one backup is restored.
   */
  chain?: { plan(basePlan: string): string[]; change(step: string): Promise<void> };
  /** The source's data now. */
  facts(): Promise<Facts>;
  /** A fresh, empty target for the cell `cell` (unique per run: name it after it). */
  target(cell: string): Promise<Target>;
  /** Remove the source (after every cell ran). */
  teardown(): Promise<void>;
}

export interface Fixture {
  /** Short id, used in plan names: `mysql-logical`. */
  id: string;
  /** What the suite shows: `mysql logical`. */
  title: string;
  /** Shared servers of the run it needs (testbed.ts servers()). */
  needs: ServerName[];
  /** The executions its backups can run (default: all); the other cells are not run for it. */
  executions?: readonly ('node' | 'programs' | 'file')[];
  /** Its increments read the parent's artifacts (a tree index): an encrypted chain is refused at plan create. */
  plainChainOnly?: boolean;
  /** Make the source's data (small: the whole suite stays around a minute and a half). */
  setup(): Promise<Source>;
}
