// One round trip per fixture (fixtures/index.ts) through every pipeline execution, into a
// local and an S3 pool: make data, `dbs plan create` + `dbs plan run` (a chained type runs
// its chain), restore into a fresh target with `dbs backup restore`, compare the DATA.
// Each backup must have used the execution DBS_EXECUTION forced (expectExecution).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs, type CliResult } from '../support/cli.js';
import { servers, tempDir, testbed, type ServerName } from '../support/testbed.js';
import { CELLS, expectExecution } from './execution.js';
import type { RestoreResult, Source } from './fixture.js';
import { FIXTURES } from './fixtures/index.js';

const needs: ServerName[] = [...new Set<ServerName>(['s3', ...FIXTURES.flatMap((f) => f.needs)])];
let home: string;
const env = (): Record<string, string> => ({ S3_SECRET: testbed().s3.secretKey });

beforeAll(async () => {
  await servers(...needs);
  home = tempDir('rt-home');
  const s3 = testbed().s3;
  const binds = [
    ['pool', 'bind', 'local', '--type', 'local', '--path', tempDir('rt-pool')],
    ['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `rt-${randomBytes(3).toString('hex')}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'],
  ];
  for (const args of binds) {
    const r = await dbs(args, { home, env: env() });
    expect(r.code, r.stderr).toBe(0);
  }
});

for (const fixture of FIXTURES) {
  describe(fixture.title, () => {
    let source: Source | undefined;
    beforeAll(async () => {
      source = await fixture.setup();
    });
    afterAll(async () => {
      await source?.teardown();
    });

    for (const { pool, execution } of CELLS.filter((c) => !fixture.executions || fixture.executions.includes(c.execution))) {
      it(`${pool} pool, execution ${execution}: the restored data equals the source's`, async () => {
        const src = source as Source;
        const cell = `${pool}_${execution}`;
        const o = { home, env: { ...env(), ...src.env, DBS_EXECUTION: execution } };
        const cli = async (args: string[]): Promise<CliResult> => {
          const r = await dbs(args, o);
          expect(r.code, `dbs ${args.join(' ')}\n${r.stderr}`).toBe(0);
          return r;
        };

        const plan = `${fixture.id}-${cell}`;
        await cli(['plan', 'create', plan, '--pool', pool, '--compress', 'zstd', ...src.plan]);
        let backupId = String((await cli(['--json', 'plan', 'run', plan])).json().backup.id);
        await expectExecution(backupId, execution, o);
        if (src.chain) {
          await src.chain.change(cell);
          await cli(['plan', 'create', `${plan}-next`, ...src.chain.plan(plan)]);
          const next = (await cli(['--json', 'plan', 'run', `${plan}-next`])).json().backup;
          expect(next.parentId).toBe(backupId);
          backupId = String(next.id);
          await expectExecution(backupId, execution, o);
        }
        const expected = await src.facts();

        const target = await src.target(cell);
        let result: RestoreResult | undefined;
        try {
          result = (await cli(['--json', 'backup', 'restore', backupId, ...target.args])).json<RestoreResult>();
          expect(result['status']).toBe('succeeded');
          expect(await target.facts(result)).toEqual(expected);
        } finally {
          await target.cleanup?.(result);
        }
      });
    }
  });
}
