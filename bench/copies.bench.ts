// Benchmark: copying a backup to another pool (issue 16). `npm run bench:copies`
// (BENCH_MB=1024 by default, BENCH_RUNS=3; BENCH_MB=64 BENCH_RUNS=1 for a quick proof).
//   1. local -> S3: `dbs backup copy` (streamed, sha256 checked in flight) vs `aws s3 cp` of the
//      same artifact file.
//   2. local -> S3 over https (the RGW's TLS endpoint, a certificate made for the run): the
//      same pair, each trusting the certificate (NODE_EXTRA_CA_CERTS, AWS_CA_BUNDLE).
//   3. S3 -> S3 on one endpoint: `dbs backup copy` (server-side CopyObject, the copy
//      checked by the server: ETag and size, or its SHA-256) vs download + upload (`aws s3 cp s3://.. - | aws s3 cp - s3://..`).
import { execa } from 'execa';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, it } from 'vitest';
import { startS3, type S3Server } from '../test/support/s3.js';
import { tempDir } from '../test/support/testbed.js';
import { AWS_CLI as AWS, report, save, timed, type Row, DBS } from './support.js';

const MB = Number(process.env.BENCH_MB ?? 1024);
// Room for the source and one copy (see drop(); objects take ~1.5x in memstore's RAM).
process.env.DBS_TEST_MEMSTORE_MB ??= String(Math.max(4096, 4 * MB));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = tempDir('bench');
const home = join(work, 'home');
const poolDir = join(work, 'pool');
const node = process.execPath;
let s3: S3Server;
let backupId = '';
let artifact = '';
let artifactKey = '';

const dbs = (args: string) => `DBS_HOME=${home} ${DBS} ${args}`;

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
  const bind = (name: string, where: string, endpoint = s3.endpoint) => `${dbs(`pool bind ${name} --type s3 --endpoint ${endpoint} ${where} --access-key ${s3.accessKey} --secret-key-env S3_SECRET`)}`;
  const cmds = [`mkdir -p ${home} ${poolDir}`, dbs(`pool bind local --type local --path ${poolDir}`), bind('s3src', '--prefix src'), dbs(`plan create b --source sqlite://${src} --pool local --compress none`)];
  // Every copy goes into a bucket of its own, removed right after it was timed (see drop()).
  const buckets: string[] = [];
  for (let r = 0; r < RUNS; r++) {
    for (const k of ['up', 'tls', 'ss']) buckets.push(`aws-${k}${r}`, `dbs-${k}${r}`);
    cmds.push(bind(`up${r}`, `--bucket dbs-up${r}`), bind(`ss${r}`, `--bucket dbs-ss${r}`), bind(`tls${r}`, `--bucket dbs-tls${r}`, s3.tlsEndpoint));
  }
  const raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
  for (const b of buckets) await raw.send(new CreateBucketCommand({ Bucket: b }));
  raw.destroy();
  await execa('bash', ['-c', cmds.join(' && ')], { env: { ...env, NODE_EXTRA_CA_CERTS: s3.caFile } });
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
  const aws = { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey, AWS_DEFAULT_REGION: s3.region, AWS_EC2_METADATA_DISABLED: 'true', AWS_CA_BUNDLE: s3.caFile };
  const ep = `--endpoint-url ${s3.endpoint}`;
  const tep = `--endpoint-url ${s3.tlsEndpoint}`;
  const awsVersion = (await execa(AWS, ['--version'])).stdout.trim();
  const up: Row[] = [
    { name: 'aws s3 cp FILE s3://.. (baseline)', samples: [] },
    { name: 'dbs backup copy ID --to S3 (streamed, sha256 checked)', samples: [] },
  ];
  const tls: Row[] = [
    { name: 'aws s3 cp FILE s3://.. over https (baseline)', samples: [] },
    { name: 'dbs backup copy ID --to S3 over https (streamed, sha256 checked; parts UNSIGNED-PAYLOAD + CRC32)', samples: [] },
  ];
  const ss: Row[] = [
    { name: 'download + upload: aws s3 cp s3://.. - piped into aws s3 cp - s3://.. (baseline)', samples: [] },
    { name: 'dbs backup copy ID --from-pool S3 --to S3 (server-side, checked by the server: same ETag and size)', samples: [] },
  ];
  const bytes = statSync(artifact).size;
  // memstore holds objects in RAM under a cap: each copy's bucket is removed once timed
  // (untimed), its data at once (--bypass-gc: a DeleteObject leaves the data to RGW's gc, and
  // `gc process --include-all` did not free all of it; the OSD filled up and every write hung),
  // so at 1 GB only the source and one copy are stored at any time.
  // A server-side copy shares the source's data (RGW counts references): --bypass-gc would
  // delete the source's data with it, so that bucket goes the gc's way (it holds no data of its own).
  const drop = async (bucket: string, shared = false) => {
    await execa('radosgw-admin', ['-c', join(s3.dataDir, 'ceph.conf'), '-n', 'client.rgw', 'bucket', 'rm', `--bucket=${bucket}`, '--purge-objects', ...(shared ? [] : ['--bypass-gc'])]);
    const perf = JSON.parse((await execa('ceph', ['--admin-daemon', join(s3.dataDir, 'run', 'osd.0.asok'), 'perf', 'dump'])).stdout) as { osd?: { stat_bytes_used?: number } };
    process.stdout.write(`after dropping ${bucket}: the OSD holds ${((perf.osd?.stat_bytes_used ?? 0) / 1e6).toFixed(0)} MB\n`);
  };
  for (let r = 0; r < RUNS; r++) {
    up[0]!.samples.push(await timed(`${AWS} ${ep} s3 cp --quiet ${artifact} s3://aws-up${r}/a`, aws));
    await drop(`aws-up${r}`);
    up[1]!.samples.push(await timed(dbs(`backup copy ${backupId} --to up${r}`)));
    await drop(`dbs-up${r}`);
    tls[0]!.samples.push(await timed(`${AWS} ${tep} s3 cp --quiet ${artifact} s3://aws-tls${r}/a`, aws));
    await drop(`aws-tls${r}`);
    tls[1]!.samples.push(await timed(dbs(`backup copy ${backupId} --to tls${r}`), { NODE_EXTRA_CA_CERTS: s3.caFile }));
    await drop(`dbs-tls${r}`);
    ss[0]!.samples.push(await timed(`${AWS} ${ep} s3 cp --quiet s3://dbs/src/${artifactKey} - | ${AWS} ${ep} s3 cp --quiet - s3://aws-ss${r}/a`, aws));
    await drop(`aws-ss${r}`);
    ss[1]!.samples.push(await timed(dbs(`backup copy ${backupId} --from-pool s3src --to ss${r}`)));
    await drop(`dbs-ss${r}`, true);
  }
  const notes = [
    `One artifact of ${(bytes / 1e6).toFixed(0)} MB (incompressible), Ceph RGW 16 on loopback (memstore), 2 cores, ${awsVersion}; ${process.env.BENCH_NOTE ?? 'other work may have run on the machine meanwhile'}.`,
    "Server-side: RGW 16 copies an object inside the cluster (0.05 s for 256 MB) and keeps its ETag; it has no SHA-256 checksums, so dbs takes the copy's ETag and size equal to the source's as the server's check (not read back; backup verify reads it).",
  ];
  save('copies', [report('Copy a backup: local -> S3', up, up[0]!.name, bytes, notes), report('Copy a backup: local -> S3 over https', tls, tls[0]!.name, bytes, notes), report('Copy a backup: S3 -> S3 on one endpoint', ss, ss[0]!.name, bytes, notes)].join('\n\n'));
});
