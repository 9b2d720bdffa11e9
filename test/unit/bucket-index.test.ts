// The bucket index as a stream (src/engines/bucket/index-file.ts): key order is UTF-8 byte
// order, the parent cursor walks a parent index alongside a listing (deleted keys, matches,
// batches), damaged or out-of-order input is refused, and ListObjectsV2 XML is read as the SDK
// would. No server.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { compareKeys, indexText, IndexWriter, lineBatches, ParentCursor, SPLIT_KEYS, type ObjectLine } from '../../src/engines/bucket/index-file.js';
import { parseListPage, xmlText } from '../../src/engines/bucket/list-xml.js';
import { tempDir } from '../support/testbed.js';

const utf8Order = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
const obj = (key: string, extra: Partial<ObjectLine> = {}): ObjectLine => ({ key, size: key.length, etag: `e-${key}`, metadata: {}, lastModified: '2026-01-01T00:00:00.000Z', offset: 0, ...extra });

/** An index artifact's text, split into chunks of `chunk` bytes (lines cut anywhere, UTF-8 sequences too). */
function artifact(lines: unknown[], chunk = 7): Readable {
  const buf = Buffer.from(`${[{ dbs: 'bucket-index', format: 1 }, ...lines].map((l) => JSON.stringify(l)).join('\n')}\n`);
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
}

describe('compareKeys', () => {
  it('orders as UTF-8 bytes (S3, SQLite BINARY), not as UTF-16 code units', () => {
    const alphabet = ['a', 'z', '/', ' ', 'é', '数', '\uE000', '\uFFFD', '\uFFFF', '\u{1F600}', '\u{10000}', '\u{10FFFF}'];
    for (let n = 0; n < 5000; n++) {
      const word = () => Array.from({ length: randomInt(0, 5) }, () => alphabet[randomInt(alphabet.length)]).join('');
      const a = word();
      const b = word();
      expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(utf8Order(a, b));
    }
    // The case JS's own < gets wrong.
    expect('\uFFFD' < '\u{1F600}').toBe(false);
    expect(compareKeys('\uFFFD', '\u{1F600}')).toBeLessThan(0);
  });
});

describe('lineBatches', () => {
  it('gives every line whole whatever the chunking, multi-byte characters included', async () => {
    const text = ['café', '数据 ü', '', '\u{1F600} end'].join('\n');
    for (const chunk of [1, 2, 3, 5, 64]) {
      const parts: Buffer[] = [];
      const buf = Buffer.from(text);
      for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
      const got: string[] = [];
      for await (const b of lineBatches(Readable.from(parts))) got.push(...b);
      expect(got, `chunk ${chunk}`).toEqual(['café', '数据 ü', '', '\u{1F600} end']);
    }
  });
});

describe('ParentCursor', () => {
  it('walks a parent index alongside a listing: keys before the listed one are gone, equal keys match, the rest is gone at the end', async () => {
    const parent = ['a', 'b', 'c/1', 'c/2', 'd', 'x', 'y'].map((k) => obj(k, k === 'd' ? { in: 'b-older' } : {}));
    const c = new ParentCursor(artifact([...parent.slice(0, 2), { key: 'b2', deleted: true }, ...parent.slice(2)]), 'test index', 'b-parent');
    const gone: string[] = [];
    const matched: Record<string, string | undefined> = {};
    for (const key of ['b', 'c/2', 'd', 'e']) {
      for (let g; (g = await c.before(key, 1)).length; ) gone.push(...g.map((x) => x.key));
      matched[key] = (await c.take(key))?.in;
    }
    for (let g; (g = await c.before(null, 2)).length; ) gone.push(...g.map((x) => x.key));
    // A deletion line of the parent is not an object of it; `in` names where the bytes are.
    expect(gone).toEqual(['a', 'c/1', 'x', 'y']);
    expect(matched).toEqual({ b: 'b-parent', 'c/2': 'b-parent', d: 'b-older', e: undefined });
    c.close();
  });

  it('gives the text of each line it read as the new index writes it, `in` added: unchanged objects are copied, not re-serialized', async () => {
    const lines: ObjectLine[] = [
      obj('a'),
      obj('b', { in: 'b-older' }),
      obj('c', { metadata: { a: '1', offset: '9', 'x,"offset":1': 'y' }, contentType: 'text/plain' }),
      obj('d', { headers: { 'cache-control': 'no-cache, "offset":2' } }),
      obj('\u00e9t\u00e9/\u{1F600}', { metadata: { note: '\\"offset\\":' } }),
    ];
    const c = new ParentCursor(artifact(lines.map((l) => JSON.parse(indexText(l)) as unknown)), 'test index', 'b-parent');
    for (const l of lines) {
      expect(await c.before(l.key, 10)).toEqual([]);
      const got = (await c.take(l.key))!;
      const text = c.textOf(got)!;
      expect(JSON.parse(text)).toEqual({ ...JSON.parse(indexText(l)), in: l.in ?? 'b-parent' });
      expect(text).toBe(indexText({ ...l, in: l.in ?? 'b-parent' }));
    }
    c.close();
  });

  it('an index out of key order, or a damaged line, is INVALID_RECORD naming the line', async () => {
    const cases: [unknown[], RegExp][] = [
      [[obj('b'), obj('a')], /line 3 \("a"\) is not in key order/],
      [[obj('a'), obj('a')], /line 3 \("a"\) is not in key order/],
      [[obj('\u{1F600}'), obj('\uFFFD')], /line 3 .* is not in key order/],
      [[obj('a'), { size: 1 }], /line 3 has no key/],
      [[{ key: 'a', size: 1 }], /line 2 \("a"\) lacks size, etag or offset/],
    ];
    for (const [lines, message] of cases) {
      const c = new ParentCursor(artifact(lines), 'the index of backup b-x', 'b-x');
      await expect(c.before(null, 100), message.source).rejects.toMatchObject({ code: 'INVALID_RECORD', message: expect.stringMatching(message) });
    }
    const bad = new ParentCursor(Readable.from([Buffer.from('{"dbs":"bucket-index"}\n{not json\n')]), 'the index of backup b-x', 'b-x');
    await expect(bad.take('a')).rejects.toMatchObject({ code: 'INVALID_RECORD', message: expect.stringContaining('line 2 is not JSON') });
  });
});

describe('IndexWriter', () => {
  it('writes the head and the lines in order, fields in a fixed order; a key out of order is BACKUP_FAILED', () => {
    const path = join(tempDir('idx'), 'index.ndjson');
    const w = new IndexWriter(path, { dbs: 'bucket-index', format: 1 });
    const many = Array.from({ length: 3000 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
    for (const k of many) w.add(obj(k, { contentType: 'text/plain', headers: { 'cache-control': 'no' } }), 'the bucket');
    w.add({ key: 'z', deleted: true }, 'the bucket');
    expect(() => w.add(obj('k/00001'), 's3://b/ @ http://x')).toThrow(expect.objectContaining({ code: 'BACKUP_FAILED', message: expect.stringContaining('listed "k/00001" after "z"') }));
    w.end();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    expect(JSON.parse(lines[0]!)).toEqual({ dbs: 'bucket-index', format: 1 });
    expect(lines.slice(1, -2).map((l) => JSON.parse(l).key)).toEqual(many);
    expect(lines[1]).toBe('{"key":"k/00000","size":7,"etag":"e-k/00000","contentType":"text/plain","metadata":{},"lastModified":"2026-01-01T00:00:00.000Z","offset":0,"headers":{"cache-control":"no"}}');
    expect(lines.at(-2)).toBe('{"key":"z","deleted":true}');
  });
});

describe('IndexWriter.splits', () => {
  it('keeps at most SPLIT_KEYS object keys, evenly spaced over any number of objects; deletions are not objects', () => {
    for (const n of [0, 1, 5, 64, 65, 127, 128, 1000, 54_321]) {
      const w = new IndexWriter(join(tempDir('splits'), 'index.ndjson'), { dbs: 'bucket-index' });
      const keys = Array.from({ length: n }, (_, i) => `k/${String(i).padStart(6, '0')}`);
      for (const k of keys) {
        w.add(obj(k), 'b');
        w.add({ key: `${k}-gone`, deleted: true }, 'b');
      }
      w.end();
      const splits = w.splits();
      expect(splits.length, `n=${n}`).toBeLessThanOrEqual(SPLIT_KEYS);
      expect(splits.length, `n=${n}`).toBeGreaterThanOrEqual(Math.min(n, SPLIT_KEYS / 2));
      if (!n) continue;
      expect(splits[0]).toBe(keys[0]);
      const at = splits.map((k) => keys.indexOf(k));
      const step = at.length > 1 ? at[1]! - at[0]! : 1;
      expect(at.every((x, i) => x === i * step), `n=${n}`).toBe(true);
      expect(n - 1 - at.at(-1)!, `n=${n}: the last split is within a step of the end`).toBeLessThan(2 * step);
    }
  });
});

describe('parseListPage', () => {
  const page = (contents: string, tail = '<IsTruncated>false</IsTruncated>') => `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>${tail}${contents}</ListBucketResult>`;
  const entry = (key: string, extra = '') => `<Contents><Key>${key}</Key><LastModified>2026-12-04T18:34:36.5Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>12</Size>${extra}<StorageClass>STANDARD</StorageClass></Contents>`;

  it('reads keys (entity and character references decoded), sizes, ETags, times as toISOString, the continuation', () => {
    const xml = page(entry('a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233; &#x1F600;') + entry('plain', '<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>'), '<IsTruncated>true</IsTruncated><NextContinuationToken>tok&amp;en==</NextContinuationToken>');
    expect(parseListPage(xml)).toEqual({
      contents: [
        { key: 'a & b <c> "d" \'e\' é \u{1F600}', size: 12, etag: '"abc"', lastModified: '2026-12-04T18:34:36.500Z' },
        { key: 'plain', size: 12, etag: '"abc"', lastModified: '2026-12-04T18:34:36.500Z' },
      ],
      truncated: true,
      nextToken: 'tok&en==',
    });
    expect(parseListPage(page(''))).toEqual({ contents: [], truncated: false });
    // A key that spells a tag is escaped in the XML, so it is data, not the page's own field.
    expect(parseListPage(page(entry('&lt;IsTruncated&gt;true&lt;/IsTruncated&gt;')))).toMatchObject({ truncated: false, contents: [{ key: '<IsTruncated>true</IsTruncated>' }] });
    expect(xmlText('no refs')).toBe('no refs');
  });

  it('what it does not know is left to the SDK (undefined): another document, CDATA, a broken entry', () => {
    for (const xml of ['<Error><Code>NoSuchBucket</Code></Error>', page('<Contents><Key><![CDATA[x]]></Key></Contents>'), page('<Contents><Key>k</Key><Size>1</Size>'), page('<Contents><Size>1</Size></Contents>'), page(entry('k').replace('2026-12-04T18:34:36.5Z', 'yesterday')), page(entry('k').replace('<Size>12</Size>', '<Size>many</Size>'))]) {
      expect(parseListPage(xml), xml).toBeUndefined();
    }
  });
});
