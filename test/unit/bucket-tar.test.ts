// The bucket engine's pax tar writer, read back by tar-stream (what restores use): names of
// any length and script, vendor records, sizes, and the offsets the index records.
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { END_OF_ARCHIVE, entryHeader, paddingFor } from '../../src/engines/bucket/tar.js';
import { matchesPaths } from '../../src/engines/bucket/restore.js';
import { folderPrefix } from '../../src/engines/bucket/backup.js';

describe('bucket tar writer', () => {
  it('writes entries tar-stream reads back with their pax records, at the offsets it reports', async () => {
    const entries: { path: string; body: Buffer; records: Record<string, string> }[] = [
      { path: 'a.txt', body: Buffer.from('hello'), records: { 'DBS.s3.content-type': 'text/plain' } },
      { path: `deep/${'x'.repeat(150)}/数据 ü.bin`, body: Buffer.alloc(512, 7), records: { 'DBS.s3.meta.owner': 'opé' } },
      { path: 'folder/', body: Buffer.alloc(0), records: {} },
    ];
    const parts: Buffer[] = [];
    const offsets: number[] = [];
    let at = 0;
    for (const e of entries) {
      offsets.push(at);
      const h = entryHeader({ path: e.path, size: e.body.length, mtime: Date.UTC(2026, 0, 2, 3, 4, 5, 678), directory: e.path.endsWith('/'), records: e.records });
      const pad = paddingFor(e.body.length);
      parts.push(h, e.body, pad);
      at += h.length + e.body.length + pad.length;
    }
    parts.push(END_OF_ARCHIVE);
    const whole = Buffer.concat(parts);
    const ex = tar.extract();
    Readable.from([whole]).pipe(ex);
    const got: { name: string; body: Buffer; pax: Record<string, string>; mtime: number }[] = [];
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      got.push({ name: entry.header.name, body: Buffer.concat(chunks), pax: entry.header.pax as Record<string, string>, mtime: entry.header.mtime!.getTime() });
    }
    expect(got.map((g) => g.name)).toEqual(entries.map((e) => e.path));
    expect(got.map((g) => g.body)).toEqual(entries.map((e) => e.body));
    expect(got[0]!.pax['DBS.s3.content-type']).toBe('text/plain');
    expect(got[1]!.pax['DBS.s3.meta.owner']).toBe('opé');
    expect(got[0]!.pax.mtime).toBe('1767323045.678');
    // Each offset points at the entry's pax header, whose records name the entry.
    offsets.forEach((o, i) => expect(whole.subarray(o, o + 2048).toString('utf8')).toContain(`path=${entries[i]!.path}`));
    expect(whole.length % 512).toBe(0);
  });

  it('--path matches keys and folders of keys; prefixes are folders', () => {
    expect(matchesPaths('docs/a.md', ['docs'])).toBe(true);
    expect(matchesPaths('docs2/a.md', ['docs'])).toBe(false);
    expect(matchesPaths('docs', ['docs'])).toBe(true);
    expect(matchesPaths('x', [])).toBe(true);
    expect(folderPrefix('photos')).toBe('photos/');
    expect(folderPrefix('photos/')).toBe('photos/');
    expect(folderPrefix(undefined)).toBe('');
  });
});
