// Directory backups through the CLI: the stock-tool recipe (zstd -dc | tar -x, a chain with
// its deletions), --path by ranged reads (local and S3 pools, reads counted), backup ls, a
// non-empty target, --replace, and the bad inputs (exit codes, nothing written).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { servers, tempDir, testbed } from '../support/testbed.js';
import { makeTree, treeFacts } from '../roundtrip/fixtures/dir-tree.js';

const env = (): Record<string, string> => ({ S3_SECRET: testbed().s3.secretKey });

async function setup() {
  const home = tempDir('home');
  const pool = tempDir('pool');
  const s3 = testbed().s3;
  for (const args of [
    ['pool', 'bind', 'p', '--type', 'local', '--path', pool],
    ['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `dir-${randomBytes(3).toString('hex')}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'],
  ]) {
    const r = await dbs(args, { home, env: env() });
    expect(r.code, r.stderr).toBe(0);
  }
  const root = join(tempDir('dir-src'), 'tree');
  makeTree(root);
  return { home, pool, root };
}

/** Files only: type and content (what stock tar must give back). */
function contentOf(facts: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(facts).filter(([k]) => k !== '.').map(([k, v]) => {
    const { mtimeUs: _m, links: _l, ...rest } = v as Record<string, unknown>;
    void _m;
    void _l;
    return [k, rest];
  }));
}

beforeAll(async () => {
  await servers('s3');
});

describe('dir backups', () => {
  it('restores with stock tools: zstd -dc data.tar.zst | tar -x, then the incremental after its deletions', async () => {
    const { home, pool, root } = await setup();
    const o = { home, env: env() };
    expect((await dbs(['plan', 'create', 'full', '--source', `dir://${root}`, '--pool', 'p'], o)).code).toBe(0);
    const full = (await dbs(['--json', 'plan', 'run', 'full'], o)).json<{ backup: { id: string; planId: string } }>().backup;
    appendFileSync(join(root, 'data/log.txt'), 'more\n');
    rmSync(join(root, 'data/deep'), { recursive: true });
    rmSync(join(root, 'etc/app/empty.txt'));
    writeFileSync(join(root, 'etc/app/new.txt'), 'new');
    expect((await dbs(['plan', 'create', 'inc', '--type', 'incremental', '--base-plan', 'full'], o)).code).toBe(0);
    const inc = (await dbs(['--json', 'plan', 'run', 'inc'], o)).json<{ backup: { id: string; planId: string; parentId: string } }>().backup;
    expect(inc.parentId).toBe(full.id);
    const dir = (b: { id: string; planId: string }) => join(pool, 'dbs/backups', b.planId, b.id);
    const out = tempDir('stock');
    // The README recipe.
    await execa('bash', ['-o', 'pipefail', '-c', `
      cd ${out}
      zstd -dc ${dir(full)}/data.tar.zst | tar -xpf -
      zstd -dc ${dir(inc)}/index.jsonl.zst | jq -r 'select(.kind=="deleted") | .path' | xargs -r -d '\\n' rm -rf --
      zstd -dc ${dir(inc)}/data.tar.zst | tar -xpf -
    `]);
    expect(contentOf(treeFacts(out))).toEqual(contentOf(treeFacts(root)));
    expect(existsSync(join(out, 'data/deep'))).toBe(false);
  });

  it('--path restores one subtree by ranged reads (local and S3 pools); backup ls lists the tree', async () => {
    const { home, root } = await setup();
    const o = { home, env: env() };
    // 6 MiB of random data before the chosen file: the data spans several frames.
    writeFileSync(join(root, 'data/aaa-big.bin'), randomBytes(6 * 1024 * 1024));
    for (const pool of ['p', 's3']) {
      expect((await dbs(['plan', 'create', `f-${pool}`, '--source', `dir://${root}`, '--pool', pool], o)).code).toBe(0);
      const id = (await dbs(['--json', 'plan', 'run', `f-${pool}`], o)).json<{ backup: { id: string } }>().backup.id;
      const ls = await dbs(['--json', 'backup', 'ls', id, '--path', 'etc'], o);
      expect(ls.code, ls.stderr).toBe(0);
      expect(ls.json<{ entries: { path: string }[] }>().entries.map((e) => e.path)).toEqual(['etc', 'etc/app', 'etc/app/config.yaml', 'etc/app/empty.txt']);
      const out = join(tempDir('part'), 'out');
      const r = await dbs(['--json', 'backup', 'restore', id, '--to-dir', out, '--path', 'data/deep'], o);
      expect(r.code, r.stderr).toBe(0);
      const res = r.json<{ options: { result: { rangedReads: number; storedBytesRead: number } } }>().options.result;
      expect(res.rangedReads).toBe(1);
      expect(res.storedBytesRead).toBeLessThan(5 * 1024 * 1024);
      expect(readdirSync(out)).toEqual(['data']);
      const want = treeFacts(root);
      const got = treeFacts(out);
      for (const k of ['data/deep', 'data/deep/er', 'data/deep/er/leaf.txt']) expect(got[k]).toEqual(want[k]);
      // A hard link (etc/app/config.yaml: the walk met data/config-hard first) brings its first path (found in a second pass over the index), as a link.
      const outL = join(tempDir('part'), 'link');
      const rl = await dbs(['--json', 'backup', 'restore', id, '--to-dir', outL, '--path', 'etc/app/config.yaml'], o);
      expect(rl.code, rl.stderr).toBe(0);
      const gotL = treeFacts(outL);
      expect(Object.keys(gotL).filter((k) => k !== '.').sort()).toEqual(['data', 'data/config-hard', 'etc', 'etc/app', 'etc/app/config.yaml']);
      for (const k of ['data/config-hard', 'etc/app/config.yaml', 'data', 'etc/app']) expect(gotL[k]).toEqual(want[k]);
      expect(statSync(join(outL, 'data/config-hard')).ino).toBe(statSync(join(outL, 'etc/app/config.yaml')).ino);
      const missing = await dbs(['backup', 'restore', id, '--to-dir', join(tempDir('part'), 'x'), '--path', 'no/such'], o);
      expect(missing.code).toBe(3);
      // Two paths, one of them missing: refused, nothing written.
      const half = join(tempDir('part'), 'half');
      const m2 = await dbs(['backup', 'restore', id, '--to-dir', half, '--path', 'data/deep', '--path', 'no/such'], o);
      expect(m2.code).toBe(3);
      expect(m2.stderr).toMatch(/holds no path "no\/such"/);
      expect(existsSync(half)).toBe(false);
    }
  });

  it('refuses a non-empty target without --replace; --replace gives exactly the backup tree', async () => {
    const { home, root } = await setup();
    const o = { home, env: env() };
    expect((await dbs(['plan', 'create', 'f', '--source', `dir://${root}`, '--pool', 'p'], o)).code).toBe(0);
    const id = (await dbs(['--json', 'plan', 'run', 'f'], o)).json<{ backup: { id: string } }>().backup.id;
    const out = tempDir('busy');
    writeFileSync(join(out, 'keep-me'), 'x');
    const r = await dbs(['backup', 'restore', id, '--to-dir', out], o);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/not empty/);
    expect(readdirSync(out)).toEqual(['keep-me']);
    const r2 = await dbs(['backup', 'restore', id, '--to-dir', out, '--replace'], o);
    expect(r2.code, r2.stderr).toBe(0);
    expect(treeFacts(out)).toEqual(treeFacts(root));
  });

  it('bad sources are clear errors with documented exit codes, and create nothing', async () => {
    const { home, root } = await setup();
    const o = { home, env: env() };
    const file = join(root, 'etc/app/config.yaml');
    const cases: [string, number, RegExp][] = [
      ['dir://relative/path', 2, /absolute path/],
      [`dir://${root}/missing`, 3, /does not exist/],
      [`dir://${file}`, 2, /not a directory/],
    ];
    for (const [src, code, msg] of cases) {
      const r = await dbs(['plan', 'create', 'bad', '--source', src, '--pool', 'p'], o);
      expect(r.code, `${src}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(msg);
    }
    const wrong = await dbs(['plan', 'create', 'bad', '--source', `dir://${root}`, '--pool', 'p', '--databases', 'x'], o);
    expect(wrong.code).toBe(2);
    const notDir = await dbs(['plan', 'create', 'bad', '--source', 'sqlite:///tmp/x.db', '--pool', 'p', '--exclude', '*.log'], o);
    expect(notDir.code).toBe(2);
    expect(notDir.stderr).toMatch(/--exclude does not apply/);
    expect((await dbs(['--json', 'plan', 'list'], o)).json<unknown[]>()).toEqual([]);
  });

  it('--exclude and --include select paths', async () => {
    const { home, root } = await setup();
    const o = { home, env: env() };
    mkdirSync(join(root, 'cache'));
    writeFileSync(join(root, 'cache/x.tmp'), 'x');
    expect((await dbs(['plan', 'create', 'sel', '--source', `dir://${root}`, '--pool', 'p', '--exclude', 'cache', '--exclude', '*.bin', '--include', 'data', '--include', 'cache'], o)).code).toBe(0);
    const id = (await dbs(['--json', 'plan', 'run', 'sel'], o)).json<{ backup: { id: string } }>().backup.id;
    const paths = (await dbs(['--json', 'backup', 'ls', id], o)).json<{ entries: { path: string }[] }>().entries.map((e) => e.path);
    expect(paths).toContain('data/log.txt');
    expect(paths.some((p) => p.startsWith('etc') || p.startsWith('cache') || p.endsWith('.bin'))).toBe(false);
  });
});
