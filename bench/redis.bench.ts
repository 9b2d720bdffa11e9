// Benchmark: dbs Redis backups against redis-cli --rdb, 1M mixed keys (TESTBED.md shape:
// 600k strings, 250k hashes, 150k lists, 100k of them with TTLs). `npm run bench:redis`.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, it } from 'vitest';
import { startRedis, type RedisServer } from '../test/support/redis.js';
import { tempDir } from '../test/support/testbed.js';
import { report, save, timed, type Row, DBS } from './support.js';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
let src: RedisServer;
let dst: RedisServer;
const work = tempDir('bench');
const home = join(work, 'home');
const bin = new URL('../bin/dbs.js', import.meta.url).pathname;
/** BENCH_BEFORE=/path/to/other/checkout/bin/dbs.js: that build runs in every round too (before/after in one run). */
const BEFORE = process.env.BENCH_BEFORE;
const node = process.execPath;

beforeAll(async () => {
  [src, dst] = await Promise.all([startRedis(), startRedis()]);
  const c = new Redis({ host: '127.0.0.1', port: src.port });
  const strings = Math.round(KEYS * 0.6);
  const hashes = Math.round(KEYS * 0.25);
  const lists = KEYS - strings - hashes;
  for (let base = 0; base < KEYS; base += 10_000) {
    const p = c.pipeline();
    for (let i = base; i < Math.min(base + 10_000, KEYS); i++) {
      if (i < strings) p.set(`s:${i}`, `value-${i}-${'x'.repeat(150)}`, ...((i % 6 === 0 ? ['EX', 86400] : []) as []));
      else if (i < strings + hashes) p.hset(`h:${i}`, { a: String(i), b: 'y'.repeat(100), c: 'z'.repeat(50) });
      else if (i < strings + hashes + lists) p.rpush(`l:${i}`, 'one', 'two', 'three', String(i));
    }
    await p.exec();
  }
  c.disconnect();
  await execa('bash', ['-c', `mkdir -p ${home} && DBS_HOME=${home} ${DBS} pool bind local --type local --path ${work} && DBS_HOME=${home} ${DBS} plan create r --source redis://127.0.0.1:${src.port} --pool local --type logical && DBS_HOME=${home} ${DBS} plan create rdb --source redis://127.0.0.1:${src.port} --pool local --type snapshot`]);
  if (BEFORE) await execa('bash', ['-c', `mkdir -p ${home}-before ${work}/pool-before && DBS_HOME=${home}-before ${node} ${BEFORE} pool bind local --type local --path ${work}/pool-before && DBS_HOME=${home}-before ${node} ${BEFORE} plan create r --source redis://127.0.0.1:${src.port} --pool local --type logical && DBS_HOME=${home}-before ${node} ${BEFORE} plan create rdb --source redis://127.0.0.1:${src.port} --pool local --type snapshot`]);
}, 1800_000);

afterAll(async () => {
  await src?.stop();
  await dst?.stop();
});

it('redis backup and restore', async () => {
  const env = { DBS_HOME: home };
  const rows: Row[] = [
    { name: 'redis-cli --rdb file (baseline)', samples: [] },
    { name: 'dbs plan run, snapshot (redis-cli --rdb + redis-check-rdb + zstd)', samples: [] },
    { name: 'dbs plan run, logical (SCAN + DUMP -> RESP + zstd)', samples: [] },
    { name: 'dbs backup restore, logical (pipelined RESTORE)', samples: [] },
    { name: 'zstd -dc dump.resp | redis-cli --pipe (stock restore)', samples: [] },
  ];
  const beforeRdb: Row = { name: 'dbs BEFORE this change, snapshot', samples: [] };
  const beforeLogical: Row = { name: 'dbs BEFORE this change, logical', samples: [] };
  if (BEFORE) rows.push(beforeRdb, beforeLogical);
  const rdb = join(work, 'base.rdb');
  let latest = '';
  for (let i = 0; i < RUNS; i++) {
    rows[0].samples.push(await timed(`redis-cli -h 127.0.0.1 -p ${src.port} --rdb ${rdb} >/dev/null`));
    rows[1].samples.push(await timed(`${DBS} plan run rdb`, env));
    rows[2].samples.push(await timed(`${DBS} plan run r`, env));
    if (BEFORE) {
      beforeRdb.samples.push(await timed(`${node} ${BEFORE} plan run rdb`, { DBS_HOME: `${home}-before` }));
      beforeLogical.samples.push(await timed(`${node} ${BEFORE} plan run r`, { DBS_HOME: `${home}-before` }));
    }
    latest = JSON.parse((await execa(node, [bin, '--json', 'backup', 'list', '--plan', 'r'], { env })).stdout)[0].id;
    await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(dst.port), 'FLUSHALL']);
    rows[3].samples.push(await timed(`${DBS} backup restore ${latest} --to redis://127.0.0.1:${dst.port}`, env));
    const m = JSON.parse((await execa(node, [bin, '--json', 'backup', 'show', latest], { env })).stdout);
    const file = join(work, 'dbs', 'backups', m.plan.id, latest, 'dump.resp.zst');
    await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(dst.port), 'FLUSHALL']);
    rows[4].samples.push(await timed(`zstd -dc ${file} | redis-cli -h 127.0.0.1 -p ${dst.port} --pipe >/dev/null`));
  }
  const m = JSON.parse((await execa(node, [bin, '--json', 'backup', 'show', latest], { env })).stdout);
  rows[2].bytes = m.storedBytes;
  const text = report(`Redis, ${KEYS.toLocaleString('en')} mixed keys`, rows, 'redis-cli --rdb file (baseline)', m.rawBytes, [
    `"MB/s of raw" uses the logical dump's raw size (${(m.rawBytes / 1e6).toFixed(0)} MB) for every row, so the column compares times only.`,
    'The logical engine is client-bound on one core (ioredis command encoding/decoding); the RDB path is bound by the server.',
  ]);
  save('redis', `# bench: redis (${new Date().toISOString()})\n\n${text}`);
});
