// Leftovers after faults, with the real binary, real servers and real kills:
//   - plan locks are leases: a lock of another host (which `kill -0` cannot check) is stale
//     once its lease expired; `dbs plan unlock`; the holder's heartbeat;
//   - every program dbs starts dies with it (SIGKILL of dbs while mariadb-dump waits on a
//     metadata lock), and recovery ends the ones that survived anyway;
//   - a frozen S3 endpoint fails the task (exit 6) within the documented time.
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { execa, type ResultPromise } from 'execa';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/catalog.js';
import { dbs } from '../support/cli.js';
import { bigSqlite } from '../support/fixtures.js';
import { childrenOf, pidAlive } from '../support/ports.js';
import { mysqlConn, queryRows, servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('mariadb', 's3'));

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;
const tag = randomBytes(3).toString('hex');
const DB = `faults_${tag}`;
const USER = `dbsf_${tag}`;
const PW = `pw-${randomBytes(8).toString('hex')}`;
let root: Connection;
let home: string;
const env = () => ({ DB_PW: PW, S3_SECRET: testbed().s3.secretKey });
const run = (args: string[], extraEnv: Record<string, string> = {}) => dbs(args, { home, env: { ...env(), ...extraEnv } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | Promise<T>, ms = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

function src(): string {
  return `mysql://${USER}@127.0.0.1:${testbed().mariadb.port}`;
}

async function planId(name: string): Promise<string> {
  return (await run(['--json', 'plan', 'show', name])).json().id as string;
}

/** The catalog as another dbs process (on another host) would write it. */
function rawCatalog(): Database {
  const db = new Database(join(home, 'catalog.db'));
  db.pragma('busy_timeout = 5000');
  return db;
}

interface LockRow {
  name: string;
  pid: number;
  host: string;
  acquired_at: string;
  heartbeat_at: string | null;
  expires_at: string | null;
}
function lockRow(id: string): LockRow | undefined {
  const db = rawCatalog();
  try {
    return db.prepare('SELECT * FROM locks WHERE name = ?').get(`plan:${id}`) as LockRow | undefined;
  } finally {
    db.close();
  }
}

/** Writes a lock row of a foreign holder (another host name), and its running task. */
function fakeForeignHolder(id: string, name: string, o: { host: string; pid: number; expiresInMs: number }): string {
  const now = Date.now();
  const db = rawCatalog();
  try {
    db.prepare('INSERT OR REPLACE INTO locks (name, pid, host, owner, acquired_at, heartbeat_at, expires_at, pid_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      `plan:${id}`,
      o.pid,
      o.host,
      `task of plan ${name}`,
      new Date(now - 600_000).toISOString(),
      new Date(now + o.expiresInMs - 60_000).toISOString(),
      new Date(now + o.expiresInMs).toISOString(),
      'pid:[4026531836]',
    );
  } finally {
    db.close();
  }
  const catalog = Catalog.open(home);
  try {
    const taskId = `task-${randomBytes(5).toString('hex')}`;
    catalog.insertTask({ id: taskId, planId: id, planName: name, trigger: 'schedule', status: 'running', queuedAt: new Date(now - 600_000).toISOString(), startedAt: new Date(now - 600_000).toISOString(), pid: o.pid, host: o.host });
    return taskId;
  } finally {
    catalog.close();
  }
}

async function events(plan: string): Promise<{ type: string; message: string }[]> {
  return (await run(['--json', 'events', '--plan', plan])).json();
}

async function task(id: string) {
  return (await run(['--json', 'task', 'show', id])).json();
}

/** Connections of the backup user on the server (the dump's, dbs's own). */
async function connectionsOfUser(): Promise<{ id: number; state: string; info: string | null }[]> {
  const rows = await queryRows<{ id: number; state: string; info: string | null }>(root, 'SELECT id, state, info FROM information_schema.processlist WHERE user = ?', [USER]);
  return rows;
}

/** Waits until the backup user's dump waits for the metadata lock of `t`. */
async function dumpBlocked(): Promise<void> {
  await until('mariadb-dump waiting on the metadata lock', async () => (await connectionsOfUser()).some((r) => /metadata lock/.test(r.state) && /SELECT/.test(r.info ?? '')), 30_000);
}


function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function startRun(plan: string, extraEnv: Record<string, string> = {}): ResultPromise<{ reject: false }> {
  return execa(process.execPath, [BIN, '--home', home, '--json', 'plan', 'run', plan], { env: { ...env(), ...extraEnv }, extendEnv: true, reject: false });
}

/** Holds LOCK TABLES t WRITE in its own connection until released. */
async function lockTable(): Promise<{ release(): Promise<void> }> {
  const c = await mysqlConn(testbed().mariadb);
  await c.query(`LOCK TABLES \`${DB}\`.t WRITE`);
  let done = false;
  return {
    async release() {
      if (done) return;
      done = true;
      await c.query('UNLOCK TABLES').catch(() => undefined);
      await c.end();
    },
  };
}

beforeAll(async () => {
  root = await mysqlConn(testbed().mariadb);
  await root.query(`CREATE DATABASE \`${DB}\``);
  await root.query(`CREATE TABLE \`${DB}\`.t (id INT PRIMARY KEY, pad CHAR(100)) SELECT seq AS id, MD5(seq) AS pad FROM \`${DB}\`.seq_1_to_20000`);
  await root.query(`CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW}'`);
  await root.query(`GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'127.0.0.1'`);
  home = tempDir('home');
  const s3 = testbed().s3;
  expect((await run(['pool', 'bind', 'local', '--type', 'local', '--path', tempDir('pool')])).code).toBe(0);
  const b = await run(['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `faults-${tag}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
  expect(b.code, b.stderr).toBe(0);
  for (const pool of ['local', 's3']) {
    const c = await run(['plan', 'create', `my-${pool}`, '--source', src(), '--password-env', 'DB_PW', '--pool', pool, '--databases', DB]);
    expect(c.code, c.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await root?.query(`DROP DATABASE IF EXISTS \`${DB}\``).catch(() => undefined);
  await root?.query(`DROP USER IF EXISTS '${USER}'@'127.0.0.1'`).catch(() => undefined);
  await root?.end();
});

describe('plan locks are leases across hosts', () => {
  it('an expired lock of another host is taken over by plan run: event, its task interrupted, lock released after', async () => {
    const id = await planId('my-local');
    const stale = fakeForeignHolder(id, 'my-local', { host: 'backup-cronjob-28937461-x7k2p', pid: 7, expiresInMs: -30_000 });
    const r = await run(['--json', 'plan', 'run', 'my-local']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().task.status).toBe('succeeded');
    const takeover = (await events('my-local')).find((e) => e.type === 'lock.takeover');
    expect(takeover?.message).toMatch(/pid 7 on backup-cronjob-28937461-x7k2p/);
    expect(takeover?.message).toMatch(/lease .* expired at/);
    expect(await task(stale)).toMatchObject({ status: 'interrupted', errorCode: 'INTERRUPTED' });
    expect(lockRow(id)).toBeUndefined();
  });

  it('a live lock of another host: plan run exits 5 naming host, pid and expiry, and runs nothing', async () => {
    const id = await planId('my-local');
    const before = (await run(['--json', 'task', 'list', '--plan', 'my-local'])).json().length;
    fakeForeignHolder(id, 'my-local', { host: 'backup-cronjob-28937462-q9z1m', pid: 12, expiresInMs: 45_000 });
    const expires = lockRow(id)!.expires_at!;
    const r = await execa(process.execPath, [BIN, '--home', home, 'plan', 'run', 'my-local'], { env: env(), reject: false });
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toMatch(/locked by task of plan my-local \(pid 12 on host backup-cronjob-28937462-q9z1m/);
    expect(r.stderr).toContain(`lease expires ${expires}`);
    expect(r.stderr).toMatch(/hint: .*lease expires .*dbs plan unlock PLAN --force/);
    expect((await run(['--json', 'task', 'list', '--plan', 'my-local'])).json()).toHaveLength(before + 1); // only the fake one
    expect(lockRow(id)).toMatchObject({ host: 'backup-cronjob-28937462-q9z1m', pid: 12, expires_at: expires });
    // --json: the holder in the error's details
    const j = await run(['--json', 'plan', 'run', 'my-local']);
    expect(j.code).toBe(5);
    expect(JSON.parse(j.stderr.trim().split('\n').at(-1)!)).toMatchObject({ type: 'error', code: 'LOCKED', exitCode: 5, details: { holder: { host: 'backup-cronjob-28937462-q9z1m', pid: 12, expiresAt: expires } } });
    rawCatalog().prepare('DELETE FROM locks').run();
  });

  it('plan unlock: removes dead locks, refuses live holders (here always, elsewhere unless --force), records events', async () => {
    const id = await planId('my-local');
    const gone = execa('true');
    await gone;
    const dead = gone.pid!;
    const cases: { name: string; holder?: () => string | undefined; args: string[]; code: number; kept: boolean; event?: string; message?: RegExp }[] = [
      { name: 'no lock', args: [], code: 0, kept: false, message: /is not locked/ },
      { name: 'dead pid on this host', holder: () => fakeLocal(id, dead), args: [], code: 0, kept: false, event: 'lock.removed' },
      { name: 'live pid on this host', holder: () => fakeLocal(id, process.pid), args: [], code: 4, kept: true, message: /which is running/ },
      { name: 'live pid on this host, --force', holder: () => fakeLocal(id, process.pid), args: ['--force'], code: 4, kept: true, message: /hint: .*kill/ },
      { name: 'live lease of another host', holder: () => fakeForeignHolder(id, 'my-local', { host: 'pod-a', pid: 3, expiresInMs: 60_000 }), args: [], code: 4, kept: true, message: /lease .*--force/s },
      { name: 'live lease of another host, --force', holder: () => fakeForeignHolder(id, 'my-local', { host: 'pod-a', pid: 3, expiresInMs: 60_000 }), args: ['--force'], code: 0, kept: false, event: 'lock.forced' },
      { name: 'expired lease of another host', holder: () => fakeForeignHolder(id, 'my-local', { host: 'pod-b', pid: 4, expiresInMs: -1 }), args: [], code: 0, kept: false, event: 'lock.removed' },
    ];
    for (const c of cases) {
      rawCatalog().prepare('DELETE FROM locks').run();
      const taskId = c.holder?.();
      const before = (await events('my-local')).length;
      const r = await run(['plan', 'unlock', 'my-local', ...c.args]);
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(c.code);
      if (c.message) expect(r.stdout + r.stderr, c.name).toMatch(c.message);
      expect(lockRow(id) !== undefined, c.name).toBe(c.kept);
      const es = await events('my-local');
      if (c.event) {
        expect(es[0]?.type, c.name).toBe(c.event);
        if (taskId?.startsWith('task-')) expect((await task(taskId)).status, c.name).toBe('interrupted');
      } else expect(es.length, c.name).toBe(before);
    }
    rawCatalog().prepare('DELETE FROM locks').run();
    const missing = await run(['plan', 'unlock', 'no-such-plan']);
    expect(missing.code).toBe(3);
  });

  it('the holder renews its lease during a long run; a second run is refused; a lost lock stops the run', async () => {
    const id = await planId('my-local');
    const lease = { DBS_LOCK_LEASE: '2' }; // heartbeat every 0.5 s
    const t = await lockTable();
    try {
      const child = startRun('my-local', lease);
      await dumpBlocked();
      const seen = new Set<string>();
      const end = Date.now() + 2600;
      while (Date.now() < end) {
        const l = lockRow(id);
        expect(l?.pid).toBe(child.pid);
        expect(Date.parse(l!.expires_at!) - Date.parse(l!.heartbeat_at!)).toBe(2000);
        expect(Date.parse(l!.expires_at!)).toBeGreaterThan(Date.now() - 200);
        seen.add(l!.heartbeat_at!);
        await sleep(100);
      }
      expect(seen.size).toBeGreaterThanOrEqual(4);
      const second = await run(['plan', 'run', 'my-local'], lease);
      expect(second.code).toBe(5);
      expect(second.stderr).toMatch(new RegExp(`pid ${child.pid} on this host`));
      expect((await run(['plan', 'unlock', 'my-local', '--force'])).code).toBe(4);
      await t.release();
      const r = await child;
      expect(r.exitCode, r.stderr).toBe(0);
      expect(lockRow(id)).toBeUndefined();
    } finally {
      await t.release();
    }
    // The lock disappears under a running task (another host forced it away): the run stops.
    const t2 = await lockTable();
    try {
      const child = startRun('my-local', lease);
      await dumpBlocked();
      const started = Date.now();
      rawCatalog().prepare('DELETE FROM locks').run();
      const r = await child;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r.exitCode).toBe(5);
      expect(r.stderr).toMatch(/lost its lock/);
      const last = (await run(['--json', 'task', 'list', '--plan', 'my-local'])).json()[0];
      expect(last).toMatchObject({ status: 'failed', errorCode: 'LOCKED', backupId: null });
      await until('the dump connection gone', async () => (await connectionsOfUser()).length === 0, 5000);
    } finally {
      await t2.release();
    }
  });

  it('a daemon whose lock another process took over stops', async () => {
    const d = execa(process.execPath, [BIN, '--home', home, 'daemon', '--reload', '0.2'], { env: { ...env(), DBS_LOCK_LEASE: '2' }, reject: false });
    const out = collect(d);
    try {
      await until('the daemon started', () => out.text.includes('"event":"daemon.started"'), 20_000);
      const db = rawCatalog();
      try {
        expect(db.prepare("SELECT pid FROM locks WHERE name = 'daemon'").get()).toEqual({ pid: d.pid });
        db.prepare("UPDATE locks SET pid = 99, host = 'other-host', acquired_at = ? WHERE name = 'daemon'").run(new Date().toISOString());
      } finally {
        db.close();
      }
      const r = await Promise.race([d, sleep(10_000).then(() => undefined)]);
      expect(r, 'the daemon did not stop').toBeDefined();
      expect(out.text).toContain('"event":"daemon.lock-lost"');
      const db2 = rawCatalog();
      try {
        expect(db2.prepare("SELECT pid, host FROM locks WHERE name = 'daemon'").get()).toEqual({ pid: 99, host: 'other-host' }); // not released: not its lock
      } finally {
        db2.close();
      }
    } finally {
      d.kill('SIGKILL');
      await d;
      rawCatalog().prepare("DELETE FROM locks WHERE name = 'daemon'").run();
    }
  });
});

/** A lock row as a dbs process on this host would write it. */
function fakeLocal(id: string, pid: number): undefined {
  const db = rawCatalog();
  try {
    const ns = readlinkSync('/proc/self/ns/pid');
    const now = new Date().toISOString();
    db.prepare('INSERT OR REPLACE INTO locks (name, pid, host, owner, acquired_at, heartbeat_at, expires_at, pid_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(`plan:${id}`, pid, hostname(), 'task of plan my-local', now, now, now, ns);
  } finally {
    db.close();
  }
  return undefined;
}

describe('programs die with dbs', () => {
  for (const pool of ['local', 's3'] as const) {
    it(`SIGKILL of dbs while mariadb-dump waits on a metadata lock (${pool} pool): no dump or compressor survives, no connection of the backup user`, async () => {
      const t = await lockTable();
      try {
        const child = startRun(`my-${pool}`, { AWS_SECRET_ACCESS_KEY: 'not-for-tools', SOME_TOKEN: 'not-for-tools' });
        await dumpBlocked();
        const kids = await until('the dump and its compressor', () => {
          const k = childrenOf(child.pid!);
          return k.some((x) => /dump/.test(x.comm)) && k.some((x) => /zstd/.test(x.comm)) ? k : undefined;
        });
        const envs = kids.map((k) => ({ ...k, env: environOf(k.pid) }));
        expect((await connectionsOfUser()).length).toBeGreaterThan(0);
        child.kill('SIGKILL');
        await child;
        await until('every child of dbs gone', () => kids.every((k) => !pidAlive(k.pid)), 3000);
        await until('no connection of the backup user', async () => (await connectionsOfUser()).length === 0, 3000);
        // Only what the tools need reached them: no password, no key, but the marker.
        const dumpEnv = envs.find((x) => /dump/.test(x.comm))!.env;
        expect(dumpEnv.DBS_PARENT).toMatch(new RegExp(`^${child.pid}:\\d+$`));
        expect(dumpEnv.DBS_TASK).toMatch(/^task-/);
        for (const k of envs) {
          expect(Object.keys(k.env), k.comm).not.toContain('DB_PW');
          expect(Object.values(k.env).join('\n'), k.comm).not.toContain(PW);
          expect(Object.values(k.env), k.comm).not.toContain('not-for-tools');
        }
      } finally {
        await t.release();
      }
    });
  }

  for (const entry of ['plan run --due', 'daemon'] as const) {
    it(`recovery (${entry}) ends the children a dead dbs left running (here: no death signal)`, async () => {
      // A setpriv that runs the program without the death signal: the children survive, as
      // they would where setpriv is missing or in the instant before the signal is set.
      const fake = tempDir('nosetpriv');
      writeFileSync(join(fake, 'setpriv'), '#!/bin/sh\n# drops "--pdeathsig KILL --"\nshift 3\nexec "$@"\n', { mode: 0o755 });
      const t = await lockTable();
      try {
        const child = startRun('my-s3', { PATH: `${fake}:${process.env.PATH}` });
        await dumpBlocked();
        const kids = await until('the dump and its compressor', () => {
          const k = childrenOf(child.pid!);
          return k.some((x) => /dump/.test(x.comm)) && k.some((x) => /zstd/.test(x.comm)) ? k : undefined;
        });
        const taskId = environOf(kids.find((x) => /dump/.test(x.comm))!.pid).DBS_TASK!;
        child.kill('SIGKILL');
        await child;
        await sleep(1000);
        expect(kids.filter((k) => pidAlive(k.pid)).map((k) => k.comm).sort()).toEqual(kids.map((k) => k.comm).sort()); // orphans now
        expect((await connectionsOfUser()).length).toBeGreaterThan(0);
        if (entry === 'plan run --due') {
          const due = await run(['--json', 'plan', 'run', '--due']);
          expect(due.code, due.stderr).toBe(0);
          expect(due.stderr).toMatch(/ended .*dump.* left running by dead dbs process/);
        } else {
          const d = execa(process.execPath, [BIN, '--home', home, 'daemon', '--reload', '0.2'], { env: env(), reject: false });
          const out = collect(d);
          try {
            await until('the daemon ended the orphans', () => /"event":"orphan.killed"/.test(out.text), 20_000).catch(async (e) => {
              d.kill('SIGTERM');
              const r = await d;
              throw new Error(`${(e as Error).message}\n${r.stdout}\n${r.stderr}`);
            });
          } finally {
            d.kill('SIGTERM');
            await d;
          }
        }
        await until('every orphan gone', () => kids.every((k) => !pidAlive(k.pid)), 3000);
        await until('no connection of the backup user', async () => (await connectionsOfUser()).length === 0, 3000);
        expect(await task(taskId)).toMatchObject({ status: 'interrupted' });
        expect((await events('my-s3')).map((e) => e.type)).toContain('orphan.killed');
      } finally {
        await t.release();
      }
    });
  }
});

/** What a running child writes to stdout, as it comes. */
function collect(p: ResultPromise): { text: string } {
  const out = { text: '' };
  p.stdout?.on('data', (c: Buffer) => (out.text += c.toString()));
  return out;
}

/**
 * A TCP proxy in front of the test S3 server that can freeze: from then on it accepts
 * connections and never answers, and stops forwarding on the open ones (a hung gateway).
 */
async function freezableProxy(target: { host: string; port: number }) {
  let frozen = false;
  let upBytes = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (frozen) return client.pause();
    const up = connect(target.port, target.host);
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => client.destroy());
    client.on('data', (c: Buffer) => {
      if (frozen) return;
      upBytes += c.length;
      up.write(c);
    });
    up.on('data', (c: Buffer) => {
      if (!frozen) client.write(c);
    });
    client.on('end', () => up.end());
    up.on('end', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    freeze() {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    get upBytes() {
      return upBytes;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('lease and timeout settings', () => {
  it.each([
    ['DBS_LOCK_LEASE', '1', /lockLease: must be a number of seconds from 2 to 3600 \(got "1"\)/],
    ['DBS_LOCK_LEASE', 'soon', /lockLease: must be a number of seconds from 2 to 3600 \(got "soon"\)/],
    ['DBS_S3_TIMEOUT', '0', /s3Timeout: must be a number of seconds from 1 to 3600 \(got "0"\)/],
    ['DBS_S3_TIMEOUT', '1e9', /s3Timeout: must be a number of seconds from 1 to 3600/],
  ])('%s=%s is refused with exit 2 and nothing runs', async (name, value, message) => {
    const before = (await run(['--json', 'task', 'list'])).json().length;
    const r = await run(['plan', 'run', 'my-local'], { [name]: value });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/hint: /);
    expect((await run(['--json', 'task', 'list'])).json()).toHaveLength(before);
  });
});

describe('a frozen S3 endpoint', () => {
  const TIMEOUT_S = 2;
  // README: a hung S3 endpoint fails the task within about 5 x s3Timeout.
  const BOUND_MS = 5 * TIMEOUT_S * 1000 + 3000; // + start-up of node and dbs
  for (const when of ['from the start', 'mid-upload'] as const) {
    it(`(${when}) fails plan run with exit 6 within the documented time: lock released, task failed`, async () => {
      const s3 = testbed().s3;
      const u = new URL(s3.endpoint);
      const proxy = await freezableProxy({ host: u.hostname, port: Number(u.port) });
      try {
        const name = `frozen-${when === 'mid-upload' ? 'mid' : 'start'}`;
        const b = await run(['pool', 'bind', name, '--type', 's3', '--endpoint', proxy.endpoint, '--prefix', `frozen-${tag}-${name}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
        expect(b.code, b.stderr).toBe(0);
        const source = bigSqlite(when === 'mid-upload' ? 60 : 1);
        expect((await run(['plan', 'create', name, '--source', `sqlite://${source}`, '--pool', name, '--compress', 'none'])).code).toBe(0);
        const id = await planId(name);
        if (when === 'from the start') proxy.freeze();
        const started = Date.now();
        const child = execa(process.execPath, [BIN, '--home', home, 'plan', 'run', name], { env: { ...env(), DBS_S3_TIMEOUT: String(TIMEOUT_S) }, reject: false, timeout: 120_000 });
        let frozenAt = started;
        if (when === 'mid-upload') {
          await until('upload under way', () => proxy.upBytes > 12 * 1024 * 1024, 30_000);
          proxy.freeze();
          frozenAt = Date.now();
        }
        const r = await child;
        const took = Date.now() - frozenAt;
        expect(r.exitCode, r.stderr).toBe(6);
        expect(r.stderr).toMatch(/cannot reach s3:\/\/dbs\/frozen-.* \(ETIMEDOUT\)/);
        console.log(`frozen S3 (${when}): failed after ${took} ms`);
        expect(took).toBeLessThan(BOUND_MS);
        expect(lockRow(id)).toBeUndefined();
        const t = (await run(['--json', 'task', 'list', '--plan', name])).json()[0];
        expect(t).toMatchObject({ status: 'failed', errorCode: 'POOL_UNREACHABLE', backupId: null });
        expect(r.stderr).not.toContain('requestTimeout'); // no SDK warning printed instead of an error
      } finally {
        await proxy.close();
      }
    });
  }
});
