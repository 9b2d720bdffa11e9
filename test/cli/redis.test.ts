// Redis through the CLI: logical and snapshot plans, restores through dbs and through stock
// redis-cli --pipe from the pool's own file, and bad input. Private servers only.
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createZstdDecompress } from 'node:zlib';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { freePort, waitFor } from '../support/ports.js';
import { tempDir } from '../support/testbed.js';

const PW = 'redis-cli-test-pw-4242';
let src: RedisServer;
let home: string;
let pool: string;
const env = { RPW: PW };
const url = (s: RedisServer, db = '') => `redis://127.0.0.1:${s.port}${db}`;
const client = (s: RedisServer, db = 0) => new Redis({ host: '127.0.0.1', port: s.port, db, password: s.password, maxRetriesPerRequest: 1 });

/** A db's DEBUG DIGEST (content of every key), its size and the absolute expiry of its TTL keys. */
async function snapshot(s: { port: number; password?: string }, db: number) {
  const c = new Redis({ host: '127.0.0.1', port: s.port, db, password: s.password, maxRetriesPerRequest: 1 });
  try {
    const digest = String(await c.call('DEBUG', 'DIGEST'));
    const size = await c.dbsize();
    const p = c.pipeline();
    for (let i = 0; i < 1000; i++) p.call('PEXPIRETIME', `ttl:${i}`);
    const ttls = ((await p.exec()) ?? []).map(([, v]) => Number(v));
    return { digest, size, ttls };
  } finally {
    c.disconnect();
  }
}

beforeAll(async () => {
  src = await startRedis({ password: PW });
  const c0 = client(src, 0);
  const c2 = client(src, 2);
  const p = c0.pipeline();
  for (let i = 0; i < 20000; i++) p.set(`s:${i}`, `value ${i} ✓`);
  for (let i = 0; i < 2000; i++) p.hset(`h:${i}`, { a: String(i), b: Buffer.from([0, 255, i & 255]) });
  for (let i = 0; i < 2000; i++) p.rpush(`l:${i}`, 'x', 'y', String(i));
  for (let i = 0; i < 1000; i++) p.sadd(`set:${i}`, 'a', 'b', String(i));
  for (let i = 0; i < 1000; i++) p.zadd(`z:${i}`, 1, 'one', i, 'n');
  for (let i = 0; i < 1000; i++) p.set(`ttl:${i}`, 'soon', 'EX', 3600 + i);
  p.xadd('stream', '*', 'f', 'v');
  p.set(Buffer.from([0, 1, 2, 255, 13, 10]), Buffer.from([255, 0, 13, 10]));
  await p.exec();
  await c2.set('other-db', 'yes');
  c0.disconnect();
  c2.disconnect();
  home = tempDir('home');
  pool = tempDir('pool');
  expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home })).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await src?.stop();
});

describe('redis logical', () => {
  it('backs up every db and restores into another server with equal keys, values and TTLs', async () => {
    const c = await dbs(['--json', 'plan', 'create', 'cache', '--source', url(src), '--password-env', 'RPW', '--pool', 'p', '--type', 'logical'], { home, env });
    expect(c.code, c.stderr).toBe(0);
    const r = await dbs(['--json', 'plan', 'run', 'cache'], { home, env });
    expect(r.code, r.stderr).toBe(0);
    const b = r.json().backup;
    expect(b.manifest.facts.totalKeys).toBe(27003);
    expect(b.manifest.artifacts[0].name).toBe('dump.resp.zst');
    expect(JSON.stringify(b.manifest)).not.toContain(PW);

    const dst = await startRedis();
    try {
      const rs = await dbs(['--json', 'backup', 'restore', b.id, '--to', url(dst)], { home });
      expect(rs.code, rs.stderr).toBe(0);
      for (const db of [0, 2]) expect(await snapshot(dst, db)).toEqual(await snapshot(src, db));
      // Without --replace an existing key is refused before anything is written.
      const again = await dbs(['backup', 'restore', b.id, '--to', url(dst)], { home });
      expect(again.code).toBe(4);
      expect(again.stderr).toMatch(/--replace|--flush/);
      expect((await dbs(['backup', 'restore', b.id, '--to', url(dst), '--flush'], { home })).code).toBe(0);
    } finally {
      await dst.stop();
    }

    // The artifact in the pool loads with stock tools: zstd -d | redis-cli --pipe.
    const art = join(pool, 'dbs', 'backups', c.json().plan.id, b.id, 'dump.resp.zst');
    const third = await startRedis();
    try {
      const pipe = execa('redis-cli', ['-h', '127.0.0.1', '-p', String(third.port), '--pipe']);
      createReadStream(art).pipe(createZstdDecompress()).pipe(pipe.stdin!);
      const out = await pipe;
      expect(String(out.stdout)).toMatch(/errors: 0, replies: \d+/);
      for (const db of [0, 2]) expect(await snapshot(third, db)).toEqual(await snapshot(src, db));
    } finally {
      await third.stop();
    }
  });
});

describe('redis snapshot', () => {
  it('stores a checked RDB and restores it into a directory a server can load', async () => {
    expect((await dbs(['plan', 'create', 'rdb', '--source', url(src), '--password-env', 'RPW', '--pool', 'p', '--type', 'snapshot'], { home, env })).code).toBe(0);
    const r = await dbs(['--json', 'plan', 'run', 'rdb'], { home, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().backup.manifest.facts.checked).toBe(true);
    const dir = tempDir('rdb');
    const rs = await dbs(['backup', 'restore', r.json().backup.id, '--to-dir', dir], { home });
    expect(rs.code, rs.stderr).toBe(0);
    expect(rs.stdout).toMatch(/To load it:/);
    expect(existsSync(join(dir, 'dump.rdb'))).toBe(true);
    // A server started on that directory loads the RDB: same data as the source.
    const port = await freePort();
    const server = execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local'], { reject: false });
    try {
      await waitFor(async () => {
        const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        c.on('error', () => undefined);
        try {
          await c.connect();
          return (await c.ping()) === 'PONG';
        } finally {
          c.disconnect();
        }
      }, { what: 'redis-server on the restored dir' });
      for (const db of [0, 2]) expect(await snapshot({ port }, db)).toEqual(await snapshot(src, db));
    } finally {
      server.kill('SIGKILL');
      await server;
    }
    const again = await dbs(['backup', 'restore', r.json().backup.id, '--to-dir', dir], { home });
    expect(again.code).toBe(4);
  });
});

describe('redis bad input', () => {
  it.each([
    ['redis down', (s: RedisServer) => ['--source', 'redis://127.0.0.1:9'], {}, 6, /127\.0\.0\.1:9/],
    ['wrong password', (s: RedisServer) => ['--source', url(s), '--password-env', 'X'], { X: 'wrong-password-1' }, 7, /auth|password/i],
    ['NOAUTH: no password given', (s: RedisServer) => ['--source', url(s)], {}, 7, /auth|password/i],
    ['db index out of range', (s: RedisServer) => ['--source', url(s, '/99'), '--password-env', 'RPW'], env, 3, /99/],
  ] as const)('%s', async (_n, args, e, code, msg) => {
    const r = await dbs(['plan', 'create', `bad-${Math.random().toString(16).slice(2, 6)}`, '--pool', 'p', ...args(src)], { home, env: e });
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).toMatch(/hint:/);
    expect(r.stderr).not.toContain('wrong-password-1');
    expect(r.stderr).not.toContain(PW);
  });
});
