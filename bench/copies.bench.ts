// Benchmark: copying a backup to another pool (issue 16). `npm run bench:copies`
// (BENCH_MB=1024 by default, BENCH_RUNS=3; BENCH_MB=64 BENCH_RUNS=1 for a quick proof).
//   1. local -> S3: `dbs backup copy` (streamed, sha256 checked in flight) vs `aws s3 cp` of the
//      same artifact file.
//   2. S3 -> S3 on one endpoint: `dbs backup copy` (server-side CopyObject, the copy
//      checked by the server: ETag and size, or its SHA-256) vs download + upload (`aws s3 cp s3://.. - | aws s3 cp - s3://..`).
import { execa } from 'execa';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, it } from 'vitest';
import { startS3, type S3Server } from '../test/support/s3.js';
import { tempDir } from '../test/support/testbed.js';
import { report, save, timed, type Row } from './support.js';

const MB = Number(process.env.BENCH_MB ?? 1024);
// Room for the source, one copy and RGW's garbage collection lag (objects take ~1.6x in memstore).
process.env.DBS_TEST_MEMSTORE_MB ??= String(Math.max(4096, 10 * MB));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = tempDir('bench');
const home = join(work, 'home');
const poolDir = join(work, 'pool');
const bin = new URL('../bin/dbs.js', import.meta.url).pathname;
const node = process.execPath;
let s3: S3Server;
let backupId = '';
let artifact = '';
let artifactKey = '';

const dbs = (args: string) => `DBS_HOME=${home} ${node} ${bin} ${args}`;

beforeAll(async () => {
  s3 = await startS3();
  // Random bytes do not compress: the artifact is about MB megabytes.
  const src = join(work, 'src.db');
  const db = new Database(src);
  db.exec('CREATE TABLE t (b BLOB)');
  const ins = db.prepare('INSERT INTO t VALUES (randomblob(1048576))');
  db.transaction(() => {
    for (let i = 0; i < MB; i++) ins.run();
  })();
  db.close();
  const env = { ...process.env, S3_SECRET: s3.secretKey };
  const bind = (name: string, prefix: string) => `${dbs(`pool bind ${name} --type s3 --endpoint ${s3.endpoint} --prefix ${prefix} --access-key ${s3.accessKey} --secret-key-env S3_SECRET`)}`;
  const cmds = [`mkdir -p ${home} ${poolDir}`, dbs(`pool bind local --type local --path ${poolDir}`), bind('s3src', 'src'), dbs(`plan create b --source sqlite://${src} --pool local --compress none`)];
  for (let r = 0; r < RUNS; r++) cmds.push(bind(`up${r}`, `up${r}`), bind(`ss${r}`, `ss${r}`));
  await execa('bash', ['-c', cmds.join(' && ')], { env });
  const run = await execa('bash', ['-c', dbs('--json plan run b')], { env });
  backupId = JSON.parse(run.stdout).backup.id;
  await execa('bash', ['-c', dbs(`backup copy ${backupId} --to s3src`)], { env });
  const planDir = join(poolDir, 'dbs', 'backups');
  const planId = readdirSync(planDir)[0]!;
  const dir = join(planDir, planId, backupId);
  const name = readdirSync(dir).find((f) => f !== 'manifest.json')!;
  artifact = join(dir, name);
  artifactKey = `dbs/backups/${planId}/${backupId}/${name}`;
}, 1800_000);

afterAll(async () => {
  await s3?.stop();
});

it('copies: local -> S3 and S3 -> S3', async () => {
  const aws = { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey, AWS_DEFAULT_REGION: s3.region, AWS_EC2_METADATA_DISABLED: 'true' };
  const ep = `--endpoint-url ${s3.endpoint}`;
  await execa('bash', ['-c', `aws ${ep} s3 mb s3://awsbench || true`], { env: { ...process.env, ...aws } });
  const up: Row[] = [
    { name: 'aws s3 cp FILE s3://.. (baseline)', samples: [] },
    { name: 'dbs backup copy ID --to S3 (streamed, sha256 checked)', samples: [] },
  ];
  const ss: Row[] = [
    { name: 'download + upload: aws s3 cp s3://.. - piped into aws s3 cp - s3://.. (baseline)', samples: [] },
    { name: 'dbs backup copy ID --from-pool S3 --to S3 (server-side, checked by the server: same ETag and size)', samples: [] },
  ];
  const bytes = statSync(artifact).size;
  // memstore holds objects in RAM under a 4 GiB cap: each copy is removed once timed (untimed),
  // so at 1 GB only the source and one copy are stored at any time.
  const drop = async (url: string) => {
    await execa('bash', ['-c', `aws ${ep} s3 rm --quiet --recursive ${url}`], { env: { ...process.env, ...aws } });
    await new Promise((r) => setTimeout(r, 5000)); // RGW's gc frees the space ~4 s after a delete
  };
  for (let r = 0; r < RUNS; r++) {
    up[0]!.samples.push(await timed(`aws ${ep} s3 cp --quiet ${artifact} s3://awsbench/up${r}`, aws));
    await drop(`s3://awsbench/up${r}`);
    up[1]!.samples.push(await timed(dbs(`backup copy ${backupId} --to up${r}`)));
    await drop(`s3://dbs/up${r}/dbs/backups/`);
    ss[0]!.samples.push(await timed(`aws ${ep} s3 cp --quiet s3://dbs/src/${artifactKey} - | aws ${ep} s3 cp --quiet - s3://awsbench/ss${r}`, aws));
    await drop(`s3://awsbench/ss${r}`);
    ss[1]!.samples.push(await timed(dbs(`backup copy ${backupId} --from-pool s3src --to ss${r}`)));
    await drop(`s3://dbs/ss${r}/dbs/backups/`);
  }
  const notes = [
    `One artifact of ${(bytes / 1e6).toFixed(0)} MB (incompressible), Ceph RGW 16 on loopback (memstore), 2 cores; ${process.env.BENCH_NOTE ?? 'other work may have run on the machine meanwhile'}.`,
    "Server-side: RGW 16 copies an object inside the cluster (0.05 s for 256 MB) and keeps its ETag; it has no SHA-256 checksums, so dbs takes the copy's ETag and size equal to the source's as the server's check (not read back; backup verify reads it).",
  ];
  save('copies', [report('Copy a backup: local -> S3', up, up[0]!.name, bytes, notes), report('Copy a backup: S3 -> S3 on one endpoint', ss, ss[0]!.name, bytes, notes)].join('\n\n'));
});
