// Benchmark: dbs physical MySQL backups against `mariabackup --backup --stream=xbstream |
// zstd -1 > file`. `npm run bench:physical` (BENCH_GB=1, BENCH_RUNS=3).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../test/support/mariadb.js';
import { tempDir } from '../test/support/testbed.js';
import { cpuReport, report, save, timed, type Row, DBS } from './support.js';

const GB = Number(process.env.BENCH_GB ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TABLES = 8;
let db: MariaDBServer;
const work = tempDir('bench');
const home = join(work, 'home');
const bin = new URL('../bin/dbs.js', import.meta.url).pathname;
/** BENCH_BEFORE=/path/to/other/checkout/bin/dbs.js: that build runs in every round too (before/after in one run). */
const BEFORE = process.env.BENCH_BEFORE;
const node = process.execPath;

beforeAll(async () => {
  db = await startMariaDB({ logBin: false });
  const conn = await mysql.createConnection({ host: db.host, port: db.port, user: 'root', multipleStatements: true });
  await conn.query('SET GLOBAL innodb_flush_log_at_trx_commit = 0; CREATE DATABASE sbtest; USE sbtest');
  const rows = Math.round((GB * 3_300_000) / TABLES); // ~300 bytes of InnoDB per row
  for (let t = 1; t <= TABLES; t++) {
    await conn.query(`CREATE TABLE sbtest${t} (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY k_${t} (k)) ENGINE=InnoDB`);
    await conn.query(
      `INSERT INTO sbtest${t} SELECT seq, FLOOR(RAND() * ${rows}),
         CONCAT_WS('-', ${Array.from({ length: 10 }, () => "LPAD(FLOOR(RAND() * 99999999999), 11, '0')").join(', ')}),
         CONCAT_WS('-', ${Array.from({ length: 5 }, () => "LPAD(FLOOR(RAND() * 99999999999), 11, '0')").join(', ')})
       FROM seq_1_to_${rows}`,
    );
  }
  // Time a quiet server: wait until the load's dirty pages are flushed (a server still flushing
  // slowed the first rounds, the all-cores pipeline ran at 0.83x of single-threaded zstd once).
  await conn.query('SET GLOBAL innodb_max_dirty_pages_pct = 0');
  for (let i = 0; i < 600; i++) {
    const [r] = await conn.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'");
    if (Number((r as { Value: string }[])[0]!.Value) === 0) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  await conn.end();
  await execa('bash', ['-c', `mkdir -p ${home} ${work}/pool && DBS_HOME=${home} ${DBS} pool bind local --type local --path ${work}/pool && DBS_HOME=${home} ${DBS} plan create phys --source mysql://root@127.0.0.1:${db.port} --pool local --type physical`]);
  if (BEFORE) await execa('bash', ['-c', `mkdir -p ${home}-before ${work}/pool-before && DBS_HOME=${home}-before ${node} ${BEFORE} pool bind local --type local --path ${work}/pool-before && DBS_HOME=${home}-before ${node} ${BEFORE} plan create phys --source mysql://root@127.0.0.1:${db.port} --pool local --type physical`]);
}, 3600_000);

afterAll(async () => {
  await db?.stop();
});

it('mysql physical backup', async () => {
  const env = { DBS_HOME: home };
  const target = join(work, 'mb-target');
  const out = join(work, 'base.xbstream.zst');
  const mb = `mkdir -p ${target} && mariabackup --no-defaults --backup --stream=xbstream --host=127.0.0.1 --port=${db.port} --user=root --datadir=${db.datadir} --target-dir=${target} 2>/dev/null`;
  const rows: Row[] = [
    { name: 'mariabackup --stream > /dev/null (the ceiling)', samples: [] },
    { name: 'mariabackup --stream | zstd -1 > file (baseline)', samples: [] },
    { name: 'mariabackup --stream | zstd -1 -T0 > file (all cores)', samples: [] },
    { name: 'dbs plan run, zstd level 1 (default)', samples: [] },
    { name: 'dbs plan run, zstd level 3', samples: [] },
  ];
  const before: Row = { name: 'dbs BEFORE this change, zstd level 1', samples: [] };
  if (BEFORE) rows.push(before);
  const cpu = { cpu: { 'mariadbd (server)': db.pid } };
  const raw = Number((await execa('bash', ['-o', 'pipefail', '-c', `${mb} | wc -c`])).stdout.trim());
  for (let i = 0; i < RUNS; i++) {
    rows[0].samples.push(await timed(`${mb} > /dev/null`, {}, cpu));
    rows[1].samples.push(await timed(`${mb} | zstd -q -1 > ${out}`, {}, cpu));
    rows[1].bytes = statSync(out).size;
    rows[2].samples.push(await timed(`${mb} | zstd -q -1 -T0 > ${out}`, {}, cpu));
    rows[2].bytes = statSync(out).size;
    rows[3].samples.push(await timed(`${DBS} plan run phys`, env, cpu));
    if (BEFORE) before.samples.push(await timed(`${node} ${BEFORE} plan run phys`, { DBS_HOME: `${home}-before` }, cpu));
    rows[4].samples.push(await timed(`${DBS} plan run phys`, { ...env, DBS_COMPRESSION_LEVEL: '3' }, cpu));
  }
  const list = JSON.parse((await execa(node, [bin, '--json', 'backup', 'list', '--plan', 'phys'], { env })).stdout) as { storedBytes: number }[];
  rows[3].bytes = list[1].storedBytes;
  rows[4].bytes = list[0].storedBytes;
  let text = report(`MySQL physical backup, ~${GB} GB datadir`, rows, 'mariabackup --stream | zstd -1 > file (baseline)', raw, [
    'dbs compresses a physical stream with pzstd on every core (mariabackup itself needs little CPU), so the all-cores zstd pipeline is the fair peer; dbs also fsyncs the artifact, writes a manifest and checks the stream, which the pipelines do not.',
  ]);
  text += '\n### Where the time goes (CPU seconds per program, medians)\n\n' + cpuReport(rows, 'Read /proc while each backup runs; the server\'s from its own pid (it serves mariabackup\'s locks and any background flushing).');
  save(`mysql-physical-${GB}gb`, `# bench: mysql physical (${new Date().toISOString()})\n\n${text}`);
});
