// The Redis engine against real, private Redis servers: logical backup -> restore (engine and
// stock `redis-cli --pipe`), snapshot -> dump.rdb -> a server started on it, and bad input.
import { copyFile, mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Transform } from 'node:stream';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbsError } from '../../src/errors.js';
import { checkRdb, RedisEngine } from '../../src/engines/redis/engine.js';
import type { RedisSelection, RedisBackupRequest } from '../../src/engines/redis/types.js';
import { freePort } from '../support/ports.js';
import { startRedis, tempDir, type RedisServer } from '../support/testbed.js';
import { allBytes, binKey, client, dbDigest, FileSink, fill, readerOf, redisEndpoint, runCtx, state } from './redis-support.js';

const SRC_PASSWORD = 'src-Pa55word-0xDEADBEEF';
const DST_PASSWORD = 'dst-Pa55word-0xCAFEBABE';
const ACL_USER = 'dbsbackup';
const ACL_PASSWORD = 'acl-Pa55word-0xFEEDFACE';

const all: RedisSelection = { databases: [], all: true, tables: [] };

async function expectCode(p: Promise<unknown>, code: string): Promise<DbsError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `expected ${code}`).toBeInstanceOf(DbsError);
  expect((e as DbsError).code, (e as Error).message).toBe(code);
  return e as DbsError;
}

function noSecret(e: unknown, ...secrets: string[]): void {
  const texts = [String((e as Error).message), JSON.stringify(e), inspect(e, { depth: 5 }), String((e as DbsError).hint ?? '')];
  for (const s of secrets) for (const t of texts) expect(t).not.toContain(s);
}

describe('redis engine', () => {
  const engine = new RedisEngine();
  let src: RedisServer;
  let dstEngine: RedisServer;
  let dstPipe: RedisServer;
  let dstMisc: RedisServer;
  let dstRdb: RedisServer;
  let dir: string;
  let expected: Awaited<ReturnType<typeof state>>;
  const counts: Record<string, number> = {};
  const ttlKeys = new Map<number, Buffer[]>();
  /** Same digest of every db, same DBSIZEs, same absolute expiry of every key with a TTL. */
  const expectSameAsSource = async (s: RedisServer): Promise<void> => {
    const got = await state(s, [0, 3], ttlKeys);
    expect(got.sizes).toEqual(expected.sizes);
    expect(got.expiry).toEqual(expected.expiry);
    expect(got.digest).toBe(expected.digest);
  };
  let dumpFile: string;
  const timings: string[] = [];

  beforeAll(async () => {
    [src, dstEngine, dstPipe, dstMisc, dstRdb] = await Promise.all([
      startRedis({ password: SRC_PASSWORD }),
      startRedis({ password: DST_PASSWORD }),
      startRedis({ password: DST_PASSWORD }),
      startRedis(),
      startRedis(),
    ]);
    dir = tempDir('redis-engine');
    const t0 = performance.now();
    const work = tempDir('redis-fill');
    const f0 = await fill(src, 0, { strings: 150_000, hashes: 10_000, lists: 5_000, sets: 5_000, zsets: 5_000, streams: 500, big: true }, '', work);
    const f3 = await fill(src, 3, { strings: 30_000, hashes: 2_000, lists: 1_000, sets: 1_000, zsets: 1_000, streams: 100, big: false }, 't', work);
    counts['0'] = f0.keys;
    counts['3'] = f3.keys;
    ttlKeys.set(0, f0.ttlKeys);
    ttlKeys.set(3, f3.ttlKeys);
    timings.push(`fill ${counts['0'] + counts['3']} keys (redis-cli --pipe): ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    const c = client(src);
    try {
      await c.call('ACL', 'SETUSER', ACL_USER, 'on', `>${ACL_PASSWORD}`, '~*', '&*', '+@all');
    } finally {
      c.disconnect();
    }
    expected = await state(src, [0, 3], ttlKeys);
    expect(expected.sizes).toEqual({ 0: counts['0'], 3: counts['3'] });
    expect(expected.expiry[0].length).toBeGreaterThan(15_000);
    for (const db of [0, 3]) for (const t of expected.expiry[db]) expect(t).toBeGreaterThan(Date.now());
  });

  afterAll(async () => {
    console.log(`[redis engine timings]\n  ${timings.join('\n  ')}`);
    await Promise.all([src, dstEngine, dstPipe, dstMisc, dstRdb].map((s) => s?.stop()));
  });

  it('lists redis-cli and redis-check-rdb with versions', async () => {
    const tools = await engine.tools();
    expect(tools.map((t) => t.name)).toEqual(['redis-cli', 'redis-check-rdb']);
    for (const t of tools) {
      expect(t.found).toBe(true);
      expect(t.version).toMatch(/^\d+\.\d+/);
    }
  });

  it('probes: version, databases with keys, the URL database, out-of-range databases', async () => {
    const p = await engine.probe(redisEndpoint(src), all, { signal: new AbortController().signal });
    expect(p.serverVersion).toBe(src.version);
    expect(p.flavor).toBe('redis');
    expect(p.problems).toEqual([]);
    expect(p.facts['databases']).toEqual(['0', '3']);
    expect(p.facts['databaseCount']).toBe(16);
    const one = await engine.probe(redisEndpoint(src, { db: '3' }), { databases: [], all: false, tables: [] }, { signal: new AbortController().signal });
    expect(one.facts['databases']).toEqual(['3']);
    const bad = await engine.probe(redisEndpoint(src), { databases: ['0', '99', 'x'], all: false, tables: [] }, { signal: new AbortController().signal });
    expect(bad.problems).toContain('database 99 does not exist (the server has 16)');
    expect(bad.problems.some((p) => p.includes('"x" is not a Redis database number'))).toBe(true);
  });

  it('probes with an ACL user', async () => {
    const p = await engine.probe(redisEndpoint(src, { user: ACL_USER, password: ACL_PASSWORD }), all, { signal: new AbortController().signal });
    expect(p.problems).toEqual([]);
    const e = await expectCode(engine.probe(redisEndpoint(src, { user: ACL_USER, password: SRC_PASSWORD }), all, { signal: new AbortController().signal }), 'SOURCE_AUTH');
    expect(e.message).toContain(ACL_USER);
    noSecret(e, SRC_PASSWORD, ACL_PASSWORD);
  });

  it('logical backup of every database (200k+ keys) is a RESP stream with absolute TTLs', async () => {
    const sink = new FileSink(dir);
    const logs: string[] = [];
    const t0 = performance.now();
    const out = await engine.backup({ source: redisEndpoint(src), type: 'logical', selection: all, sink }, runCtx(tempDir('redis-task'), logs));
    const secs = (performance.now() - t0) / 1000;
    expect(sink.stored).toHaveLength(1);
    dumpFile = sink.stored[0].file;
    expect(sink.stored[0].name).toBe('dump.resp');
    const total = counts['0'] + counts['3'];
    timings.push(`logical backup ${total} keys: ${secs.toFixed(2)} s, ${(sink.stored[0].rawBytes / 1e6).toFixed(1)} MB`);
    expect(out.serverVersion).toBe(src.version);
    expect(out.facts).toMatchObject({
      serverVersion: src.version,
      databases: ['0', '3'],
      keys: { '0': counts['0'], '3': counts['3'] },
      totalKeys: total,
      consistency: 'scan (not point-in-time)',
      ttl: 'absolute (PEXPIRETIME)',
    });
    expect(out.facts['match']).toBeUndefined();
    expect(out.facts['rdbVersion']).toBe(10); // Redis 7.0
    // Standard framing, starting with SELECT 0.
    const head = Buffer.alloc(64);
    const fh = await (await import('node:fs/promises')).open(dumpFile, 'r');
    await fh.read(head, 0, 64, 0);
    await fh.close();
    expect(head.toString('latin1')).toMatch(/^\*2\r\n\$6\r\nSELECT\r\n\$1\r\n0\r\n\*6\r\n\$7\r\nRESTORE\r\n/);
    expect(logs.join('\n')).toContain('dumped');
    expect(logs.join('\n')).not.toContain(SRC_PASSWORD);
  });

  it('restores the dump into another server: every key, type, value and TTL', async () => {
    const t0 = performance.now();
    const out = await engine.restore(
      {
        target: redisEndpoint(dstEngine),
        type: 'logical',
        selection: all,
        facts: { databases: ['0', '3'], keys: counts },
        artifacts: [await readerOf(dumpFile)],
        options: {},
      },
      runCtx(tempDir('redis-task')),
    );
    const secs = (performance.now() - t0) / 1000;
    timings.push(`logical restore ${out.facts['keys']} keys: ${secs.toFixed(2)} s`);
    expect(out.facts['keys']).toBe(counts['0'] + counts['3']);
    expect(out.facts['keysByDb']).toEqual({ '0': counts['0'], '3': counts['3'] });
    expect(out.bytes).toBe((await stat(dumpFile)).size);
    await expectSameAsSource(dstEngine);
    // Type-specific reads, not only DUMP payloads.
    const c = client(dstEngine, 3);
    try {
      expect((await c.getBuffer(binKey(200)))!.equals(allBytes(200))).toBe(true);
      expect((await c.getBuffer(allBytes(0)))!.equals(allBytes(7))).toBe(true);
      expect(await c.type('tx:0')).toBe('stream');
      expect(await c.hget('th:5', 'b')).toBe('bee-5');
      expect(await c.zscore('tz:3', 'two')).toBe('2.5');
      expect(await c.dbsize()).toBe(counts['3']);
      await c.select(0);
      expect((await c.getBuffer('big:string'))!.length).toBe(3 * 1024 * 1024);
      expect(await c.llen('big:list')).toBe(100_000);
      const groups = (await c.xinfo('GROUPS', 'x:0')) as unknown[];
      expect(groups).toHaveLength(1);
    } finally {
      c.disconnect();
    }
  });

  it('the dump loads with stock `redis-cli --pipe` (password through REDISCLI_AUTH)', async () => {
    const t0 = performance.now();
    const r = await execa('redis-cli', ['-h', dstPipe.host, '-p', String(dstPipe.port), '--pipe'], {
      inputFile: dumpFile,
      env: { REDISCLI_AUTH: DST_PASSWORD },
      reject: false,
    });
    timings.push(`redis-cli --pipe restore: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/errors: 0, replies: \d+/);
    await expectSameAsSource(dstPipe);
  });

  it('without --replace refuses before writing when a key exists; --replace overwrites; --flush empties first', async () => {
    const sink = new FileSink(tempDir('redis-db3'));
    const out = await engine.backup(
      { source: redisEndpoint(src), type: 'logical', selection: { databases: ['3'], all: false, tables: [], match: 'ts:*' }, sink },
      runCtx(tempDir('redis-task')),
    );
    expect(out.facts).toMatchObject({ databases: ['3'], keys: { '3': 30_000 }, totalKeys: 30_000, match: 'ts:*' });
    const reader = await readerOf(sink.stored[0].file);
    const c = client(dstMisc, 3);
    try {
      await c.set('ts:5', 'not from the backup');
      const req = { target: redisEndpoint(dstMisc), type: 'logical' as const, selection: all, facts: out.facts, artifacts: [reader] };
      const e = await expectCode(engine.restore({ ...req, options: {} }, runCtx(tempDir('redis-task'))), 'ALREADY_EXISTS');
      expect(e.message).toContain('ts:5');
      expect(e.message).toContain('nothing was written');
      expect(e.hint).toContain('--replace');
      expect(await c.dbsize()).toBe(1);
      // Same without facts: the check still runs (it reads the dump once more).
      await expectCode(engine.restore({ ...req, facts: {}, options: {} }, runCtx(tempDir('redis-task'))), 'ALREADY_EXISTS');
      expect(await c.dbsize()).toBe(1);

      const r = await engine.restore({ ...req, options: { replace: true } }, runCtx(tempDir('redis-task')));
      expect(r.facts['keys']).toBe(30_000);
      expect(await c.get('ts:5')).toBe('value-5');
      expect(await c.dbsize()).toBe(30_000);

      await c.set('extra', 'x');
      await c.select(0);
      await c.set('db0-untouched', 'y');
      const f = await engine.restore({ ...req, options: { flush: true } }, runCtx(tempDir('redis-task')));
      expect(f.facts['flushed']).toEqual(['3']);
      expect(await c.get('db0-untouched')).toBe('y');
      await c.select(3);
      expect(await c.exists('extra')).toBe(0);
      expect(await c.dbsize()).toBe(30_000);
    } finally {
      c.disconnect();
    }
  });

  it('a one-database backup restores into the database the target URL names; several databases cannot', async () => {
    const sink = new FileSink(tempDir('redis-db3b'));
    const out = await engine.backup(
      { source: redisEndpoint(src, { db: '3' }), type: 'logical', selection: { databases: [], all: false, tables: [] }, sink },
      runCtx(tempDir('redis-task')),
    );
    expect(out.facts['databases']).toEqual(['3']);
    const reader = await readerOf(sink.stored[0].file);
    const r = await engine.restore(
      { target: redisEndpoint(dstMisc, { db: '5' }), type: 'logical', selection: all, facts: out.facts, artifacts: [reader], options: {} },
      runCtx(tempDir('redis-task')),
    );
    expect(r.facts['keysByDb']).toEqual({ '5': counts['3'] });
    const want = await dbDigest(src, 3);
    expect(want).toHaveLength(counts['3']);
    expect(await dbDigest(dstMisc, 5)).toEqual(want);

    const both = await readerOf(dumpFile);
    const e = await expectCode(
      engine.restore({ target: redisEndpoint(dstMisc, { db: '6' }), type: 'logical', selection: all, facts: { databases: ['0', '3'] }, artifacts: [both], options: {} }, runCtx(tempDir('redis-task'))),
      'INVALID_ARGUMENT',
    );
    expect(e.message).toContain('0, 3');
    await expectCode(
      engine.restore({ target: redisEndpoint(dstMisc, { db: '99' }), type: 'logical', selection: all, facts: out.facts, artifacts: [reader], options: {} }, runCtx(tempDir('redis-task'))),
      'INVALID_ARGUMENT',
    );
    // Payloads of a newer RDB format than the target reads: refused before anything is written.
    const tooNew = await expectCode(
      engine.restore({ target: redisEndpoint(dstMisc, { db: '8' }), type: 'logical', selection: all, facts: { ...out.facts, rdbVersion: 11, serverVersion: '7.2.4' }, artifacts: [reader], options: { flush: true } }, runCtx(tempDir('redis-task'))),
      'RESTORE_FAILED',
    );
    expect(tooNew.message).toContain('nothing was written');
    // Without facts, the second SELECT of the stream stops it.
    await expectCode(
      engine.restore({ target: redisEndpoint(dstMisc, { db: '7' }), type: 'logical', selection: all, facts: {}, artifacts: [both], options: { flush: true } }, runCtx(tempDir('redis-task'))),
      'INVALID_ARGUMENT',
    );
  });

  it('snapshot: redis-cli --rdb (ACL user), checked, restored as dump.rdb that a server loads', async () => {
    const sink = new FileSink(tempDir('redis-rdb'));
    const logs: string[] = [];
    const t0 = performance.now();
    const out = await engine.backup(
      { source: redisEndpoint(src, { user: ACL_USER, password: ACL_PASSWORD }), type: 'snapshot', selection: all, sink },
      runCtx(tempDir('redis-task'), logs),
    );
    timings.push(`snapshot backup: ${((performance.now() - t0) / 1000).toFixed(2)} s, ${(sink.stored[0].rawBytes / 1e6).toFixed(1)} MB RDB`);
    expect(sink.stored[0].name).toBe('dump.rdb');
    expect(out.facts).toMatchObject({ serverVersion: src.version, checked: true, rdbBytes: sink.stored[0].rawBytes, totalKeys: counts['0'] + counts['3'] });
    expect(out.toolName).toBe('redis-cli');
    expect(logs.join('\n')).toContain('Transfer finished with success');
    expect((await checkRdb(sink.stored[0].file)).ok).toBe(true);

    const reader = await readerOf(sink.stored[0].file);
    const req = { target: redisEndpoint(dstRdb), type: 'snapshot' as const, selection: all, facts: out.facts, artifacts: [reader] };
    const e = await expectCode(engine.restore({ ...req, options: {} }, runCtx(tempDir('redis-task'))), 'INVALID_ARGUMENT');
    expect(e.hint).toContain('--to-dir');

    const r = await engine.restore({ ...req, options: { toPath: dstRdb.dir } }, runCtx(tempDir('redis-task')));
    expect(r.facts).toMatchObject({ path: join(dstRdb.dir, 'dump.rdb'), checked: true, keys: counts['0'] + counts['3'] });
    expect(r.bytes).toBe(sink.stored[0].rawBytes);
    await expectCode(engine.restore({ ...req, options: { toPath: dstRdb.dir } }, runCtx(tempDir('redis-task'))), 'ALREADY_EXISTS');
    await engine.restore({ ...req, options: { toPath: dstRdb.dir, replace: true } }, runCtx(tempDir('redis-task')));

    await dstRdb.restart(); // loads dump.rdb from its dir
    await expectSameAsSource(dstRdb);
  });

  it('checkRdb refuses a truncated or damaged RDB', async () => {
    const d = tempDir('redis-trunc');
    const good = join(d, 'good.rdb');
    const sink = new FileSink(d);
    await engine.backup({ source: redisEndpoint(src), type: 'snapshot', selection: all, sink }, runCtx(tempDir('redis-task')));
    await copyFile(sink.stored[0].file, good);
    const size = (await stat(good)).size;

    const cut = join(d, 'cut.rdb');
    await copyFile(good, cut);
    await truncate(cut, Math.floor(size / 2));
    const c1 = await checkRdb(cut);
    expect(c1.ok).toBe(false);
    expect(c1.tail.join('\n')).toMatch(/RDB ERROR|Unexpected EOF|error/i);

    const flipped = join(d, 'flipped.rdb');
    const buf = await readFile(good);
    buf[Math.floor(size * 0.7)] ^= 0xff;
    await writeFile(flipped, buf);
    expect((await checkRdb(flipped)).ok).toBe(false);

    const empty = join(d, 'empty.rdb');
    await writeFile(empty, '');
    expect((await checkRdb(empty)).ok).toBe(false);

    // A damaged stored RDB is refused on restore too, and leaves no dump.rdb behind.
    const to = join(d, 'restore-here');
    await mkdir(to);
    const e = await expectCode(
      engine.restore({ target: redisEndpoint(dstRdb), type: 'snapshot', selection: all, facts: {}, artifacts: [await readerOf(cut, 'dump.rdb')], options: { toPath: to } }, runCtx(tempDir('redis-task'))),
      'RESTORE_FAILED',
    );
    expect(e.message).toContain('redis-check-rdb');
    await expect(stat(join(to, 'dump.rdb'))).rejects.toThrow();
  });

  it('an error in the middle of a logical dump errors the stream: nothing is stored', async () => {
    const admin = client(src);
    const d = tempDir('redis-cut');
    let killed = false;
    const sink = new FileSink(d, async (n) => {
      if (n === 3 && !killed) {
        killed = true;
        const list = String(await admin.call('CLIENT', 'LIST'));
        const ids = list.split('\n').filter((l) => / name=dbs-backup /.test(l)).map((l) => /id=(\d+)/.exec(l)![1]);
        expect(ids).toHaveLength(1);
        await admin.call('CLIENT', 'KILL', 'ID', ids[0]);
      }
    });
    try {
      const req: RedisBackupRequest = { source: redisEndpoint(src), type: 'logical', selection: all, sink };
      const e = await p(engine.backup(req, runCtx(tempDir('redis-task'))));
      expect(e).toBeInstanceOf(DbsError);
      expect(['SOURCE_UNREACHABLE', 'BACKUP_FAILED']).toContain((e as DbsError).code);
      expect(killed).toBe(true);
      expect(sink.stored).toHaveLength(0);
      await expect(stat(join(d, 'dump.resp'))).rejects.toThrow();
    } finally {
      admin.disconnect();
    }
    async function p(x: Promise<unknown>): Promise<unknown> {
      return x.then(
        () => undefined,
        (err: unknown) => err,
      );
    }
  });

  it('an abort stops a backup and a restore (INTERRUPTED)', async () => {
    const ac = new AbortController();
    const sink = new FileSink(tempDir('redis-abort'), (n) => {
      if (n === 3) ac.abort();
    });
    await expectCode(engine.backup({ source: redisEndpoint(src), type: 'logical', selection: all, sink }, runCtx(tempDir('redis-task'), [], ac.signal)), 'INTERRUPTED');
    expect(sink.stored).toHaveLength(0);

    const ac2 = new AbortController();
    const reader = await readerOf(dumpFile);
    const open = reader.open;
    let chunks = 0;
    reader.open = async () => {
      const counting = new Transform({
        transform(c: Buffer, _e, cb) {
          if (++chunks === 20) ac2.abort();
          cb(null, c);
        },
      });
      return (await open()).pipe(counting);
    };
    const target = await startRedis();
    try {
      await expectCode(
        engine.restore({ target: redisEndpoint(target), type: 'logical', selection: all, facts: {}, artifacts: [reader], options: {} }, runCtx(tempDir('redis-task'), [], ac2.signal)),
        'INTERRUPTED',
      );
      const c = client(target);
      try {
        expect(await c.dbsize()).toBeLessThan(counts['0']);
      } finally {
        c.disconnect();
      }
    } finally {
      await target.stop();
    }
  });

  it('bad input: nothing listening, wrong or missing password, database out of range', async () => {
    const sig = new AbortController().signal;
    const port = await freePort();
    const down = await expectCode(engine.probe({ kind: 'redis', url: `redis://127.0.0.1:${port}`, host: '127.0.0.1', port, params: {} }, all, { signal: sig }), 'SOURCE_UNREACHABLE');
    expect(down.message).toContain(`127.0.0.1:${port}`);
    expect(down.hint).toBeTruthy();
    await expectCode(
      engine.backup({ source: { kind: 'redis', url: `redis://127.0.0.1:${port}`, host: '127.0.0.1', port, params: {} }, type: 'logical', selection: all, sink: new FileSink(tempDir('x')) }, runCtx(tempDir('redis-task'))),
      'SOURCE_UNREACHABLE',
    );
    await expectCode(
      engine.backup({ source: { kind: 'redis', url: `redis://127.0.0.1:${port}`, host: '127.0.0.1', port, params: {} }, type: 'snapshot', selection: all, sink: new FileSink(tempDir('x')) }, runCtx(tempDir('redis-task'))),
      'SOURCE_UNREACHABLE',
    );

    const wrong = 'wrong-Pa55word-0x12345678';
    const auth = await expectCode(engine.probe(redisEndpoint(src, { password: wrong }), all, { signal: sig }), 'SOURCE_AUTH');
    expect(auth.hint).toMatch(/--password-env|--password-file/);
    noSecret(auth, wrong, SRC_PASSWORD);
    const noauth = await expectCode(engine.probe(redisEndpoint(src, { password: null }), all, { signal: sig }), 'SOURCE_AUTH');
    expect(noauth.message).toMatch(/NOAUTH/);
    expect(noauth.hint).toContain('requires a password');
    const snapAuth = await expectCode(
      engine.backup({ source: redisEndpoint(src, { password: wrong }), type: 'snapshot', selection: all, sink: new FileSink(tempDir('x')) }, runCtx(tempDir('redis-task'))),
      'SOURCE_AUTH',
    );
    noSecret(snapAuth, wrong, SRC_PASSWORD);
    const restAuth = await expectCode(
      engine.restore({ target: redisEndpoint(dstEngine, { password: wrong }), type: 'logical', selection: all, facts: {}, artifacts: [await readerOf(dumpFile)], options: {} }, runCtx(tempDir('redis-task'))),
      'SOURCE_AUTH',
    );
    noSecret(restAuth, wrong, DST_PASSWORD);

    // A password for a server that has none is refused the same way by both paths.
    const extra = await expectCode(engine.probe(redisEndpoint(dstMisc, { password: wrong }), all, { signal: sig }), 'SOURCE_AUTH');
    expect(extra.message).toContain('has no password');
    noSecret(extra, wrong);
    await expectCode(
      engine.backup({ source: redisEndpoint(dstMisc, { password: wrong }), type: 'snapshot', selection: all, sink: new FileSink(tempDir('x')) }, runCtx(tempDir('redis-task'))),
      'SOURCE_AUTH',
    );

    await expectCode(
      engine.backup({ source: redisEndpoint(src), type: 'logical', selection: { databases: ['zero'], all: false, tables: [] }, sink: new FileSink(tempDir('x')) }, runCtx(tempDir('redis-task'))),
      'INVALID_ARGUMENT',
    );
    const sink = new FileSink(tempDir('x'));
    const range = await expectCode(
      engine.backup({ source: redisEndpoint(src), type: 'logical', selection: { databases: ['99'], all: false, tables: [] }, sink }, runCtx(tempDir('redis-task'))),
      'SOURCE_NOT_FOUND',
    );
    expect(range.message).toContain('database 99 does not exist (the server has 16)');
    expect(sink.stored).toHaveLength(0);
  });
});
