// `dbs daemon`, `dbs plan run --due`, pause/resume and auto-pause, with the real binary.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/catalog.js';
import { dbs } from '../support/cli.js';
import { daemon } from '../support/daemon.js';
import { startMariaDB } from '../support/mariadb.js';
import { bigSqlite, smallSqlite } from '../support/fixtures.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3'));

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;

async function setup(pool: 'local' | 's3' = 'local') {
  const home = tempDir('home');
  const env = { S3_SECRET: testbed().s3.secretKey };
  if (pool === 'local') {
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
  } else {
    const s3 = testbed().s3;
    const prefix = `daemon-${randomBytes(3).toString('hex')}`;
    const r = await dbs(['pool', 'bind', 'p', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
    expect(r.code, r.stderr).toBe(0);
    return { home, prefix };
  }
  return { home, prefix: '' };
}

async function s3Leftovers(prefix: string) {
  const c = s3Client(testbed().s3);
  const objs = await c.send(new ListObjectsV2Command({ Bucket: 'dbs', Prefix: `${prefix}/dbs/backups/` }));
  const ups = await c.send(new ListMultipartUploadsCommand({ Bucket: 'dbs', Prefix: `${prefix}/` }));
  return { objects: (objs.Contents ?? []).map((o) => o.Key), uploads: (ups.Uploads ?? []).length };
}

describe('dbs daemon', () => {
  it('runs per-second schedules, keeps --concurrency and never overlaps a plan', async () => {
    const { home } = await setup();
    const slow = bigSqlite(320); // must take well over a second to back up, so slots overlap
    for (const [name, path] of [['slow', slow], ['fast', smallSqlite()]]) {
      const r = await dbs(['plan', 'create', name, '--source', `sqlite://${path}`, '--pool', 'p', '--cron', '* * * * * *', '--keep-last', '2'], { home });
      expect(r.code, r.stderr).toBe(0);
    }
    const d = daemon(home, ['--concurrency', '1']);
    await d.waitFor((l) => l.event === 'task.succeeded' && l.plan === 'slow');
    await d.waitFor((l) => l.event === 'task.succeeded' && l.plan === 'fast');
    await d.waitFor((l) => l.event === 'run.skipped');
    const stopped = await d.stop();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(d.lines.at(-1)).toMatchObject({ event: 'daemon.stopped' });
    const catalog = Catalog.open(home);
    const tasks = catalog.listTasks({ limit: 1000 }).filter((t) => t.startedAt);
    catalog.close();
    expect(tasks.length).toBeGreaterThanOrEqual(2);
    // Concurrency 1: no two tasks ran at the same time, of any plan.
    const spans = tasks.map((t) => [Date.parse(t.startedAt!), Date.parse(t.endedAt ?? new Date().toISOString())]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    // Waiting time is recorded: some run waited in the queue behind another.
    expect(tasks.some((t) => Date.parse(t.startedAt!) - Date.parse(t.queuedAt) > 50)).toBe(true);
    // Which plan's slot gets skipped depends on timing: look at every plan's events.
    const events = (await dbs(['--json', 'events'], { home })).json() as { type: string; resourceKind: string }[];
    expect(events.some((e) => e.type === 'run.skipped' && e.resourceKind === 'plan')).toBe(true);
  });

  it('SIGTERM mid-backup past --grace exits 130 and leaves an interrupted task, no manifest and no multipart upload', async () => {
    const { home, prefix } = await setup('s3');
    const src = bigSqlite(250);
    expect((await dbs(['plan', 'create', 'big', '--source', `sqlite://${src}`, '--pool', 'p', '--cron', '* * * * * *', '--compress', 'none'], { home })).code).toBe(0);
    const d = daemon(home, ['--grace', '0']);
    await d.waitFor((l) => l.event === 'task.started');
    const c = s3Client(testbed().s3);
    for (let i = 0; i < 200; i++) {
      const ups = await c.send(new ListMultipartUploadsCommand({ Bucket: 'dbs', Prefix: `${prefix}/` }));
      if ((ups.Uploads ?? []).length) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const stopped = await d.stop();
    // A stop that aborted a task exits 130 (the README's "interrupted"); a clean stop exits 0 (above).
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(d.lines.some((l) => l.event === 'task.interrupted')).toBe(true);
    expect(d.lines.at(-1)).toMatchObject({ event: 'daemon.stopped', message: expect.stringContaining('1 interrupted') });
    const tasks = (await dbs(['--json', 'task', 'list', '--plan', 'big'], { home })).json() as { status: string }[];
    expect(tasks.map((t) => t.status)).toContain('interrupted');
    expect(tasks.map((t) => t.status)).not.toContain('running');
    expect((await dbs(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
    expect(await s3Leftovers(prefix)).toEqual({ objects: [], uploads: 0 });
  });

  it('refuses a second daemon; takes over the lock of a killed one and cleans up after it', async () => {
    const { home, prefix } = await setup('s3');
    const src = bigSqlite(250);
    expect((await dbs(['plan', 'create', 'big', '--source', `sqlite://${src}`, '--pool', 'p', '--cron', '0 0 1 1 *', '--compress', 'none'], { home })).code).toBe(0);
    const a = daemon(home, []);
    await a.waitFor((l) => l.event === 'daemon.started');
    const second = await execa(process.execPath, [BIN, '--home', home, 'daemon'], { reject: false });
    expect(second.exitCode).toBe(5);
    expect(String(second.stderr)).toMatch(/locked by dbs daemon/);
    // A manual run in another process while the daemon lives; then the daemon dies hard.
    const run = execa(process.execPath, [BIN, '--home', home, 'plan', 'run', 'big'], { reject: false });
    const c = s3Client(testbed().s3);
    for (let i = 0; i < 400; i++) {
      const ups = await c.send(new ListMultipartUploadsCommand({ Bucket: 'dbs', Prefix: `${prefix}/` }));
      if ((ups.Uploads ?? []).length) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    run.kill('SIGKILL');
    await run;
    await a.stop('SIGKILL');
    const b = daemon(home, []);
    await b.waitFor((l) => l.event === 'lock.takeover');
    await b.waitFor((l) => l.event === 'task.recovered');
    await b.waitFor((l) => l.event === 'uploads.aborted');
    expect((await b.stop()).code).toBe(0);
    const tasks = (await dbs(['--json', 'task', 'list', '--plan', 'big'], { home })).json() as { status: string }[];
    expect(tasks.map((t) => t.status)).toEqual(['interrupted']);
    expect((await s3Leftovers(prefix)).uploads).toBe(0);
  });

  it('pauses a plan whose source went offline and resumes it when the source answers', async () => {
    const { home } = await setup();
    const m = await startMariaDB({ logBin: false });
    try {
      const conn = `mysql://root@127.0.0.1:${m.port}`;
      await execa('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(m.port), '-u', 'root', '-e', 'CREATE DATABASE app; CREATE TABLE app.t (x INT); INSERT INTO app.t VALUES (1)']);
      expect((await dbs(['plan', 'create', 'app', '--source', conn, '--pool', 'p', '--databases', 'app', '--cron', '* * * * * *', '--keep-last', '1'], { home })).code).toBe(0);
      process.kill(m.pid, 'SIGKILL'); // the source goes away
      const d = daemon(home, ['--probe', '0.5']);
      await d.waitFor((l) => l.event === 'plan.auto-paused');
      const shown = (await dbs(['--json', 'plan', 'show', 'app'], { home })).json();
      expect(shown).toMatchObject({ status: 'paused', pauseReason: 'source offline' });
      await m.restart();
      await d.waitFor((l) => l.event === 'plan.auto-resumed');
      await d.waitFor((l) => l.event === 'task.succeeded');
      expect((await d.stop()).code).toBe(0);
      const events = ((await dbs(['--json', 'events', '--plan', 'app'], { home })).json() as { type: string }[]).map((e) => e.type);
      expect(events).toEqual(expect.arrayContaining(['plan.auto-paused', 'plan.auto-resumed', 'backup.succeeded']));
    } finally {
      await m.stop();
    }
  });

  it('a copy to a replica pool that was offline during its run shows failed; the pool back, the daemon itself retries it and the copy becomes ready', async () => {
    const { home } = await setup();
    const replicaDir = tempDir('replica');
    expect((await dbs(['pool', 'bind', 'r', '--type', 'local', '--path', replicaDir], { home })).code).toBe(0);
    const src = smallSqlite();
    const at = new Date(Date.now() + 1500).toISOString();
    const c = await dbs(['plan', 'create', 'app', '--source', `sqlite://${src}`, '--pool', 'p', '--replicate-to', 'r', '--once', at], { home });
    expect(c.code, c.stderr).toBe(0);
    const { renameSync } = await import('node:fs');
    renameSync(replicaDir, `${replicaDir}.away`); // the replica's disk unmounted
    const d = daemon(home, ['--probe', '0.3']);
    try {
      const done = await d.waitFor((l) => l.event === 'task.succeeded');
      const backup = done.backup as string;
      // The daemon's own retries fail while the pool is away, and say so.
      await d.waitFor((l) => l.event === 'copy.failed' && l.backup === backup);
      const copies = async () => ((await dbs(['--json', 'backup', 'show', backup], { home })).json().copies as { poolName: string; status: string; error: string }[]);
      const failed = await copies();
      expect(failed.map((x) => `${x.poolName}:${x.status}`)).toEqual(['p:ready', 'r:failed']);
      expect(failed[1].error).toMatch(/pool r/);
      expect((await dbs(['--json', 'backup', 'list', '--pool', 'r'], { home })).json()).toEqual([]);
      renameSync(`${replicaDir}.away`, replicaDir);
      const t0 = Date.now();
      await d.waitFor((l) => l.event === 'copy.retried' && l.backup === backup);
      const retryMs = Date.now() - t0;
      expect(retryMs).toBeLessThan(10_000);
      expect((await copies()).map((x) => `${x.poolName}:${x.status}`)).toEqual(['p:ready', 'r:ready']);
      // Only the one scheduled run: the copy was made by the daemon's retry, not by another run.
      expect(d.lines.filter((l) => l.event === 'task.started')).toHaveLength(1);
      const events = ((await dbs(['--json', 'events', '--plan', 'app'], { home })).json() as { type: string }[]).map((e) => e.type);
      expect(events).toEqual(expect.arrayContaining(['copy.failed', 'copy.succeeded']));
    } finally {
      expect((await d.stop()).code).toBe(0);
    }
  });

  it('a backup delete whose replica pool was away stays "deleting"; the daemon deletes the rest once the pool is back', async () => {
    const { home } = await setup();
    const replicaDir = tempDir('replica');
    expect((await dbs(['pool', 'bind', 'r', '--type', 'local', '--path', replicaDir], { home })).code).toBe(0);
    const src = smallSqlite();
    expect((await dbs(['plan', 'create', 'app', '--source', `sqlite://${src}`, '--pool', 'p', '--replicate-to', 'r'], { home })).code).toBe(0);
    const run = await dbs(['--json', 'plan', 'run', 'app'], { home });
    expect(run.code, run.stderr).toBe(0);
    const backup = run.json().backup.id as string;
    const { existsSync, renameSync } = await import('node:fs');
    renameSync(replicaDir, `${replicaDir}.away`);
    const del = await dbs(['backup', 'delete', backup], { home });
    expect(del.code, del.stderr).toBe(1);
    expect((await dbs(['--json', 'backup', 'show', backup], { home })).json()).toMatchObject({ status: 'deleting', copies: [{ poolName: 'r', status: 'deleting' }] });
    const d = daemon(home, ['--probe', '0.3']);
    try {
      // Away: the daemon's pass tries and says it is still pending.
      await d.waitFor((l) => l.event === 'copy.delete-failed' && l.backup === backup);
      renameSync(`${replicaDir}.away`, replicaDir);
      await d.waitFor((l) => l.event === 'backup.deleted' && l.backup === backup);
      expect((await dbs(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
      expect(existsSync(join(replicaDir, 'dbs', 'backups', run.json().backup.planId, backup))).toBe(false);
    } finally {
      expect((await d.stop()).code).toBe(0);
    }
  });

  it('rejects --concurrency 0 and bad --log-format', async () => {
    const home = tempDir('home');
    const r = await dbs(['daemon', '--concurrency', '0'], { home });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--concurrency "0" must be a whole number from 1 to 64/);
    expect((await dbs(['daemon', '--log-format', 'xml'], { home })).code).toBe(2);
  });
});

describe('plan run --due, pause, resume', () => {
  it('runs what is due once, then nothing; fails when a due plan fails', async () => {
    const { home } = await setup();
    const ok = smallSqlite();
    const gone = smallSqlite();
    // A one-shot slot a second ahead: "then nothing" must not depend on how long the first pass
    // takes (a per-second cron gave the second pass a new slot on a loaded machine).
    const at = new Date(Date.now() + 1000).toISOString();
    expect((await dbs(['plan', 'create', 'ok', '--source', `sqlite://${ok}`, '--pool', 'p', '--once', at], { home })).code).toBe(0);
    expect((await dbs(['plan', 'create', 'manual', '--source', `sqlite://${ok}`, '--pool', 'p'], { home })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    const first = await dbs(['--json', 'plan', 'run', '--due'], { home });
    expect(first.code, first.stderr).toBe(0);
    expect(first.json().ran).toEqual([expect.objectContaining({ plan: 'ok', status: 'succeeded' })]);
    const again = await dbs(['--json', 'plan', 'run', '--due'], { home });
    expect(again.json().ran).toEqual([]);
    expect((await dbs(['plan', 'create', 'bad', '--source', `sqlite://${gone}`, '--pool', 'p', '--cron', '* * * * * *'], { home })).code).toBe(0);
    const { rmSync } = await import('node:fs');
    rmSync(gone);
    await new Promise((r) => setTimeout(r, 1100));
    const failing = await dbs(['--json', 'plan', 'run', '--due'], { home });
    expect(failing.code).toBe(1);
    expect(failing.json().ran).toEqual(expect.arrayContaining([expect.objectContaining({ plan: 'bad', status: 'failed' })]));
  });

  it('a --due pass cleans up after a run that was killed: task interrupted, upload aborted', async () => {
    const { home, prefix } = await setup('s3');
    const src = bigSqlite(250);
    expect((await dbs(['plan', 'create', 'big', '--source', `sqlite://${src}`, '--pool', 'p', '--compress', 'none'], { home })).code).toBe(0);
    const run = execa(process.execPath, [BIN, '--home', home, 'plan', 'run', 'big'], { reject: false });
    const c = s3Client(testbed().s3);
    for (let i = 0; i < 400; i++) {
      const ups = await c.send(new ListMultipartUploadsCommand({ Bucket: 'dbs', Prefix: `${prefix}/` }));
      if ((ups.Uploads ?? []).length) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    run.kill('SIGKILL');
    await run;
    expect((await s3Leftovers(prefix)).uploads).toBe(1);
    const due = await dbs(['--json', 'plan', 'run', '--due'], { home });
    expect(due.code, due.stderr).toBe(0);
    const tasks = (await dbs(['--json', 'task', 'list', '--plan', 'big'], { home })).json() as { status: string }[];
    expect(tasks.map((t) => t.status)).toEqual(['interrupted']);
    expect(await s3Leftovers(prefix)).toEqual({ objects: [], uploads: 0 });
  });

  it('pauses and resumes scheduled plans; refuses manual plans and resuming an active one', async () => {
    const { home } = await setup();
    const src = smallSqlite();
    await dbs(['plan', 'create', 'sched', '--source', `sqlite://${src}`, '--pool', 'p', '--every', 'daily', '--at', '01:00'], { home });
    await dbs(['plan', 'create', 'man', '--source', `sqlite://${src}`, '--pool', 'p', '--manual'], { home });
    const manual = await dbs(['plan', 'pause', 'man'], { home });
    expect(manual.code).toBe(4);
    expect(manual.stderr).toMatch(/is manual/);
    const notPaused = await dbs(['plan', 'resume', 'sched'], { home });
    expect(notPaused.code).toBe(4);
    expect(notPaused.stderr).toMatch(/is not paused/);
    const p = await dbs(['--json', 'plan', 'pause', 'sched'], { home });
    expect(p.json()).toMatchObject({ status: 'paused', nextRun: null });
    expect((await dbs(['plan', 'list'], { home })).stdout).toMatch(/paused/);
    const r = await dbs(['--json', 'plan', 'resume', 'sched'], { home });
    expect(r.json().status).toBe('active');
    expect(r.json().nextRun).not.toBeNull();
    const show = await dbs(['--json', 'plan', 'show', 'sched'], { home });
    expect(show.json().nextRuns).toHaveLength(3);
  });
});
