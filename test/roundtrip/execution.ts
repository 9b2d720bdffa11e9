// The pipeline executions the data path can choose, and the one check that a forced
// execution was really used.
//
// DBS_EXECUTION forces the execution (it must win over what is on PATH):
//   node      every stage in Node (compression in node:zlib)
//   programs  compression by an external program (zstd/pzstd reading the tool's pipe)
//   file      the program writes straight into the pool file (local pools only)

import { expect } from 'vitest';
import { dbs } from '../support/cli.js';

export type Execution = 'node' | 'programs' | 'file';
export type PoolKind = 'local' | 's3';

/** The matrix: local × {node, programs, file}, s3 × {node, programs}. */
export const CELLS: ReadonlyArray<{ pool: PoolKind; execution: Execution }> = [
  { pool: 'local', execution: 'node' },
  { pool: 'local', execution: 'programs' },
  { pool: 'local', execution: 'file' },
  { pool: 's3', execution: 'node' },
  { pool: 's3', execution: 'programs' },
];

/**
 * THE execution assertion: `dbs --json backup show <id>` reports `pipeline.execution`, and it
 * is the execution that DBS_EXECUTION forced. A soft assertion: when it fails, the test fails
 * but still restores and compares the data, so a data-path bug is not hidden behind it.
 */
export async function expectExecution(backupId: string, forced: Execution, o: { home: string; env: NodeJS.ProcessEnv }): Promise<void> {
  const show = await dbs(['--json', 'backup', 'show', backupId], o);
  expect(show.code, show.stderr).toBe(0);
  const execution: unknown = show.json<{ pipeline?: { execution?: unknown } }>().pipeline?.execution;
  expect.soft(execution, `backup ${backupId}: pipeline.execution in \`dbs --json backup show\` (DBS_EXECUTION=${forced})`).toBe(forced);
}
