// Issue 16, what the daemon finishes for dead or interrupted processes: copies left `copying`
// by a process that died are copied again by the daemon's cycle (as a plan run does), and a
// delete interrupted by a signal leaves its copy `deleting` with the reason, deleted again by
// the daemon. Two local pools, and an S3 pool behind a proxy that can hang; the real binary (bin/dbs.js).
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { faultWrapper } from '../../src/storage/faults.js';
import { dbs } from '../support/cli.js';
import { daemon } from '../support/daemon.js';
import { smallSqlite } from '../support/fixtures.js';
import { waitFor } from '../support/ports.js';
import { trackPair } from '../support/proxy.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;

async function ok(args: string[], o: Parameters<typeof dbs>[1]) {
  const r = await dbs(args, o);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

/** A catalog with pools local and other, plan app on local replicating to other, one backup. */
async function setup() {
  const home = tempDir('home');
  const localDir = tempDir('local');
  const otherDir = tempDir('other');
  await ok(['pool', 'bind', 'local', '--type', 'local', '--path', localDir], { home });
  await ok(['pool', 'bind', 'other', '--type', 'local', '--path', otherDir], { home });
  await ok(['plan', 'create', 'app', '--source', `sqlite://${smallSqlite()}`, '--pool', 'local', '--replicate-to', 'other'], { home });
  const r = (await ok(['--json', 'plan', 'run', 'app'], { home })).json();
  expect(r.copies).toMatchObject([{ pool: 'other', status: 'ready' }]);
  return { home, localDir, otherDir, planId: r.task.planId as string, backup: r.backup.id as string };
}

const catalogDb = (home: string) => new Database(join(home, 'catalog.db'));

function copyRow(home: string, backup: string, pool: string): { status: string; error: string; attempts: number } | undefined {
  const db = catalogDb(home);
  try {
    return db.prepare('SELECT c.status, c.error, c.attempts FROM backup_copies c JOIN pools p ON p.id = c.pool_id WHERE c.backup_id = ? AND p.name = ?').get(backup, pool) as { status: string; error: string; attempts: number } | undefined;
  } finally {
    db.close();
  }
}

describe('the daemon finishes copies a dead process left', () => {
  it('a `copying` row (its process died mid-copy) is copied again by the daemon, not while a live process holds the plan', async () => {
    const { home, otherDir, planId, backup } = await setup();
    // What a copy killed by SIGKILL leaves: the row `copying`, a partial artifact, no manifest.
    const dir = join(otherDir, 'dbs', 'backups', planId, backup);
    const files = readdirSync(dir);
    for (const f of files) writeFileSync(join(dir, f), 'partial');
    const db = catalogDb(home);
    db.prepare("UPDATE backup_copies SET status = 'copying', error = '' WHERE backup_id = ? AND pool_id = (SELECT id FROM pools WHERE name = 'other')").run(backup);
    // A live process (this test's own pid) holds the plan's lock: its copy may be running.
    const now = new Date().toISOString();
    db.prepare("INSERT INTO locks (name, pid, host, owner, acquired_at, heartbeat_at, expires_at, pid_ns) VALUES (?, ?, ?, 'test', ?, ?, ?, NULL)").run(`plan:${planId}`, process.pid, hostname(), now, now, new Date(Date.now() + 600_000).toISOString());
    db.close();
    expect((await ok(['--json', 'backup', 'list', '--pool', 'other'], { home })).json()).toEqual([]);

    const d = daemon(home, ['--probe', '0.2']);
    try {
      await d.waitFor((l) => l.event === 'daemon.started');
      await new Promise((r) => setTimeout(r, 1200)); // several probe cycles
      expect(copyRow(home, backup, 'other')?.status).toBe('copying');
      expect(d.lines.some((l) => String(l.event).startsWith('copy.'))).toBe(false);
      // The holder is gone: the next cycle copies it again, checked against the manifest.
      const db2 = catalogDb(home);
      db2.prepare('DELETE FROM locks WHERE name = ?').run(`plan:${planId}`);
      db2.close();
      const line = await d.waitFor((l) => l.event === 'copy.retried' || l.event === 'copy.failed', 15_000);
      expect(line).toMatchObject({ event: 'copy.retried', backup, message: `copied backup ${backup} to pool other` });
    } finally {
      const r = await d.stop();
      expect(r.code, r.stderr).toBe(0);
    }
    expect(copyRow(home, backup, 'other')).toMatchObject({ status: 'ready', error: '' });
    expect(existsSync(join(dir, 'manifest.json'))).toBe(true);
    expect((await ok(['--json', 'backup', 'list', '--pool', 'other'], { home })).json().map((b: { id: string }) => b.id)).toEqual([backup]);
    const v = await dbs(['--json', 'backup', 'verify', backup, '--from-pool', 'other'], { home });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json()).toMatchObject({ pool: 'other', ok: true });
  });
});

describe('a delete interrupted by a signal', () => {
  it('leaves the copy `deleting` with the reason (also while it runs: what SIGKILL would leave), and the daemon deletes it again', async () => {
    const { home, otherDir, localDir, planId, backup } = await setup();
    // Pool other is slow: deleting its artifact hangs until the process is told to stop.
    const stop = new AbortController();
    let stalled!: () => void;
    const seen = new Promise<void>((r) => (stalled = r));
    const slow = faultWrapper({ stall: { method: 'delete', key: /\/[^/]+\.zst$/ }, onFault: () => stalled() });
    const slowOther = (drv: Parameters<typeof slow>[0]) => (drv.location.includes(otherDir) ? slow(drv) : drv);
    const del = dbs(['--json', 'backup', 'delete', backup], { home, signal: stop.signal, poolWrappers: [slowOther] });
    await seen;
    // Mid-delete: the row already says a delete started and by whom.
    expect(copyRow(home, backup, 'other')).toMatchObject({ status: 'deleting', error: expect.stringMatching(new RegExp(`^a delete started at \\S+ by dbs process ${process.pid} on ${hostname()} did not finish$`)) });
    // What src/main.ts does on SIGTERM.
    stop.abort(Object.assign(new Error('interrupted by SIGTERM'), { name: 'AbortError' }));
    const r = await del;
    expect(r.code, r.stderr).toBe(130);
    const row = copyRow(home, backup, 'other');
    expect(row).toMatchObject({ status: 'deleting', error: 'the delete was interrupted by SIGTERM before it finished', attempts: 1 });
    // The primary (deleted after the replica) was not tried: it is "deleting" too, saying why.
    expect(copyRow(home, backup, 'local')).toMatchObject({ status: 'deleting', error: 'the delete was interrupted by SIGTERM before it finished', attempts: 0 });
    const show = (await ok(['--json', 'backup', 'show', backup], { home })).json();
    expect(show.status).toBe('deleting');
    const pending = show.pendingDeletes as { pool: string; error: string }[];
    expect(pending.map((p) => `${p.pool}: ${p.error}`).sort()).toEqual(['local: the delete was interrupted by SIGTERM before it finished', 'other: the delete was interrupted by SIGTERM before it finished']);
    expect((await ok(['--json', 'backup', 'list', '--pool', 'local', '--status', 'available'], { home })).json()).toEqual([]);
    const events = (await ok(['--json', 'events'], { home })).json() as { type: string; message: string }[];
    expect(events.some((e) => e.type === 'copy.delete-failed' && e.message.includes('interrupted by SIGTERM'))).toBe(true);
    expect(existsSync(join(localDir, 'dbs', 'backups', planId, backup, 'manifest.json'))).toBe(true);

    const d = daemon(home, ['--probe', '0.2']);
    try {
      await d.waitFor((l) => l.event === 'backup.deleted' && l.backup === backup, 15_000);
    } finally {
      const s = await d.stop();
      expect(s.code, s.stderr).toBe(0);
    }
    expect(copyRow(home, backup, 'other')).toBeUndefined();
    expect(copyRow(home, backup, 'local')).toBeUndefined();
    expect((await ok(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
    for (const dir of [otherDir, localDir]) expect(existsSync(join(dir, 'dbs', 'backups', planId, backup)), dir).toBe(false);
  });
});

/** A TCP proxy in front of the S3 server that can freeze: while frozen no byte passes either way (a hung pool). */
async function freezableProxy(target: URL) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    trackPair(sockets, client, upstream);
    const pass = (from: Socket, to: Socket) =>
      from.on('data', (d: Buffer) => {
        if (frozen) {
          from.pause();
          held.push(() => {
            to.write(d);
            from.resume();
          });
        } else to.write(d);
      });
    pass(client, upstream);
    pass(upstream, client);
  });
  const held: (() => void)[] = [];
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    freeze: () => (frozen = true),
    thaw: () => {
      frozen = false;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        server.close(() => r());
      }),
  };
}

describe('SIGTERM during a delete of a hung S3 pool (the real binary)', () => {
  beforeAll(() => servers('s3'));

  it('backup delete exits 130, every copy left is `deleting` saying it was interrupted by SIGTERM; the daemon deletes them once the pool answers', async () => {
    const s3 = testbed().s3;
    const proxy = await freezableProxy(new URL(s3.endpoint));
    try {
      const home = tempDir('home');
      const localDir = tempDir('local');
      const prefix = `copies-daemon-${randomBytes(4).toString('hex')}`;
      const env = { S3_SECRET: s3.secretKey };
      await ok(['pool', 'bind', 'local', '--type', 'local', '--path', localDir], { home });
      await ok(['pool', 'bind', 'remote', '--type', 's3', '--endpoint', proxy.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
      await ok(['plan', 'create', 'app', '--source', `sqlite://${smallSqlite()}`, '--pool', 'local', '--replicate-to', 'remote'], { home, env });
      const r = (await ok(['--json', 'plan', 'run', 'app'], { home, env })).json();
      const backup = r.backup.id as string;
      expect(r.copies).toMatchObject([{ pool: 'remote', status: 'ready' }]);

      proxy.freeze();
      const del = execa(process.execPath, [BIN, '--home', home, '--json', 'backup', 'delete', backup], { env, reject: false });
      await waitFor(async () => (copyRow(home, backup, 'remote')?.error.startsWith('a delete started at ') ? true : undefined), { what: 'the delete to start', timeoutMs: 15_000 });
      await new Promise((res) => setTimeout(res, 300)); // it is waiting on the hung pool now
      del.kill('SIGTERM');
      const d = await del;
      expect(d.exitCode, String(d.stderr)).toBe(130);
      const why = 'the delete was interrupted by SIGTERM before it finished';
      expect(copyRow(home, backup, 'remote')).toMatchObject({ status: 'deleting', error: why, attempts: 1 });
      expect(copyRow(home, backup, 'local')).toMatchObject({ status: 'deleting', error: why });
      expect(existsSync(join(localDir, 'dbs', 'backups', r.task.planId, backup, 'manifest.json'))).toBe(true);
      const show = (await ok(['--json', 'backup', 'show', backup], { home })).json();
      expect(show.status).toBe('deleting');

      proxy.thaw();
      const dm = daemon(home, ['--probe', '0.2'], env);
      try {
        await dm.waitFor((l) => l.event === 'backup.deleted' && l.backup === backup, 20_000);
      } finally {
        const st = await dm.stop();
        expect(st.code, st.stderr).toBe(0);
      }
      expect(copyRow(home, backup, 'remote')).toBeUndefined();
      expect((await ok(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
      const c = s3Client(s3);
      try {
        const left = await c.send(new ListObjectsV2Command({ Bucket: 'dbs', Prefix: `${prefix}/dbs/backups/` }));
        expect((left.Contents ?? []).map((o) => o.Key).filter((k) => k!.includes(backup))).toEqual([]);
      } finally {
        c.destroy();
      }
    } finally {
      await proxy.close();
    }
  });
});
