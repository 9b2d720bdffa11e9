// `dbs apply -f FILE` and `dbs export`: the example file applied into an empty catalog with the
// test servers (MariaDB, Redis, Ceph RGW), idempotence (catalog bytes unchanged), export round
// trip, every problem of a bad file at once (exit 2, nothing written), secrets only as
// references, --dry-run, and an update of one field.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { bucketName, makeBucket } from '../support/buckets.js';
import { mysqlConn, s3Client, servers, tempDir, testbed } from '../support/testbed.js';

const tag = randomBytes(3).toString('hex');
const USER = `apply_${tag}`;
const DB = `apply_${tag}`;
const PW = `pw-${randomBytes(8).toString('hex')}`;
const BUCKET = bucketName(`ap${tag}`);
let root: Connection;
let secrets: string;

beforeAll(async () => {
  await servers('mariadb', 'redis', 's3');
  root = await mysqlConn(testbed().mariadb);
  await root.query(`CREATE DATABASE \`${DB}\`; CREATE TABLE \`${DB}\`.t (x INT); INSERT INTO \`${DB}\`.t VALUES (1);`);
  await root.query(`CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW}'; GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'127.0.0.1';`);
  await makeBucket(s3Client(testbed().s3), BUCKET);
  secrets = tempDir('secrets');
  writeFileSync(join(secrets, 'db-password'), `${PW}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await root?.query(`DROP USER IF EXISTS '${USER}'@'127.0.0.1'; DROP DATABASE IF EXISTS \`${DB}\``);
  await root?.end();
});

/** The example file with this test bed's servers, paths and names in it. */
function example(): { text: string; env: NodeJS.ProcessEnv } {
  const t = testbed();
  const text = readFileSync(new URL('../../examples/dbs.yaml', import.meta.url), 'utf8')
    .replace('/var/backups/dbs', tempDir('pool'))
    .replace('http://127.0.0.1:7480', t.s3.endpoint)
    .replace('dbs-backups', BUCKET)
    .replace('prefix: prod', `prefix: apply-${tag}`)
    .replace('AKIAEXAMPLE', t.s3.accessKey)
    .replace('backup@127.0.0.1:3306', `${USER}@127.0.0.1:${t.mariadb.port}`)
    .replace('/run/secrets/db-password', join(secrets, 'db-password'))
    .replace('[shop]', `[${DB}]`)
    .replace('127.0.0.1:6379', `127.0.0.1:${t.redis.port}`)
    .replace('/srv/uploads', tempDir('uploads'));
  return { text, env: { S3_SECRET_KEY: t.s3.secretKey } };
}

function catalogBytes(home: string): Buffer {
  return Buffer.concat(readdirSync(home).filter((f) => f.startsWith('catalog.db')).sort().map((f) => readFileSync(join(home, f))));
}

function writeFile(text: string): string {
  const f = join(tempDir('cfg'), 'dbs.yaml');
  writeFileSync(f, text);
  return f;
}

/** plan show --json of every plan, without what differs between two catalogs (ids, times, runs). */
async function planShapes(home: string) {
  const list = (await dbs(['--json', 'plan', 'list'], { home })).json() as { name: string }[];
  const out: Record<string, unknown> = {};
  for (const p of list) {
    const { id: _i, createdAt: _c, updatedAt: _u, poolId: _p, nextRun: _n, nextRuns: _ns, schedule, options, ...rest } = (await dbs(['--json', 'plan', 'show', p.name], { home })).json();
    const { since: _s, ...sched } = schedule;
    const { standbyPoolId: _sp, basePlanId: _b, replicateTo, ...opts } = options;
    out[p.name] = { ...rest, schedule: sched, options: { ...opts, replicas: Array.isArray(replicateTo) ? replicateTo.length : 0 } };
  }
  return out;
}

describe('dbs apply', () => {
  let home: string;
  let file: string;
  let env: NodeJS.ProcessEnv;

  it('applies the example into an empty catalog: gateway, 2 pools, 3 plans created; a second apply changes nothing and writes nothing', async () => {
    home = tempDir('home');
    const ex = example();
    env = ex.env;
    file = writeFile(ex.text);
    const a = await dbs(['--json', 'apply', '-f', file], { home, env });
    expect(a.code, a.stderr + a.stdout).toBe(0);
    const r = a.json();
    expect(r.changes.map((c: { kind: string; name: string; action: string }) => `${c.action} ${c.kind} ${c.name}`)).toEqual([
      'create gateway gateway',
      'create pool local',
      'create pool offsite',
      'create plan shop-nightly',
      'create plan cache',
      'create plan uploads',
      'create alert shop-failed',
      'create alert any-slow',
    ]);
    const alerts = (await dbs(['--json', 'alert', 'list'], { home })).json();
    expect(alerts.map((a: { name: string; plan: string | null; rules: string[]; targets: string[]; secretFrom: string | null }) => [a.name, a.plan, a.rules, a.targets.length, a.secretFrom])).toEqual([
      ['any-slow', null, ['duration>2h', 'missed'], 1, null],
      ['shop-failed', 'shop-nightly', ['failed', 'no-success-for 26h'], 1, 'env:DBS_WEBHOOK_SECRET'],
    ]);
    const pools = (await dbs(['--json', 'pool', 'list'], { home })).json();
    expect(pools.map((p: { name: string; type: string }) => `${p.name}:${p.type}`).sort()).toEqual(['local:local', 'offsite:s3']);
    const plans = (await dbs(['--json', 'plan', 'list'], { home })).json();
    expect(plans.map((p: { name: string; sourceKind: string; backupType: string; poolName: string; timer: string }) => [p.name, p.sourceKind, p.backupType, p.poolName, p.timer]).sort()).toEqual([
      ['cache', 'redis', 'logical', 'local', 'hourly at :15 (UTC)'],
      ['shop-nightly', 'mysql', 'logical', 'local', 'daily at 02:30 (UTC)'],
      ['uploads', 'dir', 'snapshot', 'offsite', 'cron "0 3 * * 0" (UTC)'],
    ]);
    const shop = (await dbs(['--json', 'plan', 'show', 'shop-nightly'], { home })).json();
    expect(shop.credential).toEqual({ mode: 'reference', from: `file:${join(secrets, 'db-password')}` });
    expect(shop.replicas).toEqual(['offsite']);
    expect((await dbs(['--json', 'pool', 'show', 'offsite'], { home })).json().secretKey).toEqual({ mode: 'reference', from: 'env:S3_SECRET_KEY' });
    expect((await dbs(['--json', 'gateway', 'show'], { home })).json().bandwidthText).toBe('50MiB/s');
    // No secret value reached the catalog.
    expect(catalogBytes(home).includes(Buffer.from(PW))).toBe(false);
    expect(catalogBytes(home).includes(Buffer.from(testbed().s3.secretKey))).toBe(false);

    const before = catalogBytes(home);
    const b = await dbs(['apply', '-f', file], { home, env });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/no changes/);
    expect(b.stdout).not.toMatch(/^(created|updated)/m);
    expect(catalogBytes(home).equals(before)).toBe(true);
    const j = (await dbs(['--json', 'apply', '-f', file], { home, env })).json();
    expect(j.changes.every((c: { action: string }) => c.action === 'unchanged')).toBe(true);
    expect(catalogBytes(home).equals(before)).toBe(true);
  });

  it('export, then apply into another empty catalog: the same plans (plan show --json minus ids and times)', async () => {
    const e = await dbs(['export'], { home, env });
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).not.toContain(PW);
    expect(e.stdout).not.toContain(testbed().s3.secretKey);
    expect(e.stdout).toMatch(/secretKey:\s+from: env:S3_SECRET_KEY/);
    // The other catalog binds the same locations: the pools' markers are adopted there.
    const home2 = tempDir('home2');
    const exported = writeFile(e.stdout);
    const a = await dbs(['--json', 'apply', '-f', exported], { home: home2, env });
    expect(a.code, a.stderr + a.stdout).toBe(0);
    expect(await planShapes(home2)).toEqual(await planShapes(home));
    const alertShapes = async (h: string) =>
      (await dbs(['--json', 'alert', 'list'], { home: h })).json().map((a: Record<string, unknown>) => ({ name: a.name, plan: a.plan, allPlans: a.allPlans, rules: a.rules, targets: a.targets, secretFrom: a.secretFrom, remark: a.remark }));
    expect(e.stdout).toMatch(/alerts:/);
    expect((await alertShapes(home2)).length).toBe(2);
    expect(await alertShapes(home2)).toEqual(await alertShapes(home));
    // Applying the export back into the first catalog changes nothing.
    const back = await dbs(['--json', 'apply', '-f', exported], { home, env });
    expect(back.json().changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual([]);
  });

  it('an update of one field reports exactly that change and makes it', async () => {
    const changed = writeFile(readFileSync(file, 'utf8').replace('retention: {keepLast: 24}', 'retention: {keepLast: 48}'));
    const before = catalogBytes(home);
    const d = await dbs(['--json', 'apply', '-f', changed, '--dry-run'], { home, env });
    expect(d.code, d.stderr).toBe(0);
    expect(catalogBytes(home).equals(before)).toBe(true);
    const a = await dbs(['--json', 'apply', '-f', changed], { home, env });
    expect(a.code, a.stderr).toBe(0);
    const changes = a.json().changes.filter((c: { action: string }) => c.action !== 'unchanged');
    expect(changes).toEqual([{ kind: 'plan', name: 'cache', action: 'update', fields: [{ field: 'retention', from: { keepLast: 24 }, to: { keepLast: 48 } }] }]);
    expect(d.json().changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual(changes);
    expect((await dbs(['--json', 'plan', 'show', 'cache'], { home })).json().retention).toEqual({ keepLast: 48 });
    // The gateway's cap and a pool's remark: exactly those fields.
    const g = await dbs(['--json', 'apply', '-f', writeFile(readFileSync(changed, 'utf8').replace('bandwidth: 50MiB/s', 'bandwidth: 20MiB/s').replace('remark: first copy, on this host', 'remark: moved'))], { home, env });
    expect(g.code, g.stderr).toBe(0);
    expect(g.json().changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual([
      { kind: 'gateway', name: 'gateway', action: 'update', fields: [{ field: 'bandwidth', from: '50MiB/s', to: '20MiB/s' }] },
      { kind: 'pool', name: 'local', action: 'update', fields: [{ field: 'remark', from: 'first copy, on this host', to: 'moved' }] },
    ]);
    expect((await dbs(['--json', 'gateway', 'show'], { home })).json().bandwidthText).toBe('20MiB/s');
    expect((await dbs(['--json', 'pool', 'show', 'local'], { home })).json().remark).toBe('moved');
    const text = await dbs(['apply', '-f', file], { home, env });
    expect(text.stdout).toMatch(/updated plan cache\n {4}retention: \{"keepLast":48\} -> \{"keepLast":24\}/);
    // An alert's rules and its plan: exactly those fields, made through alert update.
    const al = await dbs(['--json', 'apply', '-f', writeFile(readFileSync(file, 'utf8').replace('on: ["duration>2h", "missed"]', 'on: ["duration>3h"]').replace('    allPlans: true\n', '    plan: cache\n'))], { home, env });
    expect(al.code, al.stderr).toBe(0);
    const alertChanges = al.json().changes.filter((c: { action: string }) => c.action !== 'unchanged');
    expect(alertChanges.map((c: { kind: string; name: string; action: string }) => `${c.action} ${c.kind} ${c.name}`)).toEqual(['update alert any-slow']);
    expect([...alertChanges[0].fields].sort((a: { field: string }, b: { field: string }) => a.field.localeCompare(b.field))).toEqual([
      { field: 'allPlans', from: true },
      { field: 'on', from: ['duration>2h', 'missed'], to: ['duration>3h'] },
      { field: 'plan', to: 'cache' },
    ]);
    const shown = (await dbs(['--json', 'alert', 'show', 'any-slow'], { home })).json();
    expect([shown.plan, shown.rules]).toEqual(['cache', ['duration>3h']]);
    // Back to the file: unchanged once more after it.
    expect((await dbs(['apply', '-f', file], { home, env })).code).toBe(0);
    expect((await dbs(['--json', 'apply', '-f', file], { home, env })).json().changes.every((c: { action: string }) => c.action === 'unchanged')).toBe(true);
  });

  it('a bad file against a full catalog: exit 2, every problem in the text output, catalog bytes unchanged (its good changes not made either)', async () => {
    const bad = writeFile(
      readFileSync(file, 'utf8')
        .replace('retention: {keepLast: 24}', 'retention: {keepLast: 99}')
        .replace('bandwidth: 50MiB/s', 'bandwidth: fast')
        .replace('type: snapshot', 'type: snapshot\n    tables: [a.b]'),
    );
    const before = catalogBytes(home);
    const r = await dbs(['apply', '-f', bad], { home, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not valid \(2 problems\); nothing was changed/);
    expect(r.stderr).toMatch(/gateway\.bandwidth: /);
    expect(r.stderr).toMatch(/plans\[2\]: --tables does not apply to a dir snapshot backup plan/);
    expect(catalogBytes(home).equals(before)).toBe(true);
    expect((await dbs(['--json', 'plan', 'show', 'cache'], { home })).json().retention).toEqual({ keepLast: 24 });
  });

  it('--dry-run on an empty catalog prints the plan of changes and writes nothing', async () => {
    const h = tempDir('home-dry');
    const r = await dbs(['apply', '-f', file, '--dry-run'], { home: h, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^would create plan shop-nightly/m);
    expect(r.stdout).toMatch(/8 change\(s\) planned \(--dry-run: nothing written\)/);
    const pools = await dbs(['--json', 'pool', 'list'], { home: h });
    expect(pools.json()).toEqual([]);
    expect((await dbs(['--json', 'plan', 'list'], { home: h })).json()).toEqual([]);
    expect((await dbs(['--json', 'alert', 'list'], { home: h })).json()).toEqual([]);
  });

  it('objects not in the file are left alone and said so', async () => {
    const only = writeFile('pools:\n  - name: local2\n    type: local\n    path: ' + tempDir('p2') + '\n');
    const r = await dbs(['apply', '-f', only], { home, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/left alone \(not in the file\): .*plan shop-nightly/);
    expect((await dbs(['--json', 'plan', 'list'], { home })).json()).toHaveLength(3);
  });
});

describe('dbs apply: bad files (exit 2, every problem at once, nothing written)', () => {
  it('a file with 3 problems reports all 3 with their paths', async () => {
    const home = tempDir('home-bad');
    const pool = tempDir('pool');
    const f = writeFile(`pools:
  - name: p
    type: local
    path: ${pool}
plans:
  - name: a
    source: sqlite:///tmp/a.db
    pool: p
    schedule: {every: daily, at: "25:00"}
  - name: b
    source: sqlite:///tmp/b.db
    pool: nowhere
  - name: c
    source: sqlite:///tmp/c.db
    pool: p
    retention: {keepLast: 0}
`);
    const r = await dbs(['--json', 'apply', '-f', f], { home });
    expect(r.code).toBe(2);
    const problems: string[] = JSON.parse(r.stderr.trim().split('\n').at(-1)!).details.problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^plans\[0\]\.schedule: .*25:00/);
    expect(problems[1]).toMatch(/^plans\[1\]\.pool: pool "nowhere" is neither in the file nor bound/);
    expect(problems[2]).toMatch(/^plans\[2\]\.retention: --keep-last "0"/);
    expect((await dbs(['--json', 'pool', 'list'], { home })).json()).toEqual([]);
    expect(readdirSync(pool)).toEqual([]);
  });

  it.each([
    ['an unknown top-level key', 'pool:\n  - name: p\n', /^pool: unknown key/],
    ['an unknown plan key', 'plans:\n  - name: a\n    source: sqlite:///tmp/a.db\n    pool: p\n    keepDays: 3\n', /^plans\[0\]\.keepDays: unknown key/],
    ['an unknown schedule key', 'plans:\n  - name: a\n    source: sqlite:///tmp/a.db\n    schedule: {daily: "02:00"}\n', /^plans\[0\]\.schedule\.daily: unknown key/],
    ['an alert with a bad rule', 'alerts:\n  - name: a1\n    allPlans: true\n    on: [sometimes]\n    notify: ["webhook:https://h.example/x"]\n', /^alerts\[0\]: --on "sometimes"/],
    ['an alert with a bad target', 'alerts:\n  - name: a1\n    allPlans: true\n    on: [failed]\n    notify: ["webhook:ftp://h.example/x"]\n', /^alerts\[0\]: .*ftp/],
    ['an alert on a plan in neither the file nor the catalog', 'alerts:\n  - name: a1\n    plan: nope\n    on: [failed]\n    notify: ["webhook:https://h.example/x"]\n', /^alerts\[0\]\.plan: plan "nope" is neither in the file nor in the catalog/],
    ['an alert with plan and allPlans', 'alerts:\n  - name: a1\n    plan: nope\n    allPlans: true\n    on: [failed]\n    notify: ["webhook:https://h.example/x"]\n', /^alerts\[0\]: --plan and --all-plans are exclusive/],
    ['a literal alert secret', 'alerts:\n  - name: a1\n    allPlans: true\n    on: [failed]\n    notify: ["webhook:https://h.example/x"]\n    secret: hunter2\n', /^alerts\[0\]\.secret: a literal secret is refused/],
    ['an unknown alert key', 'alerts:\n  - name: a1\n    allPlans: true\n    on: [failed]\n    notify: ["webhook:https://h.example/x"]\n    rules: [failed]\n', /^alerts\[0\]\.rules: unknown key/],
    ['a literal plan password', 'plans:\n  - name: a\n    source: mysql://u@127.0.0.1:1\n    pool: p\n    password: hunter2\n', /^plans\[0\]\.password: a literal secret is refused/],
    ['a password in the source URL', 'plans:\n  - name: a\n    source: "mysql://u:hunter2@127.0.0.1:1"\n    databases: [x]\n', /^plans\[0\]\.source: the URL must not contain a password \(a literal secret\): give it as a reference, password: \{from/],
    ['a literal pool secret key', 'pools:\n  - name: s\n    type: s3\n    endpoint: http://127.0.0.1:9\n    accessKey: a\n    secretKey: hunter2\n', /^pools\[0\]\.secretKey: a literal secret is refused/],
    ['a reference with another key', 'pools:\n  - name: s\n    type: s3\n    endpoint: http://127.0.0.1:9\n    accessKey: a\n    secretKey: {from: "env:K", value: hunter2}\n', /^pools\[0\]\.secretKey: must be \{from/],
    ['a bad reference', 'pools:\n  - name: s\n    type: s3\n    endpoint: http://127.0.0.1:9\n    accessKey: a\n    secretKey: {from: "vault:x"}\n', /^pools\[0\]\.secretKey: --secret-key-from must be env:VAR or file:PATH/],
    ['an option the type does not take', 'pools:\n  - name: p\n    type: local\n    path: /tmp\nplans:\n  - name: a\n    source: sqlite:///tmp/a.db\n    pool: p\n    databases: [x]\n', /^plans\[0\]: --databases does not apply/],
    ['a path on an s3 pool', 'pools:\n  - name: s\n    type: s3\n    endpoint: http://127.0.0.1:9\n    path: /tmp\n', /^pools\[0\]: --path applies to local pools only/],
    ['a bad gateway address', 'gateway:\n  ip: 999.1.1.1\n', /^gateway\.ip: --ip "999\.1\.1\.1" is not an IP address/],
    ['a bad compression', 'plans:\n  - name: a\n    source: sqlite:///tmp/a.db\n    pool: p\n    compress: lz4\n', /^plans\[0\]\.compress: --compress "lz4" is not one of zstd/],
    ['a YAML syntax error', 'plans: [\n', /dbs\.yaml: /],
  ])('%s: exit 2, the problem named, nothing written', async (_what, text, re) => {
    const home = tempDir('home-bad');
    const r = await dbs(['--json', 'apply', '-f', writeFile(text)], { home, env: { K: 'k' } });
    expect(r.code, r.stderr).toBe(2);
    const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.details.problems.some((p: string) => re.test(p)), err.details.problems.join('\n')).toBe(true);
    expect(r.stderr).not.toContain('hunter2');
    expect((await dbs(['--json', 'pool', 'list'], { home })).json()).toEqual([]);
    expect((await dbs(['--json', 'plan', 'list'], { home })).json()).toEqual([]);
    expect((await dbs(['--json', 'alert', 'list'], { home })).json()).toEqual([]);
  });

  it('export of a plan whose password was copied in: a note saying to supply a reference, never the value', async () => {
    const home = tempDir('home-copy');
    const pool = tempDir('pool');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home })).code).toBe(0);
    const t = testbed();
    const c = await dbs(['plan', 'create', 'copied', '--source', `mysql://${USER}@127.0.0.1:${t.mariadb.port}`, '--databases', DB, '--pool', 'p', '--password-env', 'PW'], { home, env: { PW } });
    expect(c.code, c.stderr).toBe(0);
    const e = await dbs(['export'], { home });
    expect(e.code).toBe(0);
    expect(e.stdout + e.stderr).not.toContain(PW);
    expect(e.stdout).toMatch(/# NOTE: plan copied: its password was copied into the catalog and is not exported; supply it as a reference/);
    expect(e.stderr).toMatch(/plan copied: its password was copied/);
  });
});

describe('dbs apply: an incremental plan on a base plan of the same file', () => {
  it('creates both (the incremental takes its base plan\'s source), a second apply changes nothing, the export round-trips', async () => {
    const home = tempDir('home-inc');
    const data = tempDir('data');
    writeFileSync(join(data, 'a.txt'), 'a');
    const f = writeFile(`pools:
  - {name: p, type: local, path: ${tempDir('pool')}}
plans:
  - {name: files, source: "dir://${data}", pool: p, type: snapshot, schedule: {every: weekly, days: [sun], at: "03:00", tz: UTC}}
  - {name: files-inc, basePlan: files, type: incremental, autoFull: true, schedule: {every: daily, at: "03:30", tz: UTC}, retention: {keepLast: 14}}
`);
    const a = await dbs(['--json', 'apply', '-f', f], { home });
    expect(a.code, a.stderr).toBe(0);
    const inc = (await dbs(['--json', 'plan', 'show', 'files-inc'], { home })).json();
    expect([inc.backupType, inc.associatedPlans, inc.source.url, inc.options.autoFull]).toEqual(['incremental', ['files'], `dir://${data}`, true]);
    const before = catalogBytes(home);
    const again = await dbs(['--json', 'apply', '-f', f], { home });
    expect(again.json().changes.map((c: { action: string }) => c.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(catalogBytes(home).equals(before)).toBe(true);
    const e = await dbs(['export'], { home });
    const home2 = tempDir('home-inc2');
    const b = await dbs(['--json', 'apply', '-f', writeFile(e.stdout)], { home: home2 });
    expect(b.code, b.stderr).toBe(0);
    expect(await planShapes(home2)).toEqual(await planShapes(home));
  });
});

describe('dbs apply/export: small cases', () => {
  it('apply without -f is a usage error (exit 2); a missing file names it (exit 2)', async () => {
    const home = tempDir('home-small');
    const r = await dbs(['apply'], { home });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing -f FILE/);
    const m = await dbs(['apply', '-f', join(home, 'nope.yaml')], { home });
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/cannot read the file .*nope\.yaml/);
  });

  it('a relative file: reference is taken from the file\'s folder (shown in --dry-run, nothing written)', async () => {
    const home = tempDir('home-small');
    const dir = tempDir('cfg');
    const f = join(dir, 'dbs.yaml');
    writeFileSync(f, `pools:\n  - {name: p, type: local, path: ${tempDir('pool')}}\nplans:\n  - {name: m, source: "mysql://u@127.0.0.1:1", databases: [shop], pool: p, password: {from: "file:secrets/pw"}}\n`);
    const r = await dbs(['--json', 'apply', '-f', f, '--dry-run'], { home, cwd: home });
    expect(r.code, r.stderr).toBe(0);
    const plan = r.json().changes.find((c: { kind: string }) => c.kind === 'plan');
    expect(plan.fields.find((x: { field: string }) => x.field === 'password').to).toEqual({ from: `file:${join(dir, 'secrets/pw')}` });
    expect((await dbs(['--json', 'pool', 'list'], { home })).json()).toEqual([]);
  });

  it('a run-once plan whose time has passed: the same file applies again with no changes (no "in the past" error)', async () => {
    const home = tempDir('home-small');
    const at = new Date(Date.now() + 1000).toISOString();
    const f = writeFile(`pools:\n  - {name: p, type: local, path: ${tempDir('pool')}}\nplans:\n  - {name: o, source: "dir://${tempDir('data')}", pool: p, type: snapshot, schedule: {once: "${at}", tz: UTC}}\n`);
    const a = await dbs(['apply', '-f', f], { home });
    expect(a.code, a.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(at) - Date.now() + 50)));
    const b = await dbs(['apply', '-f', f], { home });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/unchanged plan o\nno changes/);
  });

  it('export -o FILE writes the file (applied back: no changes)', async () => {
    const home = tempDir('home-small');
    const pool = tempDir('pool');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool, '--remark', 'r'], { home })).code).toBe(0);
    expect((await dbs(['plan', 'create', 'd', '--source', `dir://${tempDir('data')}`, '--pool', 'p', '--every', 'weekly', '--days', 'mon,thu', '--at', '04:00', '--keep-last', '3'], { home })).code).toBe(0);
    const out = join(tempDir('cfg'), 'exported.yaml');
    const e = await dbs(['export', '-o', out], { home });
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain(`wrote ${out}`);
    expect(readFileSync(out, 'utf8')).toMatch(/days:\n\s+- mon\n\s+- thu/);
    expect(readFileSync(out, 'utf8')).toContain('at: "04:00"');
    const a = await dbs(['apply', '-f', out], { home });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/unchanged pool p\nunchanged plan d\nno changes/);
  });
});

describe('dbs apply: every kind of plan change goes through plan update and then compares equal', () => {
  it('pool, standby, replicas with remote retention, encryption, schedule, selection: changed, then removed; each re-apply is unchanged', async () => {
    const home = tempDir('home-steps');
    const data = tempDir('data');
    const pools = ['a', 'b', 'c'].map((n) => `  - {name: ${n}, type: local, path: ${tempDir(`pool-${n}`)}}`).join('\n');
    const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    const file = (plan: string) => writeFile(`pools:\n${pools}\nplans:\n  - {name: d, source: "dir://${data}", type: snapshot, ${plan}}\n`);
    const steps: [string, string[]][] = [
      ['pool: a', []],
      ['pool: b, schedule: {every: daily, at: "01:00", tz: UTC}', ['pool', 'schedule']],
      ['pool: b, schedule: {every: daily, at: "01:00", tz: UTC}, standbyPool: a, replicateTo: [c], remoteRetention: {keepLast: 5}', ['standbyPool', 'replicateTo', 'remoteRetention']],
      [`pool: b, schedule: {every: daily, at: "01:00", tz: UTC}, standbyPool: a, replicateTo: [c], encryptTo: [${RECIPIENT}], exclude: ["*.tmp"]`, ['exclude', 'encryptTo', 'remoteRetention']],
      ['pool: a', ['pool', 'schedule', 'exclude', 'encryptTo', 'standbyPool', 'replicateTo']],
    ];
    for (const [plan, expected] of steps) {
      const f = file(plan);
      const r = await dbs(['--json', 'apply', '-f', f], { home });
      expect(r.code, `${plan}\n${r.stderr}`).toBe(0);
      const c = r.json().changes.find((x: { kind: string }) => x.kind === 'plan');
      if (expected.length) expect(c.fields.map((x: { field: string }) => x.field).sort(), plan).toEqual([...expected].sort());
      const again = await dbs(["--json", "apply", "-f", f], { home });
      expect(again.code, again.stderr).toBe(0);
      expect(again.json().changes.every((x: { action: string }) => x.action === 'unchanged'), `${plan}: ${JSON.stringify(again.json().changes)}`).toBe(true);
    }
    const show = (await dbs(['--json', 'plan', 'show', 'd'], { home })).json();
    expect([show.poolName, show.standbyPool, show.replicas, show.recipients, show.timer]).toEqual(['a', null, [], [], 'manual']);
  });
});

describe('dbs apply --prune', () => {
  it('deletes the plans and unbinds the pools the file does not name (dry-run first: nothing written); refused (exit 4, nothing written) while a plan has backups', async () => {
    const home = tempDir('home-prune');
    const data = tempDir('data');
    writeFileSync(join(data, 'a.txt'), 'a');
    const full = writeFile(`pools:\n  - {name: p, type: local, path: ${tempDir('pool')}}\n  - {name: q, type: local, path: ${tempDir('pool')}}\nplans:\n  - {name: keep, source: "dir://${data}", pool: p, type: snapshot}\n  - {name: gone, source: "dir://${data}", pool: q, type: snapshot}\n`);
    expect((await dbs(['apply', '-f', full], { home })).code).toBe(0);
    const small = writeFile(`plans:\n  - {name: keep, source: "dir://${data}", pool: p, type: snapshot}\n`);
    const before = catalogBytes(home);
    const d = await dbs(['apply', '-f', small, '--prune', '--dry-run'], { home });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/would delete plan gone\nwould unbind pool q/);
    expect(catalogBytes(home).equals(before)).toBe(true);
    // A backup of the plan to prune: refused, nothing written.
    expect((await dbs(['plan', 'run', 'gone'], { home })).code).toBe(0);
    const withBackup = catalogBytes(home);
    const r = await dbs(['--json', 'apply', '-f', small, '--prune'], { home });
    expect(r.code).toBe(4);
    const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    expect(err.details.problems).toEqual([expect.stringMatching(/^plan gone: it has 1 backup\(s\)/), expect.stringMatching(/^pool q: the catalog knows 1 backup copy in it/)]);
    expect(catalogBytes(home).equals(withBackup)).toBe(true);
    expect((await dbs(['plan', 'delete', 'gone', '--with-backups'], { home })).code).toBe(0);
    const ok = await dbs(['apply', '-f', small, '--prune'], { home });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/unchanged plan keep\nunbound pool q/);
    expect((await dbs(['--json', 'pool', 'list'], { home })).json().map((p: { name: string }) => p.name)).toEqual(['p']);
    // An alert the file does not name: left alone and said so, deleted with --prune.
    expect((await dbs(['alert', 'create', 'stray', '--plan', 'keep', '--on', 'failed', '--notify', 'webhook:https://h.example/x'], { home })).code).toBe(0);
    const left = await dbs(['apply', '-f', small], { home });
    expect(left.stdout).toMatch(/left alone \(not in the file\): alert stray/);
    const pr = await dbs(['apply', '-f', small, '--prune'], { home });
    expect(pr.code, pr.stderr).toBe(0);
    expect(pr.stdout).toMatch(/deleted alert stray/);
    expect((await dbs(['--json', 'alert', 'list'], { home })).json()).toEqual([]);
  });
});
