// Encrypted round trips: every fixture (fixtures/index.ts) backed up with --encrypt-to into a
// local pool (the planner's own execution: programs with the encryption in Node after them)
// and an S3 pool (execution node), restored with --identity-file (and DBS_IDENTITY_FILE), the
// DATA compared. Each stored artifact is an age file (`.age`, header `age-encryption.org/v1`),
// the manifest names the recipient and no private key; `dbs backup verify` checks the stored
// bytes without a key.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs, type CliResult } from '../support/cli.js';
import { servers, tempDir, testbed, type ServerName } from '../support/testbed.js';
import type { RestoreResult, Source } from './fixture.js';
import { FIXTURES } from './fixtures/index.js';

const needs: ServerName[] = [...new Set<ServerName>(['s3', ...FIXTURES.flatMap((f) => f.needs)])];
let home: string;
let localPool: string;
let key: { file: string; recipient: string; secret: string };
const env = (): Record<string, string> => ({ S3_SECRET: testbed().s3.secretKey });

const CELLS = [
  { pool: 'local', execution: undefined },
  { pool: 's3', execution: 'node' },
] as const;

beforeAll(async () => {
  await servers(...needs);
  home = tempDir('rt-age-home');
  localPool = tempDir('rt-age-pool');
  const dir = tempDir('rt-age-key');
  const file = join(dir, 'key.txt');
  await execa('age-keygen', ['-o', file]);
  const recipient = (await execa('age-keygen', ['-y', file])).stdout.trim();
  key = { file, recipient, secret: readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))! };
  const s3 = testbed().s3;
  const binds = [
    ['pool', 'bind', 'local', '--type', 'local', '--path', localPool],
    ['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `rt-age-${randomBytes(3).toString('hex')}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'],
  ];
  for (const args of binds) {
    const r = await dbs(args, { home, env: env() });
    expect(r.code, r.stderr).toBe(0);
  }
});

for (const fixture of FIXTURES) {
  describe(`${fixture.title}, encrypted`, () => {
    let source: Source | undefined;
    beforeAll(async () => {
      source = await fixture.setup();
    });
    afterAll(async () => {
      await source?.teardown();
    });

    for (const { pool, execution } of CELLS) {
      it(`${pool} pool, execution ${execution ?? 'default'}: age artifacts, the restored data equals the source's`, async () => {
        const src = source as Source;
        const cell = `age_${pool}`;
        const o = { home, env: { ...env(), ...src.env, ...(execution ? { DBS_EXECUTION: execution } : {}) } };
        const cli = async (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => {
          const r = await dbs(args, { ...o, env: { ...o.env, ...extra } });
          expect(r.code, `dbs ${args.join(' ')}\n${r.stderr}`).toBe(0);
          return r;
        };
        const plan = `${fixture.id}-${cell}`;
        await cli(['plan', 'create', plan, '--pool', pool, '--compress', 'zstd', '--encrypt-to', key.recipient, ...src.plan]);
        let backupId = String((await cli(['--json', 'plan', 'run', plan])).json().backup.id);
        const ids = [backupId];
        if (src.chain && fixture.plainChainOnly) {
          // Its increments read the parent's index: the backup host holds no key to read it.
          const r = await dbs(['plan', 'create', `${plan}-next`, ...src.chain.plan(plan)], o);
          expect(r.code, r.stderr).toBe(2);
          expect(r.stderr).toMatch(/reads its parent's index .* holds no private key/);
          expect((await dbs(['--json', 'plan', 'list'], o)).json().map((p: { name: string }) => p.name)).not.toContain(`${plan}-next`);
        } else if (src.chain) {
          await src.chain.change(cell);
          // No --encrypt-to: the chained plan encrypts to its base plan's recipients.
          await cli(['plan', 'create', `${plan}-next`, ...src.chain.plan(plan)]);
          backupId = String((await cli(['--json', 'plan', 'run', `${plan}-next`])).json().backup.id);
          ids.push(backupId);
        }
        for (const id of ids) {
          const m = (await cli(['--json', 'backup', 'show', id])).json();
          expect(m.encryption).toEqual({ format: 'age', recipients: [key.recipient] });
          expect(JSON.stringify(m)).not.toContain('AGE-SECRET-KEY');
          // The manifest is plaintext: no data in its facts (a bucket's split keys are object keys).
          expect(m.facts).not.toHaveProperty('splits');
          // Unforced, encryption makes the planner choose programs (the file execution cannot encrypt).
          // (A fixture whose artifacts run in Node only, framed for ranged reads, runs node.)
          // A bucket's index (a few KB here) is a small stream, compressed in Node (ArtifactWriteOptions.small).
          if (execution) expect(m.pipeline.execution).toBe(execution);
          else if (!fixture.executions) for (const a of m.artifacts) expect(a.execution, a.name).toBe(a.name.startsWith('index.ndjson') ? 'node' : 'programs');
          else expect(m.pipeline.execution).toMatch(/^node/); // its tree in Node (framed), its index as programs
          for (const a of m.artifacts) {
            expect(a.name).toMatch(/\.age$/);
            expect(a.encryption).toEqual({ format: 'age', recipients: [key.recipient] });
            expect(a.stages).toEqual([expect.stringMatching(/^compress:zstd-1(-framed)?$/), 'encrypt:age', 'sha256']);
            if (pool === 'local') expect(readFileSync(join(localPool, a.key)).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
          }
          // The stored bytes are checked without a key.
          const v = await cli(['--json', 'backup', 'verify', id]);
          expect(v.json().ok).toBe(true);
        }
        const expected = await src.facts();
        const target = await src.target(cell);
        let result: RestoreResult | undefined;
        try {
          // The local cell names the file by the environment, the S3 one by the flag.
          const byEnv = pool === 'local';
          result = (await cli(['--json', 'backup', 'restore', backupId, ...target.args, ...(byEnv ? [] : ['--identity-file', key.file])], byEnv ? { DBS_IDENTITY_FILE: key.file } : {})).json<RestoreResult>();
          expect(result['status']).toBe('succeeded');
          expect(await target.facts(result)).toEqual(expected);
        } finally {
          await target.cleanup?.(result);
        }
      });
    }
  });
}
