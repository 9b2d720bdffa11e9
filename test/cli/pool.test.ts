// `dbs pool ...` as a user runs it: in-process, real local directories and a real S3 server.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs, dbsBin } from '../support/cli.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

function home() {
  return tempDir('home');
}

describe('pool bind (local)', () => {
  it('binds, lists, shows, updates, checks and unbinds', async () => {
    const h = home();
    const dir = tempDir('pool');
    const bind = await dbs(['--json', 'pool', 'bind', 'main', '--type', 'local', '--path', dir, '--remark', 'first pool'], { home: h });
    expect(bind.code, bind.stderr).toBe(0);
    const id = bind.json().pool.id as string;
    expect(id).toMatch(/^pool-[0-9a-f]{10}$/);
    const marker = JSON.parse(readFileSync(join(dir, 'dbs', 'pool.json'), 'utf8'));
    expect(marker).toMatchObject({ format: 1, id });
    expect(readdirSync(join(dir, 'dbs'))).toEqual(['pool.json']); // the probe object is gone

    const list = await dbs(['--json', 'pool', 'list'], { home: h });
    expect(list.json()).toEqual([expect.objectContaining({ id, name: 'main', type: 'local', status: 'online', location: dir, plans: 0 })]);
    const human = await dbs(['pool', 'list'], { home: h });
    for (const col of ['NAME', 'ID', 'STATUS', 'TYPE', 'LOCATION', 'PLANS', 'CREATED', 'UPDATED']) expect(human.stdout).toContain(col);

    const byId = await dbs(['--json', 'pool', 'show', id], { home: h });
    expect(byId.json()).toMatchObject({ name: 'main', remark: 'first pool' });

    const upd = await dbs(['--json', 'pool', 'update', 'main', '--name', 'primary', '--remark', 'renamed'], { home: h });
    expect(upd.code, upd.stderr).toBe(0);
    expect(upd.json()).toMatchObject({ id, name: 'primary', remark: 'renamed' });

    const check = await dbs(['--json', 'pool', 'check', 'primary'], { home: h });
    expect(check.code).toBe(0);
    expect(check.json()).toMatchObject({ status: 'online' });
    expect(check.json().latencyMs).toBeGreaterThan(0);

    const unbind = await dbs(['pool', 'unbind', 'primary'], { home: h });
    expect(unbind.code, unbind.stderr).toBe(0);
    expect((await dbs(['--json', 'pool', 'list'], { home: h })).json()).toEqual([]);
    expect(existsSync(join(dir, 'dbs', 'pool.json'))).toBe(true); // data stays
  });

  it('keeps the catalog folder 0700 and the file 0600', async () => {
    const h = join(tempDir('home'), 'nested');
    const r = await dbs(['pool', 'list'], { home: h });
    expect(r.code).toBe(0);
    expect(statSync(h).mode & 0o777).toBe(0o700);
    expect(statSync(join(h, 'catalog.db')).mode & 0o777).toBe(0o600);
  });

  it('adopts a pool that holds the marker of another catalog, and says so', async () => {
    const dir = tempDir('pool');
    const a = await dbs(['--json', 'pool', 'bind', 'p', '--type', 'local', '--path', dir], { home: home() });
    const b = await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', dir], { home: home() });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain('adopted');
    expect(b.stdout).toContain(a.json().pool.id);
  });

  it('records offline when the pool directory disappears (exit 6) and never recreates it', async () => {
    const h = home();
    const dir = tempDir('pool');
    await dbs(['pool', 'bind', 'gone', '--type', 'local', '--path', dir], { home: h });
    rmSync(dir, { recursive: true });
    const r = await dbs(['--json', 'pool', 'check', 'gone'], { home: h });
    expect(r.code).toBe(6);
    expect(existsSync(dir)).toBe(false);
    expect(r.json()).toMatchObject({ status: 'offline' });
    const show = await dbs(['--json', 'pool', 'show', 'gone'], { home: h });
    expect(show.json()).toMatchObject({ status: 'offline' });
    expect(show.json().statusMessage).not.toBe('');
  });
});

describe('pool bind: bad input changes nothing', () => {
  const cases: [string, (dir: string) => string[], number, RegExp][] = [
    ['unknown type', () => ['pool', 'bind', 'x', '--type', 'ftp'], 2, /unknown pool type "ftp".*\n.*hint: use --type local or --type s3/],
    ['missing --type', () => ['pool', 'bind', 'x'], 2, /--type/],
    ['missing --path', () => ['pool', 'bind', 'x', '--type', 'local'], 2, /needs --path/],
    ['missing --endpoint', () => ['pool', 'bind', 'x', '--type', 's3'], 2, /needs --endpoint/],
    ['relative path', () => ['pool', 'bind', 'x', '--type', 'local', '--path', 'backups'], 2, /relative/],
    ['missing path', (d) => ['pool', 'bind', 'x', '--type', 'local', '--path', join(d, 'nope')], 2, /does not exist.*\n.*mkdir -p/],
    ['read-only path', () => ['pool', 'bind', 'x', '--type', 'local', '--path', '/sys/kernel'], 7, /permission denied/],
    ['empty name', (d) => ['pool', 'bind', '', '--type', 'local', '--path', d], 2, /name is empty/],
    ['control characters', (d) => ['pool', 'bind', 'a\x1bb', '--type', 'local', '--path', d], 2, /control characters/],
    ['endpoint not a URL', () => ['pool', 'bind', 'x', '--type', 's3', '--endpoint', 'nowhere'], 2, /not a URL/],
    ['unreachable endpoint', () => ['pool', 'bind', 'x', '--type', 's3', '--endpoint', 'http://127.0.0.1:9', '--access-key', 'a', '--secret-key-env', 'SK'], 6, /cannot reach/],
    ['secret env not set', () => ['pool', 'bind', 'x', '--type', 's3', '--endpoint', 'http://127.0.0.1:9', '--access-key', 'a', '--secret-key-env', 'NOT_SET'], 2, /NOT_SET.*not set/],
  ];
  it.each(cases)('%s', async (_name, args, code, message) => {
    const h = home();
    const dir = tempDir('pool');
    const r = await dbs(args(dir), { home: h, env: { SK: 'x'.repeat(8) } });
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe('');
    expect((await dbs(['--json', 'pool', 'list'], { home: h })).json()).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a duplicate name and a location bound twice', async () => {
    const h = home();
    const dir = tempDir('pool');
    await dbs(['pool', 'bind', 'one', '--type', 'local', '--path', dir], { home: h });
    const dup = await dbs(['pool', 'bind', 'one', '--type', 'local', '--path', tempDir('pool')], { home: h });
    expect(dup.code).toBe(4);
    expect(dup.stderr).toMatch(/a pool named "one" already exists/);
    const again = await dbs(['pool', 'bind', 'two', '--type', 'local', '--path', dir], { home: h });
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/already bound as pool "one"/);
  });

  it('show, update, check and unbind of an unknown pool exit 3', async () => {
    const h = home();
    for (const args of [['pool', 'show', 'nope'], ['pool', 'unbind', 'nope'], ['pool', 'check', 'nope'], ['pool', 'update', 'nope', '--remark', 'x']]) {
      const r = await dbs(args, { home: h });
      expect(r.code, args.join(' ')).toBe(3);
      expect(r.stderr).toMatch(/pool "nope" not found/);
    }
  });

  it('--json errors are one JSON object on stderr', async () => {
    const r = await dbs(['--json', 'pool', 'show', 'nope'], { home: home() });
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr)).toMatchObject({ type: 'error', code: 'POOL_NOT_FOUND', exitCode: 3 });
  });
});

describe('pool bind (s3)', () => {
  beforeAll(() => servers('s3'));
  it('binds the default bucket "dbs", creating it, with a prefix; the secret never shows', async () => {
    const s3 = testbed().s3;
    const h = home();
    const prefix = `it-${randomBytes(3).toString('hex')}`;
    const env = { S3_SECRET: s3.secretKey };
    const outputs: string[] = [];
    const run = async (args: string[], e: NodeJS.ProcessEnv = env) => {
      const r = await dbs(args, { home: h, env: e });
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    const bind = await run(['--json', 'pool', 'bind', 'remote', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
    expect(bind.code, bind.stderr).toBe(0);
    expect(bind.json().pool.config).toEqual({ endpoint: s3.endpoint, bucket: 'dbs', prefix, region: 'us-east-1', pathStyle: true, accessKey: s3.accessKey });
    await s3Client(s3).send(new HeadBucketCommand({ Bucket: 'dbs' }));
    expect((await run(['--json', 'pool', 'check', 'remote'])).json().status).toBe('online');
    await run(['pool', 'show', 'remote']);
    await run(['--json', 'pool', 'list']);
    await run(['--verbose', 'pool', 'list']);
    // Wrong credentials: refused as an auth error, distinct from a network error.
    const wrong = 'WrongSecretKeyValue0987654321';
    const bad = await run(['pool', 'bind', 'bad', '--type', 's3', '--endpoint', s3.endpoint, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { S3_SECRET: wrong });
    expect(bad.code).toBe(7);
    expect(bad.stderr).toMatch(/access denied/);
    const badUpd = await run(['--json', 'pool', 'update', 'remote', '--secret-key-env', 'S3_SECRET'], { S3_SECRET: wrong });
    expect(badUpd.code).toBe(7);
    expect((await run(['--json', 'pool', 'check', 'remote'])).json().status).toBe('online'); // old key kept
    const all = outputs.join('\n');
    expect(all).not.toContain(s3.secretKey);
    expect(all).not.toContain(wrong);
  });

  it('without --bucket refuses nothing; with a missing --bucket it is not created', async () => {
    const s3 = testbed().s3;
    const r = await dbs(['pool', 'bind', 'nb', '--type', 's3', '--endpoint', s3.endpoint, '--bucket', `missing-${randomBytes(3).toString('hex')}`, '--access-key', s3.accessKey, '--secret-key-env', 'K'], {
      home: home(),
      env: { K: s3.secretKey },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/does not exist/);
  });
});

describe('the real binary', () => {
  it('prints help with the command groups and the version', async () => {
    const h = home();
    const help = await dbsBin(['--help'], { home: h });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/pool\s+bind and manage storage pools/);
    expect(help.stdout).toMatch(/Exit codes:/);
    const v = await dbsBin(['--version'], { home: h });
    const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
    expect(v.stdout).toMatch(new RegExp(`^dbs ${version.replace(/\./g, '\\.')} \\(commit ([0-9a-f]{12}(-dirty)?|unknown)\\)\nNode\\.js ${process.versions.node}, SQLite 3\\.\\d+\\.\\d+ \\(node:sqlite\\)$`));
  });

  it('maps a usage error to exit 2 without a stack trace', async () => {
    const r = await dbsBin(['pool', 'bind'], { home: home() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: (missing required argument|required option)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('binds a pool from the command line', async () => {
    const dir = tempDir('pool');
    mkdirSync(join(dir, 'sub'));
    const r = await dbsBin(['pool', 'bind', 'bin', '--type', 'local', '--path', join(dir, 'sub')], { home: home() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bound pool bin \(pool-/);
  });
});
