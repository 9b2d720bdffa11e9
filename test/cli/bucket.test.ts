// S3 bucket sources (s3://BUCKET/PREFIX) through the CLI against the test bed's real S3
// server: snapshot and incremental round trips compared key by key, --path subsets, the
// refusal of existing target keys, dbs's own read of listings against the SDK's (and listed in
// ranges), and the bad inputs (unreachable endpoint, wrong keys, missing bucket) with their exit
// codes and nothing written.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listRanges, type Listed } from '../../src/engines/bucket/backup.js';
import { rawListing } from '../../src/engines/bucket/list-xml.js';
import { dbs, type CliResult } from '../support/cli.js';
import { bucketFacts, bucketName, deleteKey, makeBucket, mixedObjects, putAll, replaceMetadata } from '../support/buckets.js';
import { childrenOf, freePort } from '../support/ports.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

let s3: S3Client;
let home: string;
let poolDir: string;
const env = () => ({ S3_SECRET: testbed().s3.secretKey, BAD_SECRET: 'not-the-secret' });
const keyFlags = () => ['--endpoint', testbed().s3.endpoint, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'S3_SECRET'];

async function cli(args: string[], expectCode = 0): Promise<CliResult> {
  const r = await dbs(args, { home, env: env() });
  expect(r.code, `dbs ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(expectCode);
  return r;
}

beforeAll(async () => {
  await servers('s3');
  s3 = s3Client(testbed().s3);
  home = tempDir('bucket-home');
  poolDir = tempDir('bucket-pool');
  await cli(['pool', 'bind', 'local', '--type', 'local', '--path', poolDir]);
});
afterAll(() => s3?.destroy());

describe('bucket snapshot and incremental', () => {
  it('restores a chain key by key: bytes, content type, metadata; deleted keys absent; outside the prefix untouched', async () => {
    const src = bucketName('src');
    await makeBucket(s3, src, [...mixedObjects('data/', { big: 9 * 1024 * 1024 + 123 }), { key: 'data2/not-mine.txt', body: Buffer.from('outside the prefix') }, { key: 'other.txt', body: Buffer.from('x') }]);
    await cli(['plan', 'create', 'b-full', '--pool', 'local', '--source', `s3://${src}/data`, ...keyFlags()]);
    const full = (await cli(['--json', 'plan', 'run', 'b-full'])).json().backup;
    const atFull = await bucketFacts(s3, src, 'data/');
    expect(Object.keys(atFull)).toHaveLength(28);
    expect(full.manifest.facts).toMatchObject({ objects: 28, stored: 28, unchanged: 0, bucket: src, prefix: 'data/' });

    // Change the source: new bytes, a new key, a deleted key, metadata only (same ETag).
    await putAll(s3, src, [
      { key: 'data/many/item-003.dat', body: Buffer.from('changed'), contentType: 'text/x-changed', metadata: { index: 'three' } },
      { key: 'data/new/added.txt', body: Buffer.from('added'), contentType: 'text/plain' },
    ]);
    await deleteKey(s3, src, 'data/many/item-004.dat');
    await replaceMetadata(s3, src, 'data/with space/a+b=c.txt', { retagged: 'yes' }, 'text/x-retagged');
    await cli(['plan', 'create', 'b-inc', '--type', 'incremental', '--base-plan', 'b-full']);
    const inc = (await cli(['--json', 'plan', 'run', 'b-inc'])).json().backup;
    expect(inc.parentId).toBe(full.id);
    expect(inc.manifest.facts).toMatchObject({ objects: 28, stored: 3, unchanged: 25, deleted: 1 });
    const expected = await bucketFacts(s3, src, 'data/');

    const dst = bucketName('dst');
    await makeBucket(s3, dst);
    const r = (await cli(['--json', 'backup', 'restore', inc.id, '--to', `s3://${dst}/restored`, ...keyFlags()])).json();
    expect(r.status).toBe('succeeded');
    expect(await bucketFacts(s3, dst, 'restored/')).toEqual(expected);
    expect(await bucketFacts(s3, dst, '')).toHaveProperty(['restored/docs/readme.md']);

    // The full backup restores the bucket as it was then.
    await cli(['backup', 'restore', full.id, '--to', `s3://${dst}/at-full`, ...keyFlags()]);
    expect(await bucketFacts(s3, dst, 'at-full/')).toEqual(atFull);

    // --path restores a subset.
    await cli(['backup', 'restore', inc.id, '--to', `s3://${dst}/subset`, '--path', 'docs', '--path', 'new/added.txt', ...keyFlags()]);
    expect(Object.keys(await bucketFacts(s3, dst, 'subset/')).sort()).toEqual(['docs/deep/' + 'long-name-'.repeat(12) + '.bin', 'docs/readme.md', 'new/added.txt']);

    // Existing keys are refused (exit 4, nothing written), --replace overwrites them.
    await putAll(s3, dst, [{ key: 'clash/docs/readme.md', body: Buffer.from('mine') }]);
    const refused = await cli(['backup', 'restore', inc.id, '--to', `s3://${dst}/clash`, ...keyFlags()], 4);
    expect(refused.stderr).toMatch(/already exist.*clash\/docs\/readme\.md.*nothing was written/s);
    expect(Object.keys(await bucketFacts(s3, dst, 'clash/'))).toEqual(['docs/readme.md']);
    await cli(['backup', 'restore', inc.id, '--to', `s3://${dst}/clash`, '--replace', ...keyFlags()]);
    expect(await bucketFacts(s3, dst, 'clash/')).toEqual(expected);

    // A second incremental (its parent the first): the first and the last key deleted, keys
    // whose UTF-16 order differs from S3's UTF-8 order (U+FFFD sorts before an emoji in UTF-8,
    // after it in UTF-16), one changed. Its index is in key order, names where each
    // unchanged object's bytes are, and restores the bucket as it is.
    await deleteKey(s3, src, 'data/big/blob.bin');
    await deleteKey(s3, src, 'data/with space/a+b=c.txt');
    await putAll(s3, src, [
      { key: 'data/unicode/\u{1F600}.txt', body: Buffer.from('astral') },
      { key: 'data/unicode/\uFFFD.txt', body: Buffer.from('replacement char') },
      { key: 'data/many/item-010.dat', body: Buffer.from('changed again') },
    ]);
    const inc2 = (await cli(['--json', 'plan', 'run', 'b-inc'])).json().backup;
    expect(inc2.parentId).toBe(inc.id);
    expect(inc2.manifest.facts).toMatchObject({ objects: 28, stored: 3, unchanged: 25, deleted: 2 });
    // Its split keys (where the next incremental splits its listing): every object's key here
    // (28 < 64), in key order; the text of backup show gives their count.
    expect(inc2.manifest.facts.splits).toHaveLength(28);
    expect(inc2.manifest.facts.splits[0]).toBe('block-512.bin');
    expect((await cli(['backup', 'show', inc2.id])).stdout).toMatch(/Facts: +\{.*"objects":28.*"splits":"28 items"\}/);
    const dir2 = join(poolDir, 'dbs', 'backups', inc2.planId, inc2.id);
    const lines2 = (await execa('zstd', ['-dc', `${dir2}/index.ndjson.zst`])).stdout.split('\n').slice(1).map((l) => JSON.parse(l) as { key: string; deleted?: true; in?: string });
    const keys2 = lines2.map((l) => l.key);
    expect(keys2).toEqual([...keys2].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(keys2.indexOf('unicode/\uFFFD.txt')).toBeLessThan(keys2.indexOf('unicode/\u{1F600}.txt'));
    expect(lines2.filter((l) => l.deleted).map((l) => l.key)).toEqual(['big/blob.bin', 'with space/a+b=c.txt']);
    const byKey = new Map(lines2.map((l) => [l.key, l]));
    expect(byKey.get('docs/readme.md')?.in).toBe(full.id);
    expect(byKey.get('new/added.txt')?.in).toBe(inc.id);
    expect(byKey.get('many/item-010.dat')).not.toHaveProperty('in');
    const expected2 = await bucketFacts(s3, src, 'data/');
    await cli(['backup', 'restore', inc2.id, '--to', `s3://${dst}/at-inc2`, ...keyFlags()]);
    expect(await bucketFacts(s3, dst, 'at-inc2/')).toEqual(expected2);
  });
});

describe('listing', () => {
  it("dbs's own read of ListObjectsV2 XML lists what the SDK's deserializer lists, over pages, keys with markup and non-ASCII", async () => {
    const src = bucketName('list');
    const odd = ['a&b', '<tag>', '"quoted"', "it's", 'café/数据', '\u{1F600}', '\uFFFD', 'sp ace/+=?#%', 'x'.repeat(900)];
    await makeBucket(s3, src, [...odd, ...Array.from({ length: 1010 }, (_, i) => `n/${String(i).padStart(4, '0')}`)].map((key, i) => ({ key: `p/${key}`, body: Buffer.from(`body ${i}`) })));
    const all = async (sdkParse: boolean) => {
      const pages: Listed[][] = [];
      for await (const p of listPages(s3, src, 'p/', 'the test bucket', new AbortController().signal, { sdkParse })) pages.push(p);
      return pages;
    };
    const mine = await all(false);
    expect(mine.map((p) => p.length)).toEqual([1000, 19]);
    expect(mine).toEqual(await all(true));
    expect(mine.flat().map((l) => l.key)).toEqual(expect.arrayContaining(odd));
    // Ranges listed at once (an incremental splits at its parent's split keys) concatenate to
    // the same listing, whatever the splits: keys that exist, keys gone, a single one, none.
    const keys = mine.flat().map((l) => l.key);
    for (const splits of [keys.filter((_, i) => i % 97 === 0), ['a', 'n/0500', 'n/0500x', 'zzz'], [keys[1]!], [], [keys.at(-1)!, 'zzzz']]) {
      const ranged: string[] = [];
      for await (const p of listRanges(s3, src, 'p/', 'the test bucket', new AbortController().signal, splits)) ranged.push(...p.map((l) => l.key));
      expect(ranged, JSON.stringify(splits)).toEqual(keys);
    }
    // The raw read is what ran (the SDK was handed an empty page).
    const cmd = new ListObjectsV2Command({ Bucket: src, MaxKeys: 5 });
    const raw = rawListing(cmd);
    expect((await s3.send(cmd)).Contents).toBeUndefined();
    expect(raw.page()).toMatchObject({ truncated: true, contents: expect.arrayContaining([expect.objectContaining({ key: 'p/"quoted"' })]) });
    // An error response is the SDK's: the same mapped error either way.
    const missing = async (sdkParse: boolean) => {
      for await (const p of listPages(s3, 'no-such-bucket-here', '', 's3://no-such-bucket-here', new AbortController().signal, { sdkParse })) void p;
    };
    await expect(missing(false)).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND', message: expect.stringContaining('does not exist') });
    await expect(missing(true)).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND', message: expect.stringContaining('does not exist') });
  });
});

/**
 * A TCP proxy in front of the S3 server that, once armed with `cutAfter(n)`, lets n more GET
 * requests through and then drops every connection and refuses new ones (a source that goes
 * away mid-listing); `restore()` listens on the same port again.
 */
async function cuttingProxy(target: URL) {
  let left = Infinity;
  const sockets = new Set<Socket>();
  let server: Server;
  const cut = () => {
    left = -1;
    for (const x of sockets) x.destroy();
    server.close();
  };
  const listen = (port: number) =>
    new Promise<number>((resolve) => {
      server = createServer((client) => {
        const up = connect(Number(target.port), target.hostname);
        for (const x of [client, up]) {
          sockets.add(x);
          x.on('close', () => sockets.delete(x)).on('error', () => undefined);
        }
        client.on('data', (c: Buffer) => {
          left -= (c.toString('latin1').match(/^GET \//gm) ?? []).length;
          if (left < 0) return cut();
          up.write(c);
        });
        up.on('data', (c: Buffer) => client.write(c));
        client.on('end', () => up.end());
        up.on('end', () => client.end());
      });
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  const port = await listen(0);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cutAfter: (n: number) => void (left = n),
    restore: async () => {
      left = Infinity;
      await listen(port);
    },
    close: () => cut(),
  };
}

describe('a source that goes away mid-listing', () => {
  it('the incremental (listing in ranges) fails with exit 6, stores nothing, leaves no program; the next run succeeds and restores equal', async () => {
    const src = bucketName('cut');
    await makeBucket(s3, src);
    await putAll(s3, src, Array.from({ length: 1600 }, (_, i) => ({ key: `k/${String(i).padStart(5, '0')}`, body: Buffer.from(`object ${i}`) })), 32);
    const proxy = await cuttingProxy(new URL(testbed().s3.endpoint));
    try {
      const flags = ['--endpoint', proxy.endpoint, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'S3_SECRET'];
      await cli(['plan', 'create', 'b-cut', '--pool', 'local', '--source', `s3://${src}`, ...flags]);
      const full = (await cli(['--json', 'plan', 'run', 'b-cut'])).json().backup;
      expect(full.manifest.facts.splits.length).toBeGreaterThan(8);
      const incPlan = (await cli(['--json', 'plan', 'create', 'b-cut-inc', '--type', 'incremental', '--base-plan', 'b-cut'])).json().plan;
      const planDir = join(poolDir, 'dbs', 'backups', full.planId);
      const before = readdirSync(planDir).sort();
      const incDir = join(poolDir, 'dbs', 'backups', incPlan.id);
      const entries = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };

      // The first 2 listing requests pass, then the server is gone (the SDK's retries too).
      proxy.cutAfter(2);
      const r = await cli(['--json', 'plan', 'run', 'b-cut-inc'], 6);
      expect(JSON.parse(r.stderr.trim().split('\n').pop()!)).toMatchObject({ code: 'SOURCE_UNREACHABLE', message: expect.stringMatching(/listing s3:\/\/.* cannot reach/) });
      expect(childrenOf(process.pid).filter((c) => /zstd/.test(c.comm))).toEqual([]);
      expect((await cli(['--json', 'backup', 'list', '--plan', 'b-cut-inc'])).json()).toEqual([]);
      expect(readdirSync(planDir).sort()).toEqual(before);
      expect(entries(incDir)).toEqual([]);

      await proxy.restore();
      const inc = (await cli(['--json', 'plan', 'run', 'b-cut-inc'])).json().backup;
      expect(inc.manifest.facts).toMatchObject({ objects: 1600, unchanged: 1600, stored: 0, deleted: 0 });
      const dst = bucketName('cut-dst');
      await makeBucket(s3, dst);
      await cli(['backup', 'restore', inc.id, '--to', `s3://${dst}/r`, ...keyFlags()]);
      // Compared by listing: keys, sizes and ETags (the MD5 of each single-part object's bytes).
      const listed = async (bucket: string, prefix: string) => {
        const all: Omit<Listed, 'full'>[] = [];
        for await (const p of listPages(s3, bucket, prefix, bucket, new AbortController().signal)) all.push(...p.map(({ key, size, etag }) => ({ key, size, etag, lastModified: '' })));
        return all;
      };
      const restored = await listed(dst, 'r/');
      expect(restored).toHaveLength(1600);
      expect(restored).toEqual(await listed(src, ''));
    } finally {
      proxy.close();
    }
  });
});

describe('bucket backups without dbs', () => {
  it('zstd -dc data.tar.zst | tar -x gives every object; the index lists key, size, etag, type, metadata, offset', async () => {
    const src = bucketName('stock');
    const objs = mixedObjects('p/');
    await makeBucket(s3, src, objs);
    await cli(['plan', 'create', 'b-stock', '--pool', 'local', '--source', `s3://${src}/p/`, ...keyFlags()]);
    const b = (await cli(['--json', 'plan', 'run', 'b-stock'])).json().backup;
    const dir = join(poolDir, 'dbs', 'backups', b.planId, b.id);
    const out = tempDir('stock-x');
    await execa('bash', ['-c', `zstd -dc '${dir}/data.tar.zst' | tar -x -C '${out}'`]);
    for (const o of objs.filter((x) => !x.key.endsWith('/'))) {
      const got = readFileSync(join(out, o.key.slice(2)));
      expect(createHash('sha256').update(got).digest('hex'), o.key).toBe(createHash('sha256').update(o.body).digest('hex'));
    }
    const lines = (await execa('zstd', ['-dc', `${dir}/index.ndjson.zst`])).stdout.split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ dbs: 'bucket-index', format: 1, bucket: src, prefix: 'p/' });
    const readme = lines.find((l) => l.key === 'docs/readme.md');
    expect(readme).toMatchObject({ size: 1600, contentType: 'text/markdown; charset=utf-8', metadata: { owner: 'ops', 'x-note': 'kept' }, headers: { 'cache-control': 'max-age=60' } });
    // The offset is where the entry's pax header starts in the uncompressed tar.
    const raw = (await execa('bash', ['-c', `zstd -dc '${dir}/data.tar.zst' | tail -c +${readme.offset + 1} | head -c 1024 | tr -d '\\0'`])).stdout;
    expect(raw).toContain('path=docs/readme.md');
    expect(raw).toContain('DBS.s3.content-type=text/markdown; charset=utf-8');
    expect(raw).toContain('DBS.s3.meta.owner=ops');
  });
});

describe('bucket bad inputs: clear errors, documented exit codes, nothing written', () => {
  let src: string;
  let backupId: string;
  beforeAll(async () => {
    src = bucketName('bad');
    await makeBucket(s3, src, mixedObjects(''));
    await cli(['plan', 'create', 'b-bad', '--pool', 'local', '--source', `s3://${src}`, ...keyFlags()]);
    backupId = (await cli(['--json', 'plan', 'run', 'b-bad'])).json().backup.id;
  });
  const planNames = async () => (await cli(['--json', 'plan', 'list'])).json().map((p: { name: string }) => p.name);

  it('plan create: unreachable endpoint (6), wrong keys (7), missing bucket (3), no endpoint / stray flags (2); no plan is created', async () => {
    const port = await freePort();
    const cases: [string[], number, RegExp][] = [
      [['--source', `s3://${src}`, '--endpoint', `http://127.0.0.1:${port}`, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'S3_SECRET'], 6, /cannot reach s3:\/\/.* \(ECONNREFUSED\)/],
      [['--source', `s3://${src}`, '--endpoint', testbed().s3.endpoint, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'BAD_SECRET'], 7, /access denied/],
      [['--source', `s3://${src}`, '--endpoint', testbed().s3.endpoint, '--access-key', 'NOSUCHKEY', '--secret-key-env', 'S3_SECRET'], 7, /access denied/],
      [['--source', 's3://no-such-bucket-here', ...keyFlags()], 3, /bucket .* does not exist/],
      [['--source', `s3://${src}`], 2, /needs --endpoint URL/],
      [['--source', `s3://${src}`, '--endpoint', testbed().s3.endpoint, '--access-key', testbed().s3.accessKey], 2, /secret key is missing/],
      [['--source', `s3://${src}`, ...keyFlags(), '--password-env', 'S3_SECRET'], 2, /exclusive/],
      [['--source', `s3://${src}`, ...keyFlags(), '--databases', 'a'], 2, /--databases does not apply/],
      [['--source', 's3://Bad_Bucket', ...keyFlags()], 2, /not a valid bucket name/],
      [['--source', `sqlite:///tmp/x.db`, '--endpoint', testbed().s3.endpoint], 2, /--endpoint does not apply/],
    ];
    for (const [flags, code, message] of cases) {
      const r = await cli(['plan', 'create', 'b-never', '--pool', 'local', ...flags], code);
      expect(r.stderr, flags.join(' ')).toMatch(message);
      expect(r.stderr).not.toContain(testbed().s3.secretKey);
    }
    expect(await planNames()).not.toContain('b-never');
  });

  it('restore: unreachable target (6), wrong keys (7), missing bucket (3), over its source (4), no match for --path (3); nothing is written', async () => {
    const dst = bucketName('bad-dst');
    await makeBucket(s3, dst);
    const port = await freePort();
    const cases: [string[], number, RegExp][] = [
      [['--to', `s3://${dst}/x`, '--endpoint', `http://127.0.0.1:${port}`, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'S3_SECRET'], 6, /cannot reach/],
      [['--to', `s3://${dst}/x`, '--endpoint', testbed().s3.endpoint, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'BAD_SECRET'], 7, /access denied/],
      [['--to', 's3://no-such-bucket-here/x', ...keyFlags()], 3, /does not exist/],
      [['--to', `s3://${src}`, ...keyFlags()], 4, /is the source of backup/],
      [['--to', `s3://${dst}/x`, '--path', 'nothing/here', ...keyFlags()], 3, /no key of backup .* matches --path/],
      [['--to', `s3://${dst}/x`, '--database', 'a:b', ...keyFlags()], 2, /--database does not apply/],
      [['--to', `mysql://root@127.0.0.1:3306`], 2, /bucket backup; --to is a mysql target/],
    ];
    for (const [flags, code, message] of cases) {
      const r = await cli(['backup', 'restore', backupId, ...flags], code);
      expect(r.stderr, flags.join(' ')).toMatch(message);
    }
    expect(await bucketFacts(s3, dst, '')).toEqual({});
    const restores = (await cli(['--json', 'restore', 'list'])).json();
    expect(restores.filter((x: { status: string }) => x.status === 'succeeded').map((x: { backupId: string }) => x.backupId)).not.toContain(backupId);
  });
});
