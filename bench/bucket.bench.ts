// Benchmark: dbs bucket backups against `aws s3 sync` of the same bucket to a local directory
// (awscli configured through env vars), and an incremental with 1% of the objects changed
// against the time to just list the bucket; then the peak RSS of a snapshot and an incremental
// of a bucket with many objects (streamed listing, scratch SQLite: memory must stay flat).
// `npm run bench:bucket`; BENCH_OBJECTS (10000), BENCH_RSS_OBJECTS (100000), BENCH_RUNS (3).
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, it } from 'vitest';
import { makeBucket, putAll, type Obj } from '../test/support/buckets.js';
import { startS3, type S3Server } from '../test/support/s3.js';
import { tempDir } from '../test/support/testbed.js';
import { S3Client } from '@aws-sdk/client-s3';
import { AWS_CLI, median, report, save, timed, type Row, DBS } from './support.js';

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 10_000);
const RSS_OBJECTS = Number(process.env.BENCH_RSS_OBJECTS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
let s3srv: S3Server;
let s3: S3Client;
const work = tempDir('bench');
const home = join(work, 'home');
const bin = new URL('../bin/dbs.js', import.meta.url).pathname;
const node = process.execPath;
const BUCKET = 'bench-src';
const BIG = 'bench-many';

/** Mixed sizes (1 KiB .. 64 KiB, a few of 1-4 MiB), half of them compressible. */
function objects(n: number, prefix: string): Obj[] {
  return Array.from({ length: n }, (_, i) => {
    const size = i % 500 === 0 ? (1 + (i % 4)) * 1024 * 1024 : 1024 + ((i * 7919) % (63 * 1024));
    const body = i % 2 ? randomBytes(size) : Buffer.from('log line with some repeated text '.repeat(Math.ceil(size / 33)).slice(0, size));
    return { key: `${prefix}${String(i % 100).padStart(2, '0')}/obj-${i}.dat`, body, contentType: i % 2 ? 'application/octet-stream' : 'text/plain', metadata: { n: String(i) } };
  });
}

function dbsEnv(): NodeJS.ProcessEnv {
  return { DBS_HOME: home, S3_SECRET: s3srv.secretKey };
}

const awsEnv = (): NodeJS.ProcessEnv => ({ AWS_ACCESS_KEY_ID: s3srv.accessKey, AWS_SECRET_ACCESS_KEY: s3srv.secretKey, AWS_DEFAULT_REGION: s3srv.region, AWS_EC2_METADATA_DISABLED: 'true' });

/** The floor of an incremental: a Node process that lists every key with the SDK and nothing else. */
const LIST_SCRIPT = `
const { S3Client, ListObjectsV2Command } = require('@aws-sdk/client-s3');
const c = new S3Client({ endpoint: process.env.EP, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY } });
(async () => { let t, n = 0; do { const r = await c.send(new ListObjectsV2Command({ Bucket: process.env.B, ContinuationToken: t, MaxKeys: 1000 })); n += (r.Contents || []).length; t = r.IsTruncated ? r.NextContinuationToken : undefined; } while (t); console.log(n); })();
`;

beforeAll(async () => {
  s3srv = await startS3();
  s3 = new S3Client({ endpoint: s3srv.endpoint, region: s3srv.region, forcePathStyle: true, credentials: { accessKeyId: s3srv.accessKey, secretAccessKey: s3srv.secretKey } });
  await makeBucket(s3, BUCKET);
  for (let i = 0; i < OBJECTS; i += 1000) await putAll(s3, BUCKET, objects(Math.min(1000, OBJECTS - i), '').map((o, j) => ({ ...o, key: `${String((i + j) % 100).padStart(2, '0')}/obj-${i + j}.dat` })), 32);
  mkdirSync(home, { recursive: true });
  const keys = `--endpoint ${s3srv.endpoint} --access-key ${s3srv.accessKey} --secret-key-env S3_SECRET`;
  await execa('bash', ['-c', `${DBS} pool bind local --type local --path ${work} && ${DBS} plan create snap --source s3://${BUCKET} --pool local ${keys} && ${DBS} plan create inc --type incremental --base-plan snap`], { env: { ...process.env, ...dbsEnv() } });
}, 3600_000);

afterAll(async () => {
  s3?.destroy();
  await s3srv?.stop();
});

it('bucket snapshot vs aws s3 sync; incremental vs listing; RSS at many objects', async () => {
  const rows: Row[] = [
    { name: 'aws s3 sync s3://bucket DIR (baseline)', samples: [] },
    { name: 'dbs plan run, snapshot (list + GET -> pax tar + zstd)', samples: [] },
    { name: 'list only (node + SDK ListObjectsV2, the floor of an incremental)', samples: [] },
    { name: 'dbs plan run, incremental (1% of the objects changed)', samples: [] },
  ];
  const listScript = join(work, 'list.cjs');
  writeFileSync(listScript, LIST_SCRIPT);
  const listEnv = { ...awsEnv(), EP: s3srv.endpoint, B: BUCKET, NODE_PATH: new URL('../node_modules', import.meta.url).pathname };
  for (let r = 0; r < RUNS; r++) {
    const dir = join(work, `sync-${r}`);
    rows[0].samples.push(await timed(`${AWS_CLI} s3 sync --only-show-errors --endpoint-url ${s3srv.endpoint} s3://${BUCKET} ${dir}`, awsEnv()));
    rmSync(dir, { recursive: true, force: true });
    rows[1].samples.push(await timed(`${DBS} plan run snap >/dev/null`, dbsEnv()));
    // 1% changed since the newest backup of the chain (the snapshot just taken, or the last incremental).
    const changed = objects(Math.ceil(OBJECTS / 100), '').map((o, j) => ({ ...o, key: `${String((j * 100 + r) % 100).padStart(2, '0')}/obj-${(j * 100 + r) % OBJECTS}.dat` }));
    await putAll(s3, BUCKET, changed, 32);
    rows[2].samples.push(await timed(`${node} ${listScript} >/dev/null`, listEnv));
    rows[3].samples.push(await timed(`${DBS} plan run inc >/dev/null`, dbsEnv()));
  }
  const last = JSON.parse((await execa(node, [bin, '--json', 'backup', 'list', '--plan', 'snap'], { env: { ...process.env, ...dbsEnv() } })).stdout)[0];
  const inc = JSON.parse((await execa(node, [bin, '--json', 'backup', 'list', '--plan', 'inc'], { env: { ...process.env, ...dbsEnv() } })).stdout)[0];
  rows[1].bytes = last.storedBytes;
  const listS = median(rows[2].samples.map((s) => s.seconds));
  const incS = median(rows[3].samples.map((s) => s.seconds));
  let text = report(`S3 bucket, ${OBJECTS.toLocaleString('en')} objects`, rows, 'aws s3 sync s3://bucket DIR (baseline)', last.rawBytes, [
    `Incremental / listing: ${(incS / listS).toFixed(2)} (target <= 1.20). The incremental read ${inc.rawBytes} raw bytes.`,
    `Both sides run on the same 2-core machine as the S3 server (Ceph RGW, memstore): ratios, not absolute speeds. ${(await execa(AWS_CLI, ['--version'])).stdout.trim()}; ${process.env.BENCH_NOTE ?? 'other work may have run on the machine meanwhile'}.`,
  ]);

  // Peak RSS with many objects: tiny objects, so the listing and the index dominate.
  await makeBucket(s3, BIG);
  for (let i = 0; i < RSS_OBJECTS; i += 2000) {
    const n = Math.min(2000, RSS_OBJECTS - i);
    await putAll(s3, BIG, Array.from({ length: n }, (_, j) => ({ key: `k/${String(i + j).padStart(8, '0')}`, body: Buffer.from(`object ${i + j}`), metadata: { i: String(i + j) } })), 64);
  }
  await execa('bash', ['-c', `${DBS} plan create many --source s3://${BIG} --pool local --endpoint ${s3srv.endpoint} --access-key ${s3srv.accessKey} --secret-key-env S3_SECRET && ${DBS} plan create many-inc --type incremental --base-plan many`], { env: { ...process.env, ...dbsEnv() } });
  const rss: Row[] = [{ name: `dbs plan run, snapshot of ${RSS_OBJECTS.toLocaleString('en')} objects`, samples: [await timed(`${DBS} plan run many >/dev/null`, dbsEnv())] }];
  rss.push({ name: `dbs plan run, incremental of ${RSS_OBJECTS.toLocaleString('en')} objects (none changed)`, samples: [await timed(`${DBS} plan run many-inc >/dev/null`, dbsEnv())] });
  // Where the listing is most of the work: 1% changed, the listing alone, then the incremental.
  const changedMany = Array.from({ length: Math.ceil(RSS_OBJECTS / 100) }, (_, j) => ({ key: `k/${String(j * 100 + 7).padStart(8, '0')}`, body: Buffer.from(`changed ${j}`), metadata: { i: String(j * 100 + 7) } }));
  await putAll(s3, BIG, changedMany, 64);
  rss.push({ name: `list only, ${RSS_OBJECTS.toLocaleString('en')} objects (node + SDK ListObjectsV2)`, samples: [await timed(`${node} ${listScript} >/dev/null`, { ...listEnv, B: BIG })] });
  rss.push({ name: `dbs plan run, incremental of ${RSS_OBJECTS.toLocaleString('en')} objects (1% changed)`, samples: [await timed(`${DBS} plan run many-inc >/dev/null`, dbsEnv())] });
  text += `\n## Peak RSS, ${RSS_OBJECTS.toLocaleString('en')} objects\n\n| run | s | peak RSS MB |\n|---|---|---|\n${rss.map((r) => `| ${r.name} | ${r.samples[0]!.seconds.toFixed(1)} | ${r.samples[0]!.maxRssMB.toFixed(0)} |`).join('\n')}\n\nTarget: at most 150 MB. Incremental (1% changed) / listing at ${RSS_OBJECTS.toLocaleString('en')} objects, one run each: ${(rss[3]!.samples[0]!.seconds / rss[2]!.samples[0]!.seconds).toFixed(2)}.\n`;
  save('bucket', `# bench: bucket (${new Date().toISOString()})\n\n${text}`);
});
