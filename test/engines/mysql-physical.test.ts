// Physical and incremental MySQL/MariaDB backups against a real private MariaDB with a binlog,
// using the real mariabackup/mbstream: full and incremental round trips (restored into a new
// datadir, started on another port, compared table by table), a backup killed midway, the
// refusals, and verify --prepare of a good and a damaged chain.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, readFileSync, statSync, truncateSync, copyFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlEngine } from '../../src/engines/mysql/engine.js';
import { guardStage, writeToolViaPipe } from '../support/streams.js';
import type { PhysicalBackupFacts } from '../../src/engines/mysql/physical.js';
import { resolvePhysicalTool } from '../../src/engines/mysql/physical-run.js';
import { XbstreamGuard, XbstreamParser } from '../../src/engines/mysql/physical-stream.js';
import { buildBackupArgs, buildPrepareArgs, parseBinlogPos, parseCheckpoints } from '../../src/engines/mysql/physical-files.js';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, BackupOutcome, ChainLink, Endpoint, StoredArtifact, Inspector, ToolStart } from '../../src/engines/types.js';
import type { MysqlSelection, MysqlBackupRequest } from '../../src/engines/mysql/types.js';
import { DbsError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startMariaDB, type MariaDBServer } from '../support/mariadb.js';
import { freePort, killPid, pidAlive } from '../support/ports.js';
import { engineCtx, tempDir } from '../support/testbed.js';

/** One xbstream chunk: 'P' with a payload, 'E' (end of file) without. */
function xbChunk(type: string, path: string, payload?: Buffer): Buffer {
  const head = Buffer.alloc(14);
  head.write('XBSTCK01', 0, 'latin1');
  head[9] = type.charCodeAt(0);
  head.writeUInt32LE(Buffer.byteLength(path), 10);
  const parts: Buffer[] = [head, Buffer.from(path)];
  if (payload) {
    const h = Buffer.alloc(20);
    h.writeBigUInt64LE(BigInt(payload.length), 0);
    parts.push(h, payload);
  }
  return Buffer.concat(parts);
}


const engine = new MysqlEngine();
const PASSWORD = `phys-${randomBytes(4).toString('hex')}-"'\\ x`;
const ALL: MysqlSelection = { databases: [], all: true, tables: [] };
const NUM_ROWS = 120_000;

let src: MariaDBServer;
let conn: mysql.Connection;
const started: number[] = [];

function endpoint(s: MariaDBServer): Endpoint {
  return {
    kind: 'mysql',
    url: `mysql://root@${s.host}:${s.port}`,
    host: s.host,
    port: s.port,
    user: 'root',
    password: new Secret(PASSWORD),
    params: {},
  };
}

const ctx = (signal?: AbortSignal) => engineCtx('mysql-phys', signal);

/** Writes each artifact's raw stream to a file; records whether the stream ended or errored. */
class FileSink implements ArtifactSink {
  readonly encrypted = false;
  readonly dir = tempDir('phys-sink');
  readonly files = new Map<string, string>();
  outcome: 'end' | 'error' | undefined;
  error: unknown;
  options: ArtifactWriteOptions | undefined;
  constructor(private readonly onChunk?: (index: number) => Promise<void> | void) {}

  writeTool(name: string, options: ArtifactWriteOptions, spawn: (stdout: 'pipe' | Writable) => ToolStart): Promise<StoredArtifact> {
    return writeToolViaPipe(this, name, options, spawn);
  }

  async write(name: string, stream: Readable, options: ArtifactWriteOptions & { inspector?: Inspector }): Promise<StoredArtifact> {
    this.options = options;
    const path = join(this.dir, `${name}${options.extension}`);
    const hash = createHash('sha256');
    let bytes = 0;
    let n = 0;
    const onChunk = this.onChunk;
    const tap = new Transform({
      async transform(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        hash.update(chunk);
        n++;
        if (onChunk) await onChunk(n);
        cb(null, chunk);
      },
    });
    try {
      // Like the real sink: the engine's inspector sees every raw byte and may fail the stream.
      const guard = guardStage(options);
      if (guard) await pipeline(stream, guard, tap, createWriteStream(path));
      else await pipeline(stream, tap, createWriteStream(path));
      this.outcome = 'end';
    } catch (err) {
      this.outcome = 'error';
      this.error = err;
      throw err;
    }
    this.files.set(name, path);
    return { name, key: `${name}${options.extension}`, rawBytes: bytes, storedBytes: bytes, sha256: hash.digest('hex'), compression: 'none' };
  }
}

function reader(path: string, name = 'backup'): ArtifactReader {
  return { name, rawBytes: statSync(path).size, open: async () => createReadStream(path, { highWaterMark: 1 << 20 }) };
}

interface Taken {
  id: string;
  type: 'physical' | 'incremental';
  outcome: BackupOutcome;
  facts: PhysicalBackupFacts;
  file: string;
}

async function take(type: 'physical' | 'incremental', id: string, parent?: Taken): Promise<Taken> {
  const sink = new FileSink();
  const c = ctx();
  const t0 = Date.now();
  const outcome = await engine.backup(
    {
      source: endpoint(src),
      type,
      selection: ALL,
      sink,
      ...(parent ? { parent: { id: parent.id, facts: parent.outcome.facts } } : {}),
    },
    c,
  );
  const file = sink.files.get('backup') as string;
  console.log(`[timing] ${type} backup ${id}: ${Date.now() - t0} ms, ${statSync(file).size} bytes`);
  expect(sink.outcome).toBe('end');
  // The option file is gone afterwards, and nothing of the scratch target is left.
  expect(readdirSync(c.tmpDir).filter((f) => f.endsWith('.cnf'))).toEqual([]);
  return { id, type, outcome, facts: outcome.facts as unknown as PhysicalBackupFacts, file };
}

function link(t: Taken, file = t.file): ChainLink {
  return { backupId: t.id, type: t.type, facts: t.outcome.facts, artifacts: [reader(file)] };
}

async function q<T = mysql.RowDataPacket>(c: mysql.Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(sql, params);
  return rows as unknown as T[];
}

type Fingerprint = Record<string, { rows: number; checksum: string }>;

/** COUNT(*) and CHECKSUM TABLE of every base table of the test databases. */
async function fingerprint(c: mysql.Connection): Promise<Fingerprint> {
  const tables = await q<{ s: string; n: string }>(
    c,
    "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ('pa','pb') AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1, 2",
  );
  const out: Fingerprint = {};
  for (const { s, n } of tables) {
    const [cnt] = await q<{ c: number }>(c, `SELECT COUNT(*) AS c FROM \`${s}\`.\`${n}\``);
    const [sum] = await q<{ Checksum: string }>(c, `CHECKSUM TABLE \`${s}\`.\`${n}\` EXTENDED`);
    out[`${s}.${n}`] = { rows: Number(cnt?.c), checksum: String(sum?.Checksum) };
  }
  return out;
}

/** Restores a chain into a datadir, starts a server on it, returns its fingerprint; stops it. */
async function restoreAndCompare(chain: ChainLink[], toDatadir: string, expected: Fingerprint): Promise<Record<string, unknown>> {
  const port = await freePort();
  const c = ctx();
  const last = chain.at(-1) as ChainLink;
  const t0 = Date.now();
  const res = await engine.restore(
    {
      target: { kind: 'mysql', url: 'datadir', params: {} },
      type: last.type,
      selection: ALL,
      facts: last.facts,
      artifacts: last.artifacts,
      chain,
      options: { toDatadir, start: { port } },
    },
    c,
  );
  const pid = Number(res.facts['pid']);
  started.push(pid);
  // The work dir beside the target is gone.
  expect(readdirSync(dirname(toDatadir)).filter((e) => e.startsWith('.dbs-restore'))).toEqual([]);
  console.log(`[timing] restore of ${chain.length} link(s) + start: ${Date.now() - t0} ms`);
  try {
    expect(res.facts).toMatchObject({ datadir: toDatadir, port, started: true, chain: chain.map((l) => l.backupId) });
    expect(String(res.facts['connect'])).toContain(`-P ${port}`);
    expect(pidAlive(pid)).toBe(true);
    const rc = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: PASSWORD });
    try {
      expect(await fingerprint(rc)).toEqual(expected);
    } finally {
      await rc.end();
    }
  } finally {
    await killPid(pid, { graceMs: 30_000 });
  }
  return res.facts;
}

function procsWithArg(needle: string): Array<{ pid: number; argv: string[] }> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.some((a) => a.includes(needle))) out.push({ pid: Number(e), argv });
    } catch {
      // gone
    }
  }
  return out;
}

async function expectDbsError(p: Promise<unknown>, code: string, message?: RegExp): Promise<DbsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(DbsError);
  const e = err as DbsError;
  expect(e.code, e.message).toBe(code);
  if (message) expect(e.message).toMatch(message);
  return e;
}

beforeAll(async () => {
  src = await startMariaDB({ logBin: true, rootPassword: PASSWORD });
  conn = await mysql.createConnection({ host: src.host, port: src.port, user: 'root', password: PASSWORD, multipleStatements: true });
  await conn.query(`
    CREATE DATABASE pa; CREATE DATABASE pb;
    CREATE TABLE pa.nums (id INT PRIMARY KEY, v BIGINT NOT NULL, d DECIMAL(20,6), s VARCHAR(64), j JSON, KEY (v)) ENGINE=InnoDB;
    CREATE TABLE pa.blobs (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB, h CHAR(32)) ENGINE=InnoDB;
    CREATE TABLE pb.docs (id INT PRIMARY KEY, doc JSON, t DATETIME(6), txt TEXT CHARACTER SET utf8mb4) ENGINE=InnoDB;
    CREATE TABLE pb.legacy (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE=MyISAM;
    USE pa;
    INSERT INTO pa.nums SELECT seq, seq * 7919 % 100003, seq / 7, MD5(seq), JSON_OBJECT('n', seq, 'odd', seq % 2 = 1) FROM seq_1_to_${NUM_ROWS};
    INSERT INTO pa.blobs (b, h) SELECT RANDOM_BYTES(1024), MD5(seq) FROM seq_1_to_2000;
    INSERT INTO pb.docs SELECT seq, JSON_OBJECT('k', seq, 'a', JSON_ARRAY(seq, seq * 2)), '2024-01-01 00:00:00' + INTERVAL seq SECOND, CONCAT('ünïcødé 🐬 ', seq) FROM seq_1_to_5000;
    INSERT INTO pb.legacy SELECT seq, CONCAT('row', seq) FROM seq_1_to_100;
  `);
}, 120_000);

afterAll(async () => {
  for (const pid of started) await killPid(pid, { graceMs: 30_000 }).catch(() => undefined);
  await conn?.end().catch(() => undefined);
  await src?.stop();
});

describe('mysql physical backups (mariabackup)', () => {
  let full: Taken;
  let inc1: Taken;
  let inc2: Taken;
  let atInc2: Fingerprint;

  it('declares the physical types and tools', async () => {
    expect(engine.types).toEqual(['logical', 'physical', 'incremental']);
    const tools = await engine.tools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('mariabackup')).toMatchObject({ found: true });
    expect(byName.get('mariabackup')?.version).toMatch(/^10\.11\./);
    expect(byName.get('mbstream')).toMatchObject({ found: true });
    expect(byName.get('xtrabackup')).toBeDefined();
  });

  it('full backup -> restore into a new datadir -> started server has the same tables', async () => {
    const c = ctx();
    const sink = new FileSink(async (n) => {
      if (n !== 1) return;
      // The password never shows in any process's argv.
      const procs = procsWithArg(c.tmpDir);
      expect(procs.length).toBeGreaterThan(0);
      for (const p of procs) expect(p.argv.join(' ')).not.toContain(PASSWORD);
      expect(procs.some((p) => p.argv[1]?.startsWith('--defaults-file='))).toBe(true);
    });
    const t0 = Date.now();
    const outcome = await engine.backup({ source: endpoint(src), type: 'physical', selection: ALL, sink }, c);
    const file = sink.files.get('backup') as string;
    console.log(`[timing] full backup: ${Date.now() - t0} ms, ${statSync(file).size} bytes`);
    expect(sink.outcome).toBe('end');
    expect(sink.options).toMatchObject({ extension: '.xbstream' });
    expect(sink.options?.sizeHint).toBeGreaterThan(1 << 20);
    const facts = outcome.facts as unknown as PhysicalBackupFacts;
    expect(outcome.toolName).toBe('mariabackup');
    expect(facts).toMatchObject({ flavor: 'mariadb', backupKind: 'full', tool: 'mariabackup', user: 'root' });
    expect(facts.lsn.from).toBe('0');
    expect(BigInt(facts.lsn.to)).toBeGreaterThan(0n);
    expect(BigInt(facts.lsn.last)).toBeGreaterThanOrEqual(BigInt(facts.lsn.to));
    expect(facts.binlog?.file).toMatch(/^mysql-bin\.\d+$/);
    expect(facts.binlog?.position).toBeGreaterThan(0);
    expect(facts.server).toMatchObject({ serverId: 1, port: src.port });
    expect(facts.server.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(facts.innodb['innodb_page_size']).toBe('16384');
    expect(facts.streamBytes).toBe(statSync(file).size);
    expect(JSON.stringify(facts)).not.toContain(PASSWORD);
    expect(c.logs.join('\n')).not.toContain(PASSWORD);
    expect(c.logs.at(-1)).toMatch(/full backup complete/);
    expect(c.logs.join('\n')).not.toMatch(/framing was not followed/);
    // The guard is in mode edges (it reads the stream's end): the file count, which only a
    // read of the whole stream gives, is not a fact of the backup.
    expect(sink.options?.guard).toBe('edges');
    expect(facts.files).toBeUndefined();
    full = { id: 'full', type: 'physical', outcome, facts, file };

    const expected = await fingerprint(conn);
    expect(expected['pa.nums']?.rows).toBe(NUM_ROWS);
    const target = tempDir('phys-restore'); // exists and is empty: allowed
    const rf = await restoreAndCompare([link(full)], target, expected);
    expect(rf['binlog']).toEqual(facts.binlog);
  });

  it('full + 2 incrementals with writes in between -> restore of the last equals the source at that moment', async () => {
    await conn.query(`
      USE pa;
      UPDATE pa.nums SET v = v + 1, j = JSON_SET(j, '$.u', 1) WHERE id % 10 = 0;
      DELETE FROM pa.nums WHERE id % 13 = 0;
      INSERT INTO pa.nums SELECT seq, seq, seq / 3, 'inc1', NULL FROM seq_200001_to_210000;
      INSERT INTO pa.blobs (b, h) SELECT RANDOM_BYTES(2048), 'inc1' FROM seq_1_to_300;
      CREATE TABLE pb.added (id INT PRIMARY KEY, x DECIMAL(10,2)) ENGINE=InnoDB;
      INSERT INTO pb.added SELECT seq, seq / 4 FROM seq_1_to_1000;
      INSERT INTO pb.legacy VALUES (1000, 'inc1');
    `);
    inc1 = await take('incremental', 'inc1', full);
    expect(inc1.facts).toMatchObject({ backupKind: 'incremental', parentId: 'full' });
    expect(inc1.facts.lsn.from).toBe(full.facts.lsn.to);
    expect(inc1.facts.server.fingerprint).toBe(full.facts.server.fingerprint);

    await conn.query(`
      USE pa;
      UPDATE pb.docs SET doc = JSON_SET(doc, '$.k2', id * 2), txt = CONCAT(txt, ' ✓') WHERE id % 3 = 0;
      DELETE FROM pa.blobs WHERE id % 5 = 0;
      DROP TABLE pb.added;
      INSERT INTO pa.nums SELECT seq, -seq, NULL, 'inc2', JSON_ARRAY(seq) FROM seq_300001_to_305000;
    `);
    inc2 = await take('incremental', 'inc2', inc1);
    expect(inc2.facts.lsn.from).toBe(inc1.facts.lsn.to);
    atInc2 = await fingerprint(conn);
    expect(atInc2['pb.added']).toBeUndefined();

    // Later writes must not be in the restore.
    await conn.query("DELETE FROM pa.nums WHERE id < 1000; INSERT INTO pb.legacy VALUES (2000, 'after')");

    const target = join(tempDir('phys-restore'), 'new-datadir'); // missing: allowed
    const rf = await restoreAndCompare([link(full), link(inc1), link(inc2)], target, atInc2);
    expect((rf['lsn'] as { to: string }).to).toBe(inc2.facts.lsn.to);
  });

  it('verify --prepare passes for a good chain and fails clearly for a damaged artifact', async () => {
    const c = ctx();
    const t0 = Date.now();
    const v = await engine.verifyPrepare({ type: 'incremental', selection: ALL, facts: inc2.outcome.facts, artifacts: [reader(inc2.file)], chain: [link(full), link(inc1), link(inc2)] }, c);
    console.log(`[timing] verify --prepare of 3 links: ${Date.now() - t0} ms`);
    expect(v.facts).toMatchObject({ prepared: true, lsn: { to: inc2.facts.lsn.to } });
    expect(readdirSync(c.tmpDir)).toEqual([]); // scratch cleaned up

    // A truncated copy of the first incremental.
    const cut = join(tempDir('phys-cut'), 'inc1.xbstream');
    copyFileSync(inc1.file, cut);
    truncateSync(cut, Math.floor(statSync(cut).size / 2) + 3);
    const e = await expectDbsError(
      engine.verifyPrepare({ type: 'incremental', selection: ALL, facts: inc2.outcome.facts, artifacts: [reader(inc2.file)], chain: [link(full), link(inc1, cut), link(inc2)] }, ctx()),
      'VERIFY_FAILED',
      /extracting inc1 failed: mbstream exited with code/,
    );
    expect(e.hint).toMatch(/damaged/);

    // A bit flip inside a payload: mbstream's chunk checksum catches it.
    const flipped = join(tempDir('phys-flip'), 'full.xbstream');
    copyFileSync(full.file, flipped);
    const buf = readFileSync(flipped);
    buf.writeUInt8(buf.readUInt8(Math.floor(buf.length / 3)) ^ 0xff, Math.floor(buf.length / 3));
    writeFileSync(flipped, buf);
    await expectDbsError(
      engine.verifyPrepare({ type: 'physical', selection: ALL, facts: full.outcome.facts, artifacts: [reader(flipped)] }, ctx()),
      'VERIFY_FAILED',
      /extracting \w+ failed: mbstream exited with code \d+: .*checksum/,
    );
  });

  it('a backup cancelled through the signal is INTERRUPTED and its stream errors', async () => {
    const ac = new AbortController();
    const c = ctx(ac.signal);
    let abortedAt = 0;
    const sink = new FileSink((n) => {
      if (n === 2) {
        abortedAt = Date.now();
        ac.abort();
      }
    });
    await expectDbsError(engine.backup({ source: endpoint(src), type: 'physical', selection: ALL, sink }, c), 'INTERRUPTED');
    // mariabackup ignores SIGTERM and would finish the whole backup: it must be stopped at once
    // (measured from the abort, not from the tool's start, which a loaded machine slows).
    expect(abortedAt).toBeGreaterThan(0);
    expect(Date.now() - abortedAt).toBeLessThan(1000);
    expect(sink.outcome).toBe('error');
    // The tool is gone.
    expect(procsWithArg(c.tmpDir).filter((p) => /backup/.test(p.argv[0] ?? ''))).toEqual([]);
  });

  it('a user without the backup privileges gets a clear failure (and no password hash in the log)', async () => {
    const user = 'phys_weak';
    await conn.query(`CREATE USER IF NOT EXISTS ${user}@'127.0.0.1' IDENTIFIED BY 'weak-pw-1'; GRANT SELECT ON *.* TO ${user}@'127.0.0.1'`);
    const c = ctx();
    const sink = new FileSink();
    const ep: Endpoint = { ...endpoint(src), user, url: `mysql://${user}@127.0.0.1:${src.port}`, password: new Secret('weak-pw-1') };
    const e = await expectDbsError(engine.backup({ source: ep, type: 'physical', selection: ALL, sink }, c), 'BACKUP_FAILED', /exited with code 1: .*missing required privilege/);
    expect(e.hint).toMatch(/RELOAD, PROCESS/);
    expect(sink.outcome).toBe('error');
    const log = c.logs.join('\n');
    expect(log).toMatch(/IDENTIFIED BY PASSWORD '\*\*\*'/);
    expect(log).not.toMatch(/\*[0-9A-F]{40}/);
    // The probe for a physical plan says so up front.
    const probe = await engine.probe(ep, ALL, { signal: new AbortController().signal, type: 'physical' });
    expect(probe.problems.join('\n')).toMatch(/lacks RELOAD, PROCESS/);
    const ok = await engine.probe(endpoint(src), ALL, { signal: new AbortController().signal, type: 'physical' });
    expect(ok.problems).toEqual([]);
    expect(ok.facts).toMatchObject({ datadir: src.datadir.replace(/\/$/, ''), tool: 'mariadb-backup' });
  });

  it('a datadir that does not exist here is SOURCE_NOT_FOUND', async () => {
    const ep: Endpoint = { ...endpoint(src), params: { datadir: '/nonexistent/dbs-datadir' } };
    await expectDbsError(engine.backup({ source: ep, type: 'physical', selection: ALL, sink: new FileSink() }, ctx()), 'SOURCE_NOT_FOUND', /\/nonexistent\/dbs-datadir of .* does not exist on this host/);
  });

  it('a backup whose mariabackup is killed midway ends the stream with an error, not a clean end', async () => {
    const c = ctx();
    let killed = 0;
    const sink = new FileSink(async (n) => {
      if (n !== 2) return;
      const p = procsWithArg(c.tmpDir).find((x) => /mariadb-backup|mariabackup/.test(x.argv[0] ?? ''));
      expect(p).toBeDefined();
      killed = p!.pid;
      process.kill(killed, 'SIGKILL');
    });
    const e = await expectDbsError(engine.backup({ source: endpoint(src), type: 'physical', selection: ALL, sink }, c), 'BACKUP_FAILED', /killed by SIGKILL/);
    expect(killed).toBeGreaterThan(0);
    expect(sink.outcome).toBe('error');
    expect(sink.error).toBe(e);
  });

  it('refuses: non-empty target, no parent, parent of another server, LSN from the future, broken chain, busy port', async () => {
    // Non-empty target datadir: nothing is touched.
    const busy = tempDir('phys-busy');
    writeFileSync(join(busy, 'keep.txt'), 'mine');
    const rc = ctx();
    await expectDbsError(
      engine.restore({ target: { kind: 'mysql', url: 'x', params: {} }, type: 'physical', selection: ALL, facts: full.outcome.facts, artifacts: [reader(full.file)], chain: [link(full)], options: { toDatadir: busy } }, rc),
      'ALREADY_EXISTS',
      /is not empty/,
    );
    expect(readdirSync(busy)).toEqual(['keep.txt']);
    expect(readdirSync(rc.tmpDir)).toEqual([]);

    // No --to-datadir.
    await expectDbsError(
      engine.restore({ target: { kind: 'mysql', url: 'x', params: {} }, type: 'physical', selection: ALL, facts: full.outcome.facts, artifacts: [reader(full.file)], options: {} }, ctx()),
      'INVALID_ARGUMENT',
      /--to-datadir/,
    );

    // Port in use (the source server's).
    await expectDbsError(
      engine.restore({ target: { kind: 'mysql', url: 'x', params: {} }, type: 'physical', selection: ALL, facts: full.outcome.facts, artifacts: [reader(full.file)], options: { toDatadir: join(tempDir('phys-p'), 'd'), start: { port: src.port } } }, ctx()),
      'IN_USE',
      new RegExp(`port ${src.port}`),
    );

    // Chain with a gap (inc1 missing).
    await expectDbsError(
      engine.restore({ target: { kind: 'mysql', url: 'x', params: {} }, type: 'incremental', selection: ALL, facts: inc2.outcome.facts, artifacts: [reader(inc2.file)], chain: [link(full), link(inc2)], options: { toDatadir: join(tempDir('phys-g'), 'd') } }, ctx()),
      'RESTORE_FAILED',
      /chain is broken between full and inc2/,
    );

    const base = (parent?: MysqlBackupRequest['parent']): MysqlBackupRequest => ({
      source: endpoint(src),
      type: 'incremental',
      selection: ALL,
      sink: new FileSink(),
      ...(parent ? { parent } : {}),
    });
    await expectDbsError(engine.backup(base(), ctx()), 'BACKUP_FAILED', /needs a base backup/).then((e) => expect(e.hint).toMatch(/--auto-full/));

    const other = { ...full.outcome.facts, server: { ...full.facts.server, fingerprint: '0123456789abcdef', serverId: 42, hostname: 'elsewhere' } };
    await expectDbsError(engine.backup(base({ id: 'foreign', facts: other }), ctx()), 'REFUSED', /from another server.*server_id 42 -> 1/);

    const future = { ...full.outcome.facts, lsn: { from: '0', to: '99999999999999999', last: '99999999999999999' } };
    await expectDbsError(engine.backup(base({ id: 'future', facts: future }), ctx()), 'REFUSED', /older than the base backup future's/);

    await expectDbsError(engine.backup(base({ id: 'logical', facts: { databases: ['pa'] } }), ctx()), 'REFUSED', /not a physical backup/);

    // Physical backups copy the whole server.
    await expectDbsError(engine.backup({ ...base(), type: 'physical', selection: { databases: ['pa'], all: false, tables: [] } }, ctx()), 'INVALID_ARGUMENT', /whole server/);
  });
});

describe('mysql physical helpers', () => {
  it('names the missing tool for MySQL servers (xtrabackup)', async () => {
    const e = await expectDbsError(resolvePhysicalTool('xtrabackup'), 'TOOL_MISSING', /xtrabackup was not found on PATH/);
    expect(e.hint).toMatch(/Percona XtraBackup/);
  });

  it('builds argv with the option file first and no secrets', () => {
    const a = buildBackupArgs({ optionFile: '/t/o.cnf', targetDir: '/t/target', lsnDir: '/t/lsn', datadir: '/var/lib/mysql', incrementalLsn: '123' });
    expect(a[0]).toBe('--defaults-file=/t/o.cnf');
    expect(a).toContain('--stream=xbstream');
    expect(a).toContain('--incremental-lsn=123');
    expect(buildPrepareArgs('mariabackup', { targetDir: '/b', incrementalDir: '/i', last: false })).not.toContain('--apply-log-only');
    expect(buildPrepareArgs('xtrabackup', { targetDir: '/b', last: false })).toContain('--apply-log-only');
    expect(buildPrepareArgs('xtrabackup', { targetDir: '/b', incrementalDir: '/i', last: true })).not.toContain('--apply-log-only');
    expect(buildPrepareArgs('mariabackup', { targetDir: '/b', last: true })[0]).toBe('--no-defaults');
  });

  it('parses the metadata files', () => {
    expect(parseCheckpoints('backup_type = incremental\nfrom_lsn = 35893803\nto_lsn = 44285575\nlast_lsn = 74319766\nrecover_binlog_info = 0\n')).toEqual({
      backupType: 'incremental',
      fromLsn: '35893803',
      toLsn: '44285575',
      lastLsn: '74319766',
    });
    expect(parseBinlogPos("filename 'mysql-bin.000001', position '882', GTID of the last change '0-1-3'")).toEqual({ file: 'mysql-bin.000001', position: 882, gtid: '0-1-3' });
    expect(parseBinlogPos("filename 'binlog.000002', position '157'")).toEqual({ file: 'binlog.000002', position: 157 });
  });

  it('follows xbstream framing and notices a cut stream', () => {
    const chunk = xbChunk;
    const stream = Buffer.concat([
      chunk('P', 'xtrabackup_checkpoints', Buffer.from('backup_type = full-backuped\n')),
      chunk('E', 'xtrabackup_checkpoints'),
      chunk('P', 'd/t.ibd', randomBytes(5000)),
      chunk('E', 'd/t.ibd'),
    ]);
    const p = new XbstreamParser();
    for (let i = 0; i < stream.length; i += 7) p.feed(stream.subarray(i, i + 7)); // tiny pieces
    expect(p.error).toBeUndefined();
    expect(p.atBoundary).toBe(true);
    expect(p.unclosed()).toEqual([]);
    expect(p.file('xtrabackup_checkpoints')?.toString()).toBe('backup_type = full-backuped\n');
    const cut = new XbstreamParser();
    cut.feed(stream.subarray(0, stream.length - 30));
    expect(cut.atBoundary).toBe(false);
    // An unknown chunk type: the parser stops following, without calling the stream corrupt.
    const odd = new XbstreamParser();
    odd.feed(Buffer.concat([chunk('P', 'a', Buffer.from('x')), chunk('E', 'a'), chunk('S', 'b'), randomBytes(100)]));
    expect(odd.error).toBeUndefined();
    expect(odd.gaveUp).toMatch(/unknown chunk type 0x53/);
    const bad = new XbstreamParser();
    bad.feed(Buffer.from('-- MySQL dump 10.19\n'));
    expect(bad.error).toMatch(/wrong chunk magic/);
  });

  it('judges a stream from its start and end only (the framed pzstd path)', () => {
    const chunk = xbChunk;
    // A data file whose payload holds the chunk magic (a false place to start), then the
    // metadata mariabackup writes last.
    const tricky = Buffer.concat([randomBytes(3000), Buffer.from('XBSTCK01'), randomBytes(3000)]);
    const body = [chunk('P', 'd/a.ibd', randomBytes(200_000)), chunk('E', 'd/a.ibd'), chunk('P', 'd/b.ibd', tricky), chunk('P', 'd/b.ibd', tricky), chunk('E', 'd/b.ibd')];
    const meta = [chunk('P', 'backup-my.cnf', Buffer.from('[mysqld]\n')), chunk('E', 'backup-my.cnf'), chunk('P', 'xtrabackup_checkpoints', Buffer.from('backup_type = full-backuped\n')), chunk('E', 'xtrabackup_checkpoints')];
    const ok = { exitCode: 0, canceled: false };
    const judge = (stream: Buffer, tailBytes = 10_000) => {
      const g = new XbstreamGuard({ toolName: 'mariabackup', what: 'test', exit: Promise.resolve(ok), stderrTail: () => ['[00] completed OK!'] });
      g.takeEdges({ head: stream.subarray(0, 65536), tail: stream.subarray(Math.max(0, stream.length - tailBytes)), rawBytes: stream.length });
      return { g, err: g.check(ok)?.message };
    };
    const whole = Buffer.concat([...body, ...meta]);
    const good = judge(whole);
    expect(good.err).toBeUndefined();
    expect([good.g.bytes, good.g.sawAll]).toEqual([whole.length, false]);
    expect(good.g.parser.file('xtrabackup_checkpoints')?.toString()).toBe('backup_type = full-backuped\n');
    expect(judge(whole, whole.length).err).toBeUndefined(); // a stream shorter than a frame
    expect(judge(whole.subarray(0, whole.length - 10)).err).toMatch(/corrupt: its end is not a whole chain of chunks/);
    expect(judge(Buffer.concat([...body, ...meta.slice(0, 3)])).err).toMatch(/1 file\(s\) never ended \(xtrabackup_checkpoints\)/);
    expect(judge(Buffer.concat([...body, ...meta.slice(0, 2)])).err).toMatch(/lacks xtrabackup_checkpoints/);
    expect(judge(Buffer.concat([Buffer.from('-- not a stream\n'), whole])).err).toMatch(/wrong chunk magic/);
  });
});

