// Round trips of the MySQL/MariaDB logical engine against real MariaDB servers: the shared
// test-bed server (binlog on) and a private one started here (binlog off).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Readable, pipeline as pipelineCb, type Writable } from 'node:stream';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlEngine } from '../../src/engines/mysql/engine.js';
import { guardStage, writeToolViaPipe } from '../support/streams.js';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, BackupOutcome, Endpoint, StoredArtifact, Inspector, ToolStart } from '../../src/engines/types.js';
import type { MysqlSelection } from '../../src/engines/mysql/types.js';
import { DbsError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startMariaDB, type MariaDBServer } from '../support/mariadb.js';
import { engineCtx, mysqlConn, servers, type MariaDBInfo } from '../support/testbed.js';

const engine = new MysqlEngine();
// The describe blocks read the server at collection time: ask for it before them.
const tb = await servers('mariadb');
const RUN = randomBytes(3).toString('hex');
const SRC = `mt_src_${RUN}`;
const BIG_ROWS = 150_000;
const BK_USER = `mt_bk_${RUN}`;
const BK_PASSWORD = 'p"w\\#x ;y\'z ';

function endpoint(info: { host: string; port: number }, user = 'root', password?: string): Endpoint {
  return {
    kind: 'mysql',
    url: `mysql://${user}@${info.host}:${info.port}`,
    host: info.host,
    port: info.port,
    user,
    ...(password ? { password: new Secret(password) } : {}),
    params: {},
  };
}

const sel = (s: Partial<MysqlSelection>): MysqlSelection => ({ databases: [], all: false, tables: [], ...s });

const ctx = (signal?: AbortSignal) => engineCtx('mysql-engine', signal);

/** Stores each artifact in memory; records whether the stream ended or errored. */
class MemorySink implements ArtifactSink {
  readonly encrypted = false;
  readonly stored = new Map<string, Buffer>();
  outcome: 'end' | 'error' | undefined;
  error: unknown;
  options: ArtifactWriteOptions | undefined;
  constructor(private readonly onChunk?: (index: number) => Promise<void> | void) {}

  writeTool(name: string, options: ArtifactWriteOptions, spawn: (stdout: 'pipe' | Writable) => ToolStart): Promise<StoredArtifact> {
    return writeToolViaPipe(this, name, options, spawn);
  }

  async write(name: string, stream: Readable, options: ArtifactWriteOptions & { inspector?: Inspector }): Promise<StoredArtifact> {
    this.options = options;
    const chunks: Buffer[] = [];
    // Like the real sink: the engine's inspector sees every raw byte and may fail the stream.
    const guard = guardStage(options);
    const input = guard ? (pipelineCb(stream, guard, () => undefined) as Readable) : stream;
    try {
      for await (const c of input) {
        chunks.push(c as Buffer);
        if (this.onChunk) await this.onChunk(chunks.length);
      }
      this.outcome = 'end';
    } catch (err) {
      this.outcome = 'error';
      this.error = err;
      throw err;
    }
    const buf = Buffer.concat(chunks);
    this.stored.set(name, buf);
    return {
      name,
      key: `${name}${options.extension}`,
      rawBytes: buf.length,
      storedBytes: buf.length,
      sha256: createHash('sha256').update(buf).digest('hex'),
      compression: 'none',
    };
  }
}

function reader(buf: Buffer, name = 'dump'): ArtifactReader {
  return {
    name,
    rawBytes: buf.length,
    open: async () => {
      const chunks: Buffer[] = [];
      for (let i = 0; i < buf.length; i += 65536) chunks.push(buf.subarray(i, i + 65536));
      return Readable.from(chunks);
    },
  };
}

async function q<T = mysql.RowDataPacket>(conn: mysql.Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(sql, params);
  return rows as unknown as T[];
}

/** COUNT(*) and CHECKSUM TABLE of every base table of a database. */
async function fingerprint(conn: mysql.Connection, db: string): Promise<Record<string, { rows: number; checksum: string }>> {
  const tables = await q<{ n: string }>(
    conn,
    "SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
    [db],
  );
  const out: Record<string, { rows: number; checksum: string }> = {};
  for (const { n } of tables) {
    const [c] = await q<{ c: number }>(conn, `SELECT COUNT(*) AS c FROM \`${db}\`.\`${n}\``);
    const [s] = await q<{ Checksum: string }>(conn, `CHECKSUM TABLE \`${db}\`.\`${n}\``);
    out[n] = { rows: Number(c?.c), checksum: String(s?.Checksum) };
  }
  return out;
}

/** Names of the views, triggers, routines and events of a database. */
async function programs(conn: mysql.Connection, db: string): Promise<Record<string, string[]>> {
  const col = async (sql: string): Promise<string[]> => (await q<{ n: string }>(conn, sql, [db])).map((r) => r.n).sort();
  return {
    views: await col('SELECT TABLE_NAME AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?'),
    triggers: await col('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?'),
    routines: await col('SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?'),
    events: await col('SELECT EVENT_NAME AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?'),
  };
}

async function createSource(conn: mysql.Connection, db: string): Promise<void> {
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  await conn.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await conn.query(`USE \`${db}\``);
  await conn.query(`CREATE TABLE t_text (id INT PRIMARY KEY, s VARCHAR(100), txt TEXT) CHARSET utf8mb4`);
  await conn.query(`INSERT INTO t_text VALUES (1, 'emoji 😀🎉 ünïcødé 漢字', 'quotes \\' " \\\\ back\\nnew\\ttab\\r\\n-- Table structure for table \`x\`'),
      (2, NULL, NULL), (3, '', CONCAT('nul', CHAR(0), 'byte')), (4, 'USE \`other\`;', '/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;')`);
  await conn.query(`CREATE TABLE t_blob (id INT PRIMARY KEY, b LONGBLOB)`);
  await conn.query(`INSERT INTO t_blob VALUES (0, ?)`, [all]);
  await conn.query(`INSERT INTO t_blob SELECT seq + 1, CHAR(seq) FROM seq_0_to_255`);
  await conn.query(`INSERT INTO t_blob VALUES (1000, REPEAT(?, 8192)), (1001, NULL), (1002, '')`, [all]);
  await conn.query(`CREATE TABLE t_num (id INT PRIMARY KEY, d DECIMAL(30,10), dt DATETIME(6), j JSON, f DOUBLE, n INT)`);
  await conn.query(`INSERT INTO t_num VALUES
      (1, 12345678901234567890.0123456789, '2024-02-29 23:59:59.999999', '{"a": [1, 2, {"b": "😀"}], "n": null}', 1.5e300, NULL),
      (2, -0.0000000001, '1970-01-01 00:00:00.000001', '[]', -0.0, 0),
      (3, NULL, NULL, NULL, NULL, NULL)`);
  await conn.query(`CREATE TABLE t_big (id INT PRIMARY KEY, h CHAR(32), v DOUBLE, d DATE, note VARCHAR(64), KEY (h))`);
  await conn.query(`INSERT INTO t_big SELECT seq, MD5(seq), seq / 7, DATE('2020-01-01') + INTERVAL (seq % 1000) DAY,
      IF(seq % 10 = 0, NULL, CONCAT('row ', seq)) FROM seq_1_to_${BIG_ROWS}`);
  await conn.query(`CREATE VIEW v_summary AS SELECT COUNT(*) AS n, SUM(v) AS total FROM t_big`);
  await conn.query(`CREATE TRIGGER tr_text BEFORE INSERT ON t_text FOR EACH ROW SET NEW.s = CONCAT('[', NEW.s, ']')`);
  await conn.query(`CREATE PROCEDURE p_count(OUT c INT) BEGIN SELECT COUNT(*) INTO c FROM t_big; END`);
  await conn.query(`CREATE FUNCTION f_add(a INT, b INT) RETURNS INT DETERMINISTIC RETURN a + b`);
  await conn.query(`CREATE EVENT e_cleanup ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM t_big WHERE id < 0`);
}

async function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Our own tool children: the processes whose option file lies in the given scratch dir. */
function pidsWith(dir: string): Array<{ pid: number; argv: string[] }> {
  const text = `--defaults-file=${dir}/`;
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes(text))) out.push({ pid: Number(d), argv });
    } catch {
      // gone
    }
  }
  return out;
}

describe('MysqlEngine (logical) against MariaDB', () => {
  const src = tb.mariadb;
  const srcEp = endpoint(src, src.user, src.password || undefined);
  let conn: mysql.Connection;
  let full: { outcome: BackupOutcome; dump: Buffer };
  let srcPrint: Awaited<ReturnType<typeof fingerprint>>;
  const created: string[] = [SRC];

  beforeAll(async () => {
    conn = await mysqlConn(src);
    const t0 = performance.now();
    await createSource(conn, SRC);
    console.log(`source database built in ${Math.round(performance.now() - t0)} ms`);
    srcPrint = await fingerprint(conn, SRC);
    await conn.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [BK_USER, BK_PASSWORD]);
    await conn.query(`GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON \`${SRC}\`.* TO ?@'127.0.0.1'`, [BK_USER]);
  });

  afterAll(async () => {
    if (!conn) return;
    for (const db of created) await conn.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
    await conn.query(`DROP USER IF EXISTS ?@'127.0.0.1'`, [BK_USER]).catch(() => undefined);
    await conn.end();
  });

  it('lists its tools with versions', async () => {
    const tools = await engine.tools();
    const dump = tools.find((t) => t.name === 'mariadb-dump');
    expect(dump?.found).toBe(true);
    expect(dump?.version).toMatch(/MariaDB/);
    expect(tools.find((t) => t.name === 'mariadb')?.found).toBe(true);
    expect(engine.types).toContain('logical');
  });

  it('probes: version, flavor, no problems; missing databases and tables are named', async () => {
    const ok = await engine.probe(srcEp, sel({ databases: [SRC] }), { signal: new AbortController().signal });
    expect(ok.flavor).toBe('mariadb');
    expect(ok.serverVersion).toMatch(/MariaDB/);
    expect(ok.problems).toEqual([]);
    expect(ok.facts['logBin']).toBe(true);
    expect(ok.facts['binlogCoordinates']).toBe(true);

    const bad = await engine.probe(srcEp, sel({ databases: [SRC, 'no_such_db_x'], tables: [`${SRC}.nope`, 'gone_db.t'] }), {
      signal: new AbortController().signal,
    });
    expect(bad.problems.join('\n')).toContain('`no_such_db_x`');
    expect(bad.problems.join('\n')).toContain(`\`${SRC}\`.\`nope\``);
    expect(bad.problems.join('\n')).toContain('gone_db');
  });

  it('probes a restricted user: privilege problems and warnings', async () => {
    const ep = endpoint(src, BK_USER, BK_PASSWORD);
    const info = await engine.probe(ep, sel({ databases: [SRC] }), { signal: new AbortController().signal });
    expect(info.problems).toEqual([]);
    expect(String(info.facts['warnings'])).toMatch(/routines/);
    await conn.query(`REVOKE TRIGGER ON \`${SRC}\`.* FROM ?@'127.0.0.1'`, [BK_USER]);
    try {
      const p = await engine.probe(ep, sel({ databases: [SRC] }), { signal: new AbortController().signal });
      expect(p.problems.join('\n')).toMatch(/TRIGGER privilege on database `mt_src_/);
    } finally {
      await conn.query(`GRANT TRIGGER ON \`${SRC}\`.* TO ?@'127.0.0.1'`, [BK_USER]);
    }
  });

  it('wrong password -> SOURCE_AUTH without the password; closed port -> SOURCE_UNREACHABLE', async () => {
    const wrong = 'Wr0ng-Passw0rd-xyz';
    const err = await engine
      .probe(endpoint(src, BK_USER, wrong), sel({}), { signal: new AbortController().signal })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DbsError);
    expect((err as DbsError).code).toBe('SOURCE_AUTH');
    expect((err as DbsError).message).toContain(`${BK_USER}@${src.host}:${src.port}`);
    expect(JSON.stringify((err as DbsError).toJSON())).not.toContain(wrong);
    expect((err as DbsError).hint).toMatch(/--password-env|--password-file/);

    const port = await unusedPort();
    const un = await engine.probe(endpoint({ host: '127.0.0.1', port }), sel({}), { signal: new AbortController().signal }).catch((e: unknown) => e);
    expect((un as DbsError).code).toBe('SOURCE_UNREACHABLE');
    expect((un as DbsError).message).toContain(`127.0.0.1:${port}`);

    const b = await engine
      .backup({ source: endpoint(src, BK_USER, wrong), type: 'logical', selection: sel({ databases: [SRC] }), sink: new MemorySink() }, ctx())
      .catch((e: unknown) => e);
    expect((b as DbsError).code).toBe('SOURCE_AUTH');
  });

  it('backs up a whole database: binlog facts, view, trigger, routines, events', async () => {
    const sink = new MemorySink();
    const c = ctx();
    const t0 = performance.now();
    const outcome = await engine.backup({ source: srcEp, type: 'logical', selection: sel({ databases: [SRC] }), sink }, c);
    const ms = performance.now() - t0;
    const dump = sink.stored.get('dump');
    expect(dump).toBeDefined();
    console.log(`backup of ${SRC} (${BIG_ROWS} + ~270 rows, ${(dump!.length / 1048576).toFixed(1)} MiB of SQL): ${Math.round(ms)} ms`);
    full = { outcome, dump: dump! };
    expect(sink.outcome).toBe('end');
    expect(sink.options).toMatchObject({ extension: '.sql' });
    expect(sink.options?.sizeHint).toBeGreaterThan(0);
    expect(outcome.toolName).toBe('mariadb-dump');
    expect(outcome.toolVersion).toMatch(/MariaDB/);
    expect(outcome.serverVersion).toMatch(/MariaDB/);
    const f = outcome.facts;
    expect(f['flavor']).toBe('mariadb');
    expect(f['databases']).toEqual([SRC]);
    expect([...(f['tables'] as string[])].sort()).toEqual([`${SRC}.t_big`, `${SRC}.t_blob`, `${SRC}.t_num`, `${SRC}.t_text`, `${SRC}.v_summary`]);
    expect(f['views']).toEqual([`${SRC}.v_summary`]);
    expect(f['routines']).toBe(true);
    const binlog = f['binlog'] as { file: string; position: number; gtid?: string };
    expect(binlog.file).toMatch(/^mysql-bin\.\d+$/);
    expect(binlog.position).toBeGreaterThan(0);
    expect(binlog.gtid).toMatch(/^\d+-\d+-\d+/);
    const text = dump!.toString('utf8');
    expect(text).toContain('-- Dump completed');
    expect(text).toContain('TRIGGER tr_text');
    expect(text).toContain('PROCEDURE `p_count`');
    expect(text).toContain('EVENT `e_cleanup`');
    // the option file is gone, nothing secret left in the scratch dir
    expect(readdirSync(c.tmpDir)).toEqual([]);
  });

  it('restores under another database name: same data and programs', async () => {
    const dst = `mt_dst1_${RUN}`;
    created.push(dst);
    const c = ctx();
    const t0 = performance.now();
    const r = await engine.restore(
      {
        target: srcEp,
        type: 'logical',
        selection: sel({ databases: [SRC] }),
        facts: full.outcome.facts,
        artifacts: [reader(full.dump)],
        options: { renameDatabase: { from: SRC, to: dst } },
      },
      c,
    );
    console.log(`restore of ${(full.dump.length / 1048576).toFixed(1)} MiB of SQL into ${dst}: ${Math.round(performance.now() - t0)} ms`);
    expect(r.bytes).toBe(full.dump.length);
    expect(await fingerprint(conn, dst)).toEqual(srcPrint);
    expect(await programs(conn, dst)).toEqual({
      views: ['v_summary'],
      triggers: ['tr_text'],
      routines: ['f_add', 'p_count'],
      events: ['e_cleanup'],
    });
    // the view works and the data was not run through the trigger twice
    const [v] = await q<{ n: number }>(conn, `SELECT n FROM \`${dst}\`.v_summary`);
    expect(Number(v?.n)).toBe(BIG_ROWS);
    const [t1] = await q<{ s: string }>(conn, `SELECT s FROM \`${dst}\`.t_text WHERE id = 1`);
    expect(t1?.s).toBe('emoji 😀🎉 ünïcødé 漢字');
    // every byte value survived
    const [b] = await q<{ b: Buffer }>(conn, `SELECT b FROM \`${dst}\`.t_blob WHERE id = 0`);
    expect(Buffer.compare(b!.b, Buffer.from(Array.from({ length: 256 }, (_, i) => i)))).toBe(0);
    // the source was not touched
    expect(await fingerprint(conn, SRC)).toEqual(srcPrint);
  });

  it('refuses to overwrite existing tables without replace, and changes nothing', async () => {
    const dst = `mt_dst1_${RUN}`;
    await conn.query(`UPDATE \`${dst}\`.t_num SET n = 42 WHERE id = 1`);
    await conn.query(`CREATE TABLE \`${dst}\`.extra (x INT)`);
    const before = await fingerprint(conn, dst);
    const req = {
      target: srcEp,
      type: 'logical' as const,
      selection: sel({ databases: [SRC] }),
      facts: full.outcome.facts,
      artifacts: [reader(full.dump)],
    };
    const err = await engine.restore({ ...req, options: { renameDatabase: { from: SRC, to: dst } } }, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DbsError);
    expect((err as DbsError).code).toBe('ALREADY_EXISTS');
    expect((err as DbsError).message).toContain(`\`${dst}\`.\`t_num\``);
    expect((err as DbsError).hint).toContain('--replace');
    expect(await fingerprint(conn, dst)).toEqual(before);

    // one table only: still refused when that one exists
    const one = await engine
      .restore({ ...req, options: { tables: [`${SRC}.t_num`], renameDatabase: { from: SRC, to: dst } } }, ctx())
      .catch((e: unknown) => e);
    expect((one as DbsError).code).toBe('ALREADY_EXISTS');

    // with replace the restored tables are put back; other tables stay
    await engine.restore({ ...req, options: { renameDatabase: { from: SRC, to: dst }, replace: true } }, ctx());
    const after = await fingerprint(conn, dst);
    const { extra, ...restored } = after;
    expect(restored).toEqual(srcPrint);
    expect(extra).toEqual(before['extra']);
  });

  it('restores single tables out of the full backup', async () => {
    const dst = `mt_dst3_${RUN}`;
    created.push(dst);
    const r = await engine.restore(
      {
        target: srcEp,
        type: 'logical',
        selection: sel({ databases: [SRC] }),
        facts: full.outcome.facts,
        artifacts: [reader(full.dump)],
        options: { tables: [`${SRC}.t_blob`, `${dst}.t_text`], renameDatabase: { from: SRC, to: dst } },
      },
      ctx(),
    );
    expect(r.facts['objects']).toBe(2);
    const print = await fingerprint(conn, dst);
    expect(print).toEqual({ t_blob: srcPrint['t_blob'], t_text: srcPrint['t_text'] });
    const p = await programs(conn, dst);
    expect(p).toEqual({ views: [], triggers: ['tr_text'], routines: [], events: [] });

    const missing = await engine
      .restore(
        {
          target: srcEp,
          type: 'logical',
          selection: sel({ databases: [SRC] }),
          facts: full.outcome.facts,
          artifacts: [reader(full.dump)],
          options: { tables: [`${SRC}.nope`] },
        },
        ctx(),
      )
      .catch((e: unknown) => e);
    expect((missing as DbsError).code).toBe('NOT_FOUND');
  });

  it('backs up a table subset in one snapshot and restores it', async () => {
    const sink = new MemorySink();
    const outcome = await engine.backup(
      { source: srcEp, type: 'logical', selection: sel({ tables: [`${SRC}.t_text`, `${SRC}.t_num`] }), sink },
      ctx(),
    );
    const dump = sink.stored.get('dump')!;
    expect(outcome.facts['tables']).toEqual([`${SRC}.t_num`, `${SRC}.t_text`]);
    expect(outcome.facts['tableSubset']).toBe(true);
    expect(outcome.facts['routines']).toBe(false);
    const text = dump.toString('utf8');
    expect(text).not.toContain('t_big');
    expect(text).not.toContain('PROCEDURE');
    expect(text).toContain('TRIGGER tr_text');
    expect(text).toContain(`CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`${SRC}\``);

    const dst = `mt_dst2_${RUN}`;
    created.push(dst);
    await engine.restore(
      {
        target: srcEp,
        type: 'logical',
        selection: sel({ tables: [`${SRC}.t_text`, `${SRC}.t_num`] }),
        facts: outcome.facts,
        artifacts: [reader(dump)],
        options: { renameDatabase: { from: SRC, to: dst } },
      },
      ctx(),
    );
    expect(await fingerprint(conn, dst)).toEqual({ t_num: srcPrint['t_num'], t_text: srcPrint['t_text'] });
  });

  it('a restricted user with a hard password backs up through the option file; argv never holds it', async () => {
    await conn.query(`GRANT SELECT ON mysql.proc TO ?@'127.0.0.1'`, [BK_USER]);
    const c = ctx();
    let seen: string[][] = [];
    const sink = new MemorySink((i) => {
      if (i === 1) seen = pidsWith(c.tmpDir).map((p) => p.argv);
    });
    const outcome = await engine.backup(
      { source: endpoint(src, BK_USER, BK_PASSWORD), type: 'logical', selection: sel({ databases: [SRC] }), sink },
      c,
    );
    // MariaDB takes binlog coordinates from the snapshot: no RELOAD/BINLOG MONITOR needed
    expect(outcome.facts['binlog']).toBeDefined();
    expect(sink.stored.get('dump')!.toString()).toContain('PROCEDURE `p_count`');
    expect(seen.length).toBeGreaterThan(0);
    for (const argv of seen) {
      expect(argv[1]).toMatch(/^--defaults-file=/);
      expect(argv.join(' ')).not.toContain(BK_PASSWORD.trim());
      expect(argv.join(' ')).not.toContain('p"w');
    }
    for (const l of c.logs) expect(l).not.toContain('p"w');
  });

  it('an abort mid-dump makes the stream error, never end', async () => {
    const ac = new AbortController();
    const c = ctx(ac.signal);
    const sink = new MemorySink(async (i) => {
      if (i === 1) {
        ac.abort();
        await new Promise((r) => setTimeout(r, 200)); // the tool is stopped while we wait
      }
    });
    const err = await engine
      .backup({ source: srcEp, type: 'logical', selection: sel({ databases: [SRC] }), sink }, c)
      .catch((e: unknown) => e);
    expect(sink.outcome).toBe('error');
    expect(err).toBeInstanceOf(DbsError);
    expect((err as DbsError).code).toBe('INTERRUPTED');
    expect(pidsWith(c.tmpDir)).toEqual([]);
    expect(readdirSync(c.tmpDir)).toEqual([]);
  });

  it('a dump tool killed mid-dump makes the stream error with BACKUP_FAILED', async () => {
    const c = ctx();
    const sink = new MemorySink(async (i) => {
      if (i === 1) {
        const procs = pidsWith(c.tmpDir);
        expect(procs).toHaveLength(1);
        process.kill(procs[0]!.pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    const err = await engine
      .backup({ source: srcEp, type: 'logical', selection: sel({ databases: [SRC] }), sink }, c)
      .catch((e: unknown) => e);
    expect(sink.outcome).toBe('error');
    expect((err as DbsError).code).toBe('BACKUP_FAILED');
    expect((err as DbsError).message).toMatch(/killed by SIGKILL/);
  });

  it('a sink that fails stops the tool and its error is reported', async () => {
    const c = ctx();
    const sink = new MemorySink((i) => {
      if (i === 2) throw new DbsError('POOL_UNREACHABLE', 'pool went away on purpose');
    });
    const err = await engine
      .backup({ source: srcEp, type: 'logical', selection: sel({ databases: [SRC] }), sink }, c)
      .catch((e: unknown) => e);
    expect((err as DbsError).code).toBe('POOL_UNREACHABLE');
    expect(pidsWith(c.tmpDir)).toEqual([]);
    expect(readdirSync(c.tmpDir)).toEqual([]);
  });

  it('an abort during a restore stops the client: INTERRUPTED', async () => {
    const dst = `mt_dst4_${RUN}`;
    created.push(dst);
    const ac = new AbortController();
    const c = ctx(ac.signal);
    setTimeout(() => ac.abort(), 300);
    const err = await engine
      .restore(
        {
          target: srcEp,
          type: 'logical',
          selection: sel({ databases: [SRC] }),
          facts: full.outcome.facts,
          artifacts: [reader(full.dump)],
          options: { renameDatabase: { from: SRC, to: dst } },
        },
        c,
      )
      .catch((e: unknown) => e);
    expect((err as DbsError).code).toBe('INTERRUPTED');
    expect(pidsWith(c.tmpDir)).toEqual([]);
  });

  it('a failing client or a broken input fails the restore with RESTORE_FAILED', async () => {
    const db = `mt_bad_${RUN}`;
    created.push(db);
    const bad = Buffer.from(`CREATE DATABASE \`${db}\`;\nUSE \`${db}\`;\nCREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);\nCREATE TABLE broken (id INT;\n`);
    const err = await engine
      .restore(
        { target: srcEp, type: 'logical', selection: sel({ databases: [db] }), facts: { databases: [db], tables: [`${db}.t`] }, artifacts: [reader(bad)], options: {} },
        ctx(),
      )
      .catch((e: unknown) => e);
    expect((err as DbsError).code).toBe('RESTORE_FAILED');
    expect((err as DbsError).message).toMatch(/ERROR 1064/);

    const db2 = `mt_bad2_${RUN}`;
    created.push(db2);
    const broken: ArtifactReader = {
      name: 'dump',
      rawBytes: 0,
      open: async () => {
        let n = 0;
        return new Readable({
          read() {
            n++;
            if (n === 1) this.push(`CREATE DATABASE \`${db2}\`;\nUSE \`${db2}\`;\nCREATE TABLE t (id INT);\n`);
            else if (n < 50) this.push('INSERT INTO t VALUES (1);\n');
            else this.destroy(new Error('checksum mismatch on purpose'));
          },
        });
      },
    };
    const err2 = await engine
      .restore({ target: srcEp, type: 'logical', selection: sel({ databases: [db2] }), facts: { databases: [db2], tables: [`${db2}.t`] }, artifacts: [broken], options: {} }, ctx())
      .catch((e: unknown) => e);
    expect((err2 as DbsError).code).toBe('RESTORE_FAILED');
    expect((err2 as DbsError).message).toMatch(/reading the backup failed.*checksum mismatch on purpose/);
  });

  it('a statement the server refuses as too large fails the restore with a hint about max_allowed_packet', async () => {
    const db = `mt_big_${RUN}`;
    created.push(db);
    const [rows] = await conn.query('SELECT @@GLOBAL.max_allowed_packet AS m');
    const max = Number((rows as { m: number }[])[0]!.m);
    const big = Buffer.from(`CREATE DATABASE \`${db}\`;\nUSE \`${db}\`;\nCREATE TABLE t (b LONGTEXT);\nINSERT INTO t VALUES ('${'x'.repeat(max + 1024)}');\n`);
    const err = await engine
      .restore({ target: srcEp, type: 'logical', selection: sel({ databases: [db] }), facts: { databases: [db], tables: [`${db}.t`] }, artifacts: [reader(big)], options: {} }, ctx())
      .catch((e: unknown) => e);
    expect((err as DbsError).code).toBe('RESTORE_FAILED');
    expect((err as DbsError).message).toMatch(/gone away|max_allowed_packet|Lost connection/i);
    expect((err as DbsError).hint).toMatch(/error log .*max_allowed_packet/);
  });

  describe('with a private server (no binlog)', () => {
    let priv: MariaDBServer;
    beforeAll(async () => {
      priv = await startMariaDB({ logBin: false, rootPassword: 'pr1v"pass\\word' });
    });
    afterAll(async () => {
      await priv?.stop();
    });

    it('restores the full backup into another server under the same name', async () => {
      const info: MariaDBInfo = { ...priv, password: priv.password };
      const ep = endpoint(priv, 'root', priv.password);
      await engine.restore(
        { target: ep, type: 'logical', selection: sel({ databases: [SRC] }), facts: full.outcome.facts, artifacts: [reader(full.dump)], options: {} },
        ctx(),
      );
      const pc = await mysqlConn(info);
      try {
        expect(await fingerprint(pc, SRC)).toEqual(srcPrint);
        expect((await programs(pc, SRC)).routines).toEqual(['f_add', 'p_count']);

        // and a backup from a server without binlog records no binlog facts
        const sink = new MemorySink();
        const o = await engine.backup({ source: ep, type: 'logical', selection: sel({ all: true }), sink }, ctx());
        expect(o.facts['binlog']).toBeUndefined();
        expect(o.facts['databases']).toEqual([SRC]); // system schemas are left out
        expect(sink.stored.get('dump')!.toString()).not.toContain('CHANGE MASTER');
      } finally {
        await pc.end();
      }
    });

    it('a socket endpoint works too', async () => {
      const ep: Endpoint = { ...endpoint(priv, 'root', priv.password), params: { socket: priv.socket } };
      const p = await engine.probe(ep, sel({ databases: [SRC] }), { signal: new AbortController().signal });
      expect(p.problems).toEqual([]);
      expect(existsSync(priv.socket)).toBe(true);
    });
  });
});
