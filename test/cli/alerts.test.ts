// Alerts and notifications (issue 17): `dbs alert ...`, firing and resolving after `plan run`
// and under the real daemon, webhook bodies and their HMAC, command targets, retries, failed
// deliveries as events (never failed backups), test notifications, pings and mail.
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { TLSSocket } from 'node:tls';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/catalog.js';
import { dbs, dbsBin } from '../support/cli.js';
import { daemon } from '../support/daemon.js';
import { smallSqlite } from '../support/fixtures.js';
import { freePort } from '../support/ports.js';
import { tempDir } from '../support/testbed.js';

const SECRET = 's3cr3t-hook-key';
const ENV = { DBS_ALERT_RETRY_MS: '20', HOOK_SECRET: SECRET };

interface Hit {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A local HTTP receiver: records every request; answers `statuses` in turn, then 200. */
async function receiver(statuses: number[] = []) {
  const hits: Hit[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits.push({ method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() });
      res.statusCode = statuses.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  servers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${port}`, hits, json: (i: number) => JSON.parse(hits[i].body) as Record<string, any> };
}

const servers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of servers) await s();
});

async function until<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`not seen within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A home with a pool and a plan `app` whose SQLite source can be broken (moved away) and fixed. */
async function setup(schedule: string[] = []) {
  const home = tempDir('home');
  expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
  const src = smallSqlite();
  expect((await dbs(['plan', 'create', 'app', '--source', `sqlite://${src}`, '--pool', 'p', ...schedule], { home })).code).toBe(0);
  return {
    home,
    src,
    break: () => renameSync(src, `${src}.away`),
    fix: () => renameSync(`${src}.away`, src),
  };
}

function events(home: string, type: string) {
  const c = Catalog.open(home);
  try {
    return c.listEvents({ limit: 1000 }).filter((e) => e.type === type);
  } finally {
    c.close();
  }
}

/** What bad input must leave alone: alerts, their states, secrets, events. */
function snapshot(home: string) {
  const c = Catalog.open(home);
  try {
    const db = (c as unknown as { db: { prepare(s: string): { all(): unknown[] } } }).db;
    return ['alerts', 'alert_states', 'secrets', 'events'].map((t) => db.prepare(`SELECT * FROM ${t}`).all());
  } finally {
    c.close();
  }
}

/** A core context on a home, as the daemon's periodic pass gets it. */
async function coreContext(home: string) {
  const { makeCoreContext } = await import('../../src/core/context.js');
  const { loadSettings } = await import('../../src/config.js');
  return makeCoreContext({ settings: await loadSettings({ flags: { home }, env: {}, cwd: home }), signal: new AbortController().signal, clock: () => new Date(), env: ENV, cwd: home, yes: false, report: () => undefined });
}

const hmac = (body: string) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;

describe('dbs alert: bad input', () => {
  it('every class of bad input is exit 2 with a clear message and writes nothing', async () => {
    const { home } = await setup();
    const okHook = 'webhook:https://hooks.example.com/x';
    expect((await dbs(['alert', 'create', 'taken', '--plan', 'app', '--on', 'failed', '--notify', okHook], { home })).code).toBe(0);
    const notExec = join(tempDir('cmd'), 'notify.sh');
    writeFileSync(notExec, '#!/bin/sh\n');
    chmodSync(notExec, 0o644);
    const cases: [string, string[], RegExp][] = [
      ['unknown rule', ['--on', 'exploded'], /unknown rule/],
      ['bad duration (no-success-for)', ['--on', 'no-success-for 26x'], /not a duration/],
      ['bad duration (duration>)', ['--on', 'duration>soon'], /not a duration/],
      ['bad duration (missed grace)', ['--on', 'missed>0s'], /not a duration/],
      ['percentage without %', ['--on', 'cpu>80'], /not a percentage/],
      ['negative percentage', ['--on', 'cpu>-5%'], /not a percentage/],
      ['bad size', ['--on', 'mem>2 bananas'], /not a size/],
      ['bad rate', ['--on', 'out<fast'], /not a rate/],
      ['webhook not http(s)', ['--notify', 'webhook:ftp://example.com/x'], /must be http or https/],
      ['webhook not a URL', ['--notify', 'webhook:not a url'], /not a URL/],
      ['ping not http(s)', ['--notify', 'ping:file:///etc/passwd'], /must be http or https/],
      ['URL with a password', ['--notify', 'webhook:https://u:pw@example.com/'], /user or password/],
      ['unknown target', ['--notify', 'slack:#ops'], /unknown target/],
      ['command path relative', ['--notify', 'command:bin/notify'], /must be absolute/],
      ['command not executable', ['--notify', `command:${notExec}`], /not an executable file/],
      ['command missing', ['--notify', 'command:/nonexistent/notify'], /not an executable file/],
      ['email without SMTP settings', ['--notify', 'email:ops@example.com'], /SMTP server/],
      ['bad mail address', ['--notify', 'email:nobody'], /not a mail address/],
      ['bad secret reference', ['--notify', okHook, '--secret-from', 'HOOK_SECRET'], /env:VAR or file:PATH/],
    ];
    const before = snapshot(home);
    for (const [what, extra, re] of cases) {
      const hasOn = extra.includes('--on');
      const hasNotify = extra.includes('--notify');
      const args = ['--json', 'alert', 'create', 'a1', '--plan', 'app', ...(hasOn ? [] : ['--on', 'failed']), ...(hasNotify ? [] : ['--notify', okHook]), ...extra];
      const r = await dbs(args, { home });
      expect(r.code, `${what}: ${r.stdout}${r.stderr}`).toBe(2);
      const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
      expect(err.message, what).toMatch(re);
      expect(err.message, what).toMatch(/alert "a1"/);
      expect(err.hint, what).toBeTruthy();
    }
    const plan = [
      ['unknown plan', ['--plan', 'nope'], /plan "nope" not found/],
      ['--plan with --all-plans', ['--plan', 'app', '--all-plans'], /exclusive/],
      ['neither --plan nor --all-plans', [], /needs --plan PLAN or --all-plans/],
    ] as const;
    for (const [what, extra, re] of plan) {
      const r = await dbs(['alert', 'create', 'a1', ...extra, '--on', 'failed', '--notify', okHook], { home });
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toMatch(re);
    }
    const dup = await dbs(['alert', 'create', 'taken', '--plan', 'app', '--on', 'failed', '--notify', okHook], { home });
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/an alert named "taken" exists already/);
    // Every problem at once.
    const many = await dbs(['--json', 'alert', 'create', 'a1', '--plan', 'nope', '--on', 'bogus', '--on', 'cpu>lots', '--notify', 'webhook:gopher://x'], { home });
    expect(many.code).toBe(2);
    expect(JSON.parse(many.stderr.trim()).details.problems).toHaveLength(4);
    expect(snapshot(home)).toEqual(before);
    // update: the same checks, nothing changed.
    expect((await dbs(['alert', 'create', 'other', '--all-plans', '--on', 'failed', '--notify', okHook], { home })).code).toBe(0);
    const before2 = snapshot(home);
    const updates: [string, string[], RegExp][] = [
      ['bad rule', ['--on', 'duration>never'], /not a duration/],
      ['bad target', ['--notify', 'webhook:ftp://x/'], /http or https/],
      ['unknown plan', ['--plan', 'nope'], /plan "nope" not found/],
      ['--plan with --all-plans', ['--plan', 'app', '--all-plans'], /exclusive/],
      ['rename to a taken name', ['--rename', 'other'], /"other" exists already/],
      ['bad rename', ['--rename', '-x'], /not allowed/],
      ['bad secret reference', ['--secret-from', 'file:'], /needs a path/],
      ['nothing to update', [], /nothing to update/],
    ];
    for (const [what, extra, re] of updates) {
      const u = await dbs(['alert', 'update', 'taken', ...extra], { home });
      expect(u.code, `${what}: ${u.stderr}`).toBe(2);
      expect(u.stderr, what).toMatch(re);
    }
    expect(snapshot(home)).toEqual(before2);
    for (const cmd of ['show', 'update', 'delete', 'test']) expect((await dbs(['alert', cmd, 'nope', ...(cmd === 'update' ? ['--on', 'failed'] : [])], { home })).code, cmd).toBe(3);
  });
});

describe('alerts after plan run', () => {
  it('a failing plan fires a signed webhook once, counts repeats, and resolves after a success', async () => {
    const s = await setup();
    const hook = await receiver();
    const c = await dbs(['--json', 'alert', 'create', 'app-failed', '--plan', 'app', '--on', 'failed', '--notify', `webhook:${hook.url}/hook`, '--secret-from', 'env:HOOK_SECRET'], { home: s.home, env: ENV });
    expect(c.code, c.stderr).toBe(0);
    expect(c.json()).toMatchObject({ name: 'app-failed', plan: 'app', rules: ['failed'], secretFrom: 'env:HOOK_SECRET' });
    expect(c.stdout).not.toContain(SECRET);

    expect((await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV })).code).toBe(0);
    expect(hook.hits).toHaveLength(0); // ok -> ok: nothing to tell

    s.break();
    const failed = await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(failed.code).toBe(3); // the plan's own exit code, unchanged by the alert
    expect(failed.stderr).toMatch(/alert app-failed fires for plan app: notified 1 target/);
    expect(hook.hits).toHaveLength(1);
    const h = hook.hits[0];
    expect(h.method).toBe('POST');
    expect(h.url).toBe('/hook');
    expect(h.headers['content-type']).toBe('application/json');
    expect(h.headers['x-dbs-event']).toBe('alert.firing');
    expect(h.headers['x-dbs-signature']).toBe(hmac(h.body));
    const body = hook.json(0);
    expect(body).toMatchObject({ event: 'alert.firing', alert: 'app-failed', state: 'firing', plan: 'app', rules: ['failed'], task: { status: 'failed', errorCode: 'SOURCE_NOT_FOUND' } });
    expect(body.violations).toEqual([expect.objectContaining({ rule: 'failed', message: expect.stringMatching(/failed/) })]);

    // Fails again while firing: no second notification, the event's count goes up.
    expect((await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV })).code).toBe(3);
    expect(hook.hits).toHaveLength(1);
    const firing = events(s.home, 'alert.firing');
    expect(firing).toHaveLength(1);
    expect(firing[0].count).toBe(2);
    expect(firing[0].lastAt >= firing[0].firstAt).toBe(true);
    const shown = (await dbs(['--json', 'alert', 'show', 'app-failed'], { home: s.home })).json();
    expect(shown.states).toEqual([expect.objectContaining({ plan: 'app', state: 'firing', reason: 'failed' })]);
    expect(shown.events).toEqual([expect.objectContaining({ type: 'alert.firing', count: 2 }), expect.objectContaining({ type: 'alert.created' })]);

    s.fix();
    const ok = await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(ok.code, ok.stderr).toBe(0);
    expect(hook.hits).toHaveLength(2);
    expect(hook.json(1)).toMatchObject({ event: 'alert.resolved', state: 'ok', plan: 'app', task: { status: 'succeeded' } });
    expect(hook.hits[1].headers['x-dbs-signature']).toBe(hmac(hook.hits[1].body));
    expect(events(s.home, 'alert.resolved')).toHaveLength(1);
    const list = (await dbs(['--json', 'alert', 'list'], { home: s.home })).json();
    expect(list[0].states[0].state).toBe('ok');
  });

  it('plan run --due evaluates alerts too', async () => {
    const s = await setup(['--cron', '* * * * * *']);
    const hook = await receiver();
    expect((await dbs(['alert', 'create', 'due', '--plan', 'app', '--on', 'failed', '--notify', `webhook:${hook.url}/due`], { home: s.home })).code).toBe(0);
    s.break();
    await new Promise((r) => setTimeout(r, 1100));
    const r = await dbs(['--json', 'plan', 'run', '--due'], { home: s.home, env: ENV });
    expect(r.code).toBe(1);
    expect(hook.hits).toHaveLength(1);
    expect(hook.json(0)).toMatchObject({ event: 'alert.firing', alert: 'due', task: { trigger: 'due', status: 'failed' } });
  });

  it('cpu, mem and out rules read the task\'s monitoring summary', async () => {
    const s = await setup();
    // 2 MB that do not compress: a few hundred bytes sent over seconds on a loaded machine were < 1 KiB/s.
    const db = new Database(s.src);
    db.exec('CREATE TABLE pad (b BLOB); INSERT INTO pad VALUES (randomblob(1048576)), (randomblob(1048576))');
    db.close();
    const hook = await receiver();
    const mk = async (name: string, rule: string) => expect((await dbs(['alert', 'create', name, '--plan', 'app', '--on', rule, '--notify', `webhook:${hook.url}/${name}`], { home: s.home })).code).toBe(0);
    await mk('mem-low', 'mem>1MiB'); // any dbs process is bigger
    await mk('mem-high', 'mem>1000GiB');
    await mk('out-slow', 'out<1TiB/s'); // any real pool is slower
    await mk('out-fast', 'out<1KiB/s');
    await mk('cpu-any', 'cpu>0.001%');
    await mk('cpu-high', 'cpu>6000%');
    const r = await dbs(['--json', 'plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(r.code, r.stderr).toBe(0);
    const task = r.json().task;
    expect(task.rssPeakBytes).toBeGreaterThan(1024 ** 2);
    const fired = hook.hits.map((h) => h.url.slice(1)).sort();
    expect(fired).toEqual(['cpu-any', 'mem-low', 'out-slow']);
    const mem = hook.json(hook.hits.findIndex((h) => h.url === '/mem-low'));
    expect(mem.violations[0]).toMatchObject({ rule: 'mem>1MiB', message: expect.stringMatching(/peaked at \d+ MiB RSS/) });
  });

  it('an interrupted task neither fires nor resolves an alert', async () => {
    const s = await setup();
    const hook = await receiver();
    expect((await dbs(['alert', 'create', 'f', '--plan', 'app', '--on', 'failed', '--notify', `webhook:${hook.url}/f`], { home: s.home })).code).toBe(0);
    s.break();
    expect((await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV })).code).toBe(3);
    expect(hook.hits).toHaveLength(1);
    const c = Catalog.open(s.home);
    try {
      const p = c.findPlan('app')!;
      const later = new Date(Date.now() + 1000).toISOString();
      c.insertTask({ id: 'task-interrupted1', planId: p.id, planName: p.name, trigger: 'manual', status: 'interrupted', queuedAt: later, startedAt: later, endedAt: later });
    } finally {
      c.close();
    }
    const ctx = await coreContext(s.home);
    try {
      const { evaluateAll } = await import('../../src/core/alerts.js');
      expect(await evaluateAll(ctx)).toEqual([]);
    } finally {
      ctx.close();
    }
    expect(hook.hits).toHaveLength(1);
    expect((await dbs(['--json', 'alert', 'show', 'f'], { home: s.home })).json().states[0].state).toBe('firing');
  });

  it('a command target gets the event JSON on stdin, with a minimal environment', async () => {
    const s = await setup();
    const dir = tempDir('cmd');
    const out = join(dir, 'event.json');
    const script = join(dir, 'notify.sh');
    writeFileSync(script, `#!/bin/sh\ncat > ${out}\nenv > ${out}.env\n`);
    chmodSync(script, 0o755);
    expect((await dbs(['alert', 'create', 'cmd', '--plan', 'app', '--on', 'failed', '--notify', `command:${script}`], { home: s.home, env: { ...ENV, SOME_PASSWORD: 'hunter2' } })).code).toBe(0);
    s.break();
    expect((await dbs(['plan', 'run', 'app'], { home: s.home, env: { ...ENV, SOME_PASSWORD: 'hunter2' } })).code).toBe(3);
    const ev = JSON.parse(readFileSync(out, 'utf8'));
    expect(ev).toMatchObject({ event: 'alert.firing', alert: 'cmd', plan: 'app', state: 'firing' });
    const env = readFileSync(`${out}.env`, 'utf8');
    expect(env).toMatch(/^DBS_ALERT_EVENT=alert\.firing$/m);
    expect(env).not.toContain('hunter2');
  });

  it('a receiver answering 500 twice then 200 gets the notification on the third try', async () => {
    const s = await setup();
    const hook = await receiver([500, 500]);
    expect((await dbs(['alert', 'create', 'flaky', '--plan', 'app', '--on', 'failed', '--notify', `webhook:${hook.url}/`], { home: s.home })).code).toBe(0);
    s.break();
    const r = await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(r.code).toBe(3);
    expect(hook.hits).toHaveLength(3);
    expect(new Set(hook.hits.map((x) => x.body)).size).toBe(1);
    // Backoff: 1x then 2x the base (20 ms) between tries.
    expect(hook.hits[2].at - hook.hits[1].at).toBeGreaterThanOrEqual(hook.hits[1].at - hook.hits[0].at - 5);
    expect(events(s.home, 'alert.delivery-failed')).toHaveLength(0);
  });

  it('a dead receiver is an alert.delivery-failed event; the backup still succeeds with exit 0', async () => {
    const s = await setup();
    const dead = await freePort();
    // duration>1ms fires on any real task: the alert goes off on a successful run.
    expect((await dbs(['alert', 'create', 'slow', '--plan', 'app', '--on', 'duration>1ms', '--notify', `webhook:http://127.0.0.1:${dead}/secret-token-path`], { home: s.home })).code).toBe(0);
    const r = await dbs(['--json', 'plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().task.status).toBe('succeeded');
    const failed = events(s.home, 'alert.delivery-failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].level).toBe('warning');
    expect(failed[0].message).toMatch(/alert slow: delivery to webhook:http:\/\/127\.0\.0\.1:\d+\/… failed after 4 tries/);
    expect(failed[0].message).not.toContain('secret-token-path');
    expect(events(s.home, 'alert.firing')).toHaveLength(1);
  });

  it('the signing secret is read at each delivery: a rotated file signs the next one; an unset variable is a failed delivery, not a failed backup', async () => {
    const s = await setup();
    const hook = await receiver();
    const file = join(tempDir('sec'), 'hook-secret');
    writeFileSync(file, 'first\n', { mode: 0o600 });
    expect((await dbs(['alert', 'create', 'rot', '--plan', 'app', '--on', 'failed', '--notify', `webhook:${hook.url}/r`, '--secret-from', `file:${file}`], { home: s.home })).code).toBe(0);
    const sig = (key: string, body: string) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
    expect((await dbs(['alert', 'test', 'rot'], { home: s.home, env: ENV })).code).toBe(0);
    expect(hook.hits[0].headers['x-dbs-signature']).toBe(sig('first', hook.hits[0].body));
    writeFileSync(file, 'second\n');
    expect((await dbs(['alert', 'test', 'rot'], { home: s.home, env: ENV })).code).toBe(0);
    expect(hook.hits[1].headers['x-dbs-signature']).toBe(sig('second', hook.hits[1].body));
    expect(snapshot(s.home)[2]).not.toContainEqual(expect.objectContaining({ value: expect.stringContaining('second') }));
    expect((await dbs(['alert', 'update', 'rot', '--secret-from', 'env:NOT_SET_HERE'], { home: s.home })).code).toBe(0);
    const ok = await dbs(['--json', 'plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(ok.code).toBe(0);
    s.break();
    const r = await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV });
    expect(r.code).toBe(3); // the plan's failure, not the alert's
    expect(hook.hits).toHaveLength(2);
    const failed = events(s.home, 'alert.delivery-failed');
    expect(failed).toEqual([expect.objectContaining({ level: 'warning', message: expect.stringMatching(/alert rot: .*NOT_SET_HERE, which is not set/) })]);
  });

  it('ping targets get start, success and fail pings; alert test sends a test notification', async () => {
    const s = await setup();
    const hc = await receiver();
    const hook = await receiver();
    expect((await dbs(['alert', 'create', 'hc', '--plan', 'app', '--on', 'failed', '--notify', `ping:${hc.url}/uuid`, '--notify', `webhook:${hook.url}/t`, '--secret-from', 'env:HOOK_SECRET'], { home: s.home, env: ENV })).code).toBe(0);
    expect((await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV })).code).toBe(0);
    s.break();
    expect((await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV })).code).toBe(3);
    expect(hc.hits.map((h) => `${h.method} ${h.url}`)).toEqual(['GET /uuid/start', 'GET /uuid', 'GET /uuid/start', 'GET /uuid/fail']);
    hook.hits.length = 0;
    const t = await dbs(['--json', 'alert', 'test', 'hc'], { home: s.home, env: ENV });
    expect(t.code, t.stderr).toBe(0);
    expect(t.json().deliveries).toEqual(expect.arrayContaining([expect.objectContaining({ ok: true })]));
    expect(hook.hits).toHaveLength(1);
    expect(hook.json(0)).toMatchObject({ event: 'alert.test', alert: 'hc' });
    expect(hook.hits[0].headers['x-dbs-signature']).toBe(hmac(hook.hits[0].body));
    // A test that reaches nothing is exit 1 and says where.
    expect((await dbs(['alert', 'update', 'hc', '--notify', `webhook:http://127.0.0.1:${await freePort()}/`, '--no-secret'], { home: s.home })).code).toBe(0);
    const dead = await dbs(['alert', 'test', 'hc'], { home: s.home, env: ENV });
    expect(dead.code).toBe(1);
    expect(dead.stdout).toMatch(/NOT delivered: webhook:http:\/\/127\.0\.0\.1/);
    expect((await dbs(['alert', 'delete', 'hc'], { home: s.home })).code).toBe(0);
    expect((await dbs(['--json', 'alert', 'list'], { home: s.home })).json()).toEqual([]);
  });

  it('email targets go through the SMTP server of the settings (a tiny receiver here)', async () => {
    const smtp = await smtpReceiver();
    const s = await setup();
    const config = join(tempDir('cfg'), 'dbs.config.json');
    writeFileSync(config, JSON.stringify({ smtp: { host: '127.0.0.1', port: smtp.port, from: 'dbs@example.com', security: 'none', user: 'mailer', passwordFrom: 'env:SMTP_PW' } }));
    expect((await dbs(['--config', config, 'alert', 'create', 'mail', '--plan', 'app', '--on', 'failed', '--notify', 'email:ops@example.com'], { home: s.home })).code).toBe(0);
    const t = await dbs(['--config', config, 'alert', 'test', 'mail'], { home: s.home, env: { ...ENV, SMTP_PW: 'mail-pw-123' } });
    expect(t.code, t.stdout + t.stderr).toBe(0);
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]).toMatch(/^Subject: \[dbs\] test: alert mail$/m);
    expect(smtp.mails[0]).toMatch(/^To: <ops@example\.com>$/m);
    expect(smtp.mails[0]).toContain('"event": "alert.test"');
    expect(smtp.commands).toEqual(expect.arrayContaining(['MAIL FROM:<dbs@example.com>', 'RCPT TO:<ops@example.com>']));
    const auth = smtp.commands.find((c) => c.startsWith('AUTH PLAIN '))!;
    expect(Buffer.from(auth.slice(11), 'base64').toString()).toBe('\0mailer\0mail-pw-123');
    // The password is not readable: a failed delivery says so, it is no failed backup.
    const noPw = await dbs(['--config', config, 'alert', 'test', 'mail'], { home: s.home, env: ENV });
    expect(noPw.code).toBe(1);
    expect(noPw.stdout).toMatch(/NOT delivered: email:ops@example\.com \(.*SMTP_PW/);
    // Without smtp settings an email target is refused (exit 2).
    expect((await dbs(['alert', 'create', 'mail2', '--plan', 'app', '--on', 'failed', '--notify', 'email:ops@example.com'], { home: s.home })).code).toBe(2);
  });

  it('bad smtp settings are exit 2 with every problem (a password value is refused: references only)', async () => {
    const s = await setup();
    const config = join(tempDir('cfg'), 'dbs.config.json');
    writeFileSync(config, JSON.stringify({ smtp: { host: '', port: 70000, from: 'nobody', security: 'ssl', user: 'u', passwordFrom: 'hunter2', extra: 1 } }));
    const r = await dbs(['--json', '--config', config, 'alert', 'list'], { home: s.home });
    expect(r.code).toBe(2);
    const err = JSON.parse(r.stderr.trim());
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.details.problems).toEqual([
      expect.stringMatching(/smtp\.extra: unknown setting/),
      expect.stringMatching(/smtp\.host: must be a host name/),
      expect.stringMatching(/smtp\.port: must be a port/),
      expect.stringMatching(/smtp\.from: must be a mail address/),
      expect.stringMatching(/smtp\.security: must be none, starttls or tls/),
      expect.stringMatching(/smtp\.passwordFrom: must be env:VAR or file:PATH/),
    ]);
    expect(r.stderr).not.toContain('hunter2');
    writeFileSync(config, JSON.stringify({ smtp: { host: 'mail', from: 'a@b.c', user: 'u' } }));
    const half = await dbs(['--config', config, 'alert', 'list'], { home: s.home });
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/user and passwordFrom go together/);
  });

  it('STARTTLS: the mail goes over TLS after EHLO (a server that does not offer it is refused)', async () => {
    const dir = tempDir('tls');
    const r = await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const smtp = await smtpReceiver({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
    const plain = await smtpReceiver();
    const s = await setup();
    const config = join(dir, 'dbs.config.json');
    const cfg = (port: number) => writeFileSync(config, JSON.stringify({ smtp: { host: '127.0.0.1', port, from: 'dbs@example.com', security: 'starttls' } }));
    cfg(smtp.port);
    expect((await dbs(['--config', config, 'alert', 'create', 'mail', '--plan', 'app', '--on', 'failed', '--notify', 'email:ops@example.com'], { home: s.home })).code).toBe(0);
    // The real binary: NODE_EXTRA_CA_CERTS makes the test's certificate trusted (read at start-up).
    const t = await dbsBin(['--config', config, 'alert', 'test', 'mail'], { home: s.home, env: { ...ENV, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } });
    expect(t.code, t.stdout + t.stderr).toBe(0);
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.tlsCommands).toEqual(expect.arrayContaining(['MAIL FROM:<dbs@example.com>', 'RCPT TO:<ops@example.com>', 'DATA']));
    expect(smtp.commands.filter((c) => c.startsWith('MAIL'))).toEqual([]);
    cfg(plain.port);
    const refused = await dbsBin(['--config', config, 'alert', 'test', 'mail'], { home: s.home, env: ENV });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/does not offer STARTTLS/);
    expect(plain.mails).toHaveLength(0);
  });
});

/** A tiny SMTP server: records commands (before and after STARTTLS) and the mails' DATA. */
async function smtpReceiver(tls?: { key: Buffer; cert: Buffer }) {
  const mails: string[] = [];
  const commands: string[] = [];
  const tlsCommands: string[] = [];
  const server = createTcpServer((raw) => {
    let sock: import('node:net').Socket = raw;
    let secure = false;
    let buf = '';
    let data = false;
    const onData = (c: Buffer) => {
      buf += c.toString();
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (data) {
          if (line === '.') {
            data = false;
            sock.write('250 queued\r\n');
          } else mails[mails.length - 1] += `${line}\n`;
          continue;
        }
        (secure ? tlsCommands : commands).push(line);
        if (/^EHLO/i.test(line)) sock.write(`250-test\r\n${tls && !secure ? '250-STARTTLS\r\n' : ''}250 8BITMIME\r\n`);
        else if (/^STARTTLS/i.test(line) && tls) {
          sock.write('220 go ahead\r\n');
          raw.removeListener('data', onData);
          sock = new TLSSocket(raw, { isServer: true, key: tls.key, cert: tls.cert });
          secure = true;
          sock.on('data', onData);
          sock.on('error', () => undefined);
        } else if (/^DATA/i.test(line)) {
          data = true;
          mails.push('');
          sock.write('354 go\r\n');
        } else if (/^AUTH/i.test(line)) sock.write('235 ok\r\n');
        else if (/^QUIT/i.test(line)) sock.end('221 bye\r\n');
        else sock.write('250 ok\r\n');
      }
    };
    raw.on('data', onData);
    raw.on('error', () => undefined);
    raw.write('220 test ESMTP\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  servers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as { port: number }).port, mails, commands, tlsCommands };
}

describe('alerts under the real daemon', () => {
  it('a failing plan fires a webhook within 10 s; fixing it resolves the alert', async () => {
    const s = await setup(['--cron', '* * * * * *']);
    const hook = await receiver();
    expect((await dbs(['alert', 'create', 'down', '--all-plans', '--on', 'failed', '--notify', `webhook:${hook.url}/d`, '--secret-from', 'env:HOOK_SECRET'], { home: s.home })).code).toBe(0);
    s.break();
    const t0 = Date.now();
    const d = daemon(s.home, ['--probe', '0.5'], ENV);
    try {
      const fired = await until(() => hook.hits.find((h) => JSON.parse(h.body).event === 'alert.firing'), 10_000, 'the firing webhook');
      expect(fired.at - t0).toBeLessThan(10_000);
      expect(fired.headers['x-dbs-signature']).toBe(hmac(fired.body));
      expect(JSON.parse(fired.body)).toMatchObject({ alert: 'down', plan: 'app', state: 'firing', task: { status: 'failed' } });
      await d.waitFor((l) => l.event === 'alert.firing' && l.alert === 'down', 5_000);
      s.fix();
      const resolved = await until(() => hook.hits.find((h) => JSON.parse(h.body).event === 'alert.resolved'), 10_000, 'the resolved webhook');
      expect(JSON.parse(resolved.body)).toMatchObject({ alert: 'down', plan: 'app', state: 'ok', task: { status: 'succeeded' } });
      // One notification per transition, however many runs failed in between.
      expect(hook.hits.filter((h) => JSON.parse(h.body).event === 'alert.firing')).toHaveLength(1);
    } finally {
      const r = await d.stop();
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it('the daemon\'s periodic pass fires no-success-for with no task at all; a run elsewhere resolves it', async () => {
    const s = await setup();
    const hook = await receiver();
    expect((await dbs(['alert', 'create', 'stale', '--plan', 'app', '--on', 'no-success-for 1s', '--notify', `webhook:${hook.url}/s`], { home: s.home })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    const d = daemon(s.home, ['--probe', '0.3'], ENV);
    try {
      const line = await d.waitFor((l) => l.event === 'alert.firing' && l.alert === 'stale', 10_000);
      expect(line.plan).toBe('app');
      const fired = await until(() => hook.hits[0], 5_000, 'the firing webhook');
      expect(JSON.parse(fired.body)).toMatchObject({ event: 'alert.firing', task: null, violations: [expect.objectContaining({ rule: 'no-success-for 1s' })] });
      // A manual run in another process ends it; that process sends "resolved".
      const r = await dbs(['plan', 'run', 'app'], { home: s.home, env: ENV });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/alert stale resolved for plan app/);
      expect(JSON.parse(hook.hits.at(-1)!.body)).toMatchObject({ event: 'alert.resolved', task: { status: 'succeeded' } });
    } finally {
      const r = await d.stop();
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it('the periodic pass (the daemon\'s) fires "missed" for a scheduled run that did not start', async () => {
    const s = await setup(['--cron', '0 0 1 1 *']);
    const hook = await receiver();
    // A run was due long ago (the schedule was set before the last slot), none happened.
    const c = Catalog.open(s.home);
    try {
      const p = c.findPlan('app')!;
      c.updatePlan(p.id, { schedule: { ...p.schedule, since: '2020-01-01T00:00:00.000Z' } });
    } finally {
      c.close();
    }
    expect((await dbs(['alert', 'create', 'missed', '--plan', 'app', '--on', 'missed>1m', '--notify', `webhook:${hook.url}/m`], { home: s.home })).code).toBe(0);
    const { evaluateAll } = await import('../../src/core/alerts.js');
    const ctx = await coreContext(s.home);
    try {
      const r = await evaluateAll(ctx);
      expect(r).toEqual([expect.objectContaining({ alert: 'missed', plan: 'app', to: 'firing' })]);
      expect(hook.json(0)).toMatchObject({ event: 'alert.firing', violations: [expect.objectContaining({ rule: 'missed>1m', message: expect.stringMatching(/did not start within/) })] });
    } finally {
      ctx.close();
    }
  });
});

describe('dbs alert: completion, plan delete', () => {
  it('completes alert names and rule kinds; deleting a plan deletes its own alerts and their secret references', async () => {
    const s = await setup();
    expect((await dbs(['alert', 'create', 'zeta', '--plan', 'app', '--on', 'failed', '--notify', 'webhook:https://example.com/h'], { home: s.home })).code).toBe(0);
    expect((await dbs(['alert', 'create', 'alpha', '--all-plans', '--on', 'failed', '--notify', 'webhook:https://example.com/h'], { home: s.home })).code).toBe(0);
    const r = await dbs(['__complete', '--', '--home', s.home, 'alert', 'show', ''], { home: s.home });
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['words', 'alpha', 'zeta']);
    const on = await dbs(['__complete', '--', 'alert', 'create', 'x', '--on', ''], { home: s.home });
    // Deleting the plan deletes its own alert (and the secret reference); --all-plans alerts stay.
    expect((await dbs(['alert', 'update', 'zeta', '--secret-from', 'env:HOOK_SECRET'], { home: s.home })).code).toBe(0);
    const del = await dbs(['plan', 'delete', 'app', '--yes'], { home: s.home });
    expect(del.code, del.stderr).toBe(0);
    expect((await dbs(['--json', 'alert', 'list'], { home: s.home })).json().map((a: { name: string }) => a.name)).toEqual(['alpha']);
    expect((snapshot(s.home)[2] as { owner_kind: string }[]).filter((r) => r.owner_kind === 'alert')).toEqual([]);
    expect(on.stdout.split('\n').filter(Boolean)).toEqual(['words', 'failed', 'missed', 'no-success-for', 'duration>', 'cpu>', 'mem>', 'out<']);
  });
});
