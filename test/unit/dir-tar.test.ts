// The dir engine's tar and its extractor, on handcrafted archives: names that try to leave
// the target (.., absolute, through a symlink, a hard link outside) are refused and write
// nothing outside; what dbs writes reads back (long, non-UTF-8 names, ns mtimes); frame
// ranges cover exactly the frames of the wanted entries.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { frameRanges } from '../../src/engines/dir/engine.js';
import { Extractor, extractAll, safeParts } from '../../src/engines/dir/extract.js';
import { BytePuller, encodeHeader, END_OF_ARCHIVE, padding, readEntry, type TarHeader } from '../../src/engines/dir/tar.js';

const base = { mode: 0o644, uid: 0, gid: 0, mtimeSec: 1_700_000_000, mtimeNsec: 123_456_789 };
function entry(h: Partial<Omit<TarHeader, 'name'>> & { name: string | Buffer; data?: string }): Buffer {
  const data = Buffer.from(h.data ?? '');
  const name = typeof h.name === 'string' ? Buffer.from(h.name) : h.name;
  const hdr = encodeHeader({ ...base, type: 'file', size: data.length, ...h, name } as TarHeader);
  return Buffer.concat([hdr, data, Buffer.alloc(padding(data.length))]);
}
const tar = (...e: Buffer[]) => Buffer.concat([...e, END_OF_ARCHIVE]);

async function extract(archive: Buffer): Promise<{ dir: string; error?: unknown }> {
  const parent = mkdtempSync(join(tmpdir(), 'dbs-x-'));
  const dir = join(parent, 'build');
  mkdirSync(dir);
  const x = new Extractor(dir);
  try {
    await extractAll(Readable.from([archive]), x, { signal: new AbortController().signal });
    await x.finish();
    return { dir };
  } catch (error) {
    return { dir, error };
  }
}

describe('dir tar', () => {
  it('reads back what it writes: long and non-UTF-8 names, links, ns mtimes', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
    const latin = Buffer.from('caf\xe9', 'latin1');
    const a = tar(entry({ name: 'x', type: 'dir', mode: 0o750 }), entry({ name: long, data: 'long' }), entry({ name: latin, data: 'l1' }), entry({ name: 'x/s', type: 'symlink', linkname: Buffer.from('../café') }), entry({ name: 'x/h', type: 'hardlink', linkname: latin }));
    const p = new BytePuller(Readable.from([a]));
    const names: string[] = [];
    for (let e = await readEntry(p); e; e = await readEntry(p)) {
      names.push(e.name.toString('latin1'));
      expect(e.mtimeNsec).toBe(123_456_789);
      await p.skip(e.size + padding(e.size));
    }
    expect(names).toEqual(['x', long, 'caf\xe9', 'x/s', 'x/h']);
    const { dir, error } = await extract(a);
    expect(error).toBeUndefined();
    expect(readFileSync(join(dir, long), 'utf8')).toBe('long');
    expect(readlinkSync(join(dir, 'x/s'))).toBe('../café');
    expect(lstatSync(join(dir, 'x')).mode & 0o777).toBe(0o750);
    expect(lstatSync(Buffer.from(`${dir}/x/h`)).ino).toBe(lstatSync(Buffer.from(`${dir}/caf\xe9`, 'latin1')).ino);
  });

  it.each([
    ['..', tar(entry({ name: '../evil', data: 'x' }))],
    ['a nested ..', tar(entry({ name: 'a/../../evil', data: 'x' }))],
    ['an absolute path', tar(entry({ name: '/tmp/evil', data: 'x' }))],
    ['a write through a symlink', tar(entry({ name: 'l', type: 'symlink', linkname: Buffer.from('..') }), entry({ name: 'l/evil', data: 'x' }))],
    ['a hard link out of the tree', tar(entry({ name: 'h', type: 'hardlink', linkname: Buffer.from('../evil') }))],
    ['a device node', Buffer.concat([(() => { const b = entry({ name: 'dev', data: '' }); b[156] = 0x33; let s = 0; b.fill(0x20, 148, 156); for (const c of b.subarray(0, 512)) s += c; b.write(`${s.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii'); return b; })(), END_OF_ARCHIVE])],
  ])('refuses %s and writes nothing outside the target', async (_what, archive) => {
    const { dir, error } = await extract(archive);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).toMatch(/unsafe path|not supported/);
    expect(existsSync(join(dir, '..', 'evil'))).toBe(false);
  });

  /** `b`'s header with field (offset, length) replaced by `text` and the checksum fixed. */
  function withField(b: Buffer, off: number, len: number, text: Buffer): Buffer {
    const h = Buffer.from(b);
    text.copy(h, off, 0, len);
    h.fill(0x20, 148, 156);
    let s = 0;
    for (const c of h.subarray(0, 512)) s += c;
    h.write(`${s.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    return h;
  }

  it.each([
    ['digits, NUL-ended', '0000644\0', 0o644],
    ['digits, space-ended', '000644 \0', 0o644],
    ['led by spaces', '   644\0\0', 0o644],
    ['all NULs', '\0\0\0\0\0\0\0\0', 0],
    ['all spaces', '        ', 0],
  ])('reads a mode field written as %s', async (_what, text, mode) => {
    const b = withField(entry({ name: 'f', data: 'x', mtimeNsec: 0 }), 100, 8, Buffer.from(text, 'latin1'));
    const e = await readEntry(new BytePuller(Readable.from([b])));
    expect(e?.mode).toBe(mode);
  });

  it.each([
    ['a non-octal digit', '0000648\0'],
    ['a letter', '00006a4\0'],
    ['digits after a space', '0006 44\0'],
    ['a leading NUL', '\x00000644 '],
  ])('refuses a mode field with %s, naming the offset', async (_what, text) => {
    const b = withField(entry({ name: 'f', data: 'x', mtimeNsec: 0 }), 100, 8, Buffer.from(text, 'latin1'));
    await expect(readEntry(new BytePuller(Readable.from([b])))).rejects.toThrow(/not valid at byte 0: not an octal number/);
  });

  it('reads the same entries whatever the chunking of the stream (pulls and skips across chunks)', async () => {
    const a = tar(entry({ name: 'a', data: 'x'.repeat(700) }), entry({ name: 'b'.repeat(130), data: 'y'.repeat(5000) }), entry({ name: 'c', type: 'dir' }));
    const read = async (chunks: Buffer[]) => {
      const p = new BytePuller(Readable.from(chunks));
      const out: string[] = [];
      for (let e = await readEntry(p); e; e = await readEntry(p)) {
        const data = await p.pull(e.size);
        await p.skip(padding(e.size));
        out.push(`${e.name.toString()}:${data.toString()}`);
      }
      return out;
    };
    const whole = await read([a]);
    expect(whole).toHaveLength(3);
    for (const size of [1, 7, 511, 512, 513, 4096]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < a.length; i += size) chunks.push(a.subarray(i, i + size));
      expect(await read(chunks)).toEqual(whole);
    }
  });

  it('an archive out of tree order or with a path twice extracts as stock tar does: the last one wins', async () => {
    const { dir, error } = await extract(tar(entry({ name: 'x', data: 'one' }), entry({ name: 'a', data: 'A' }), entry({ name: 'x', data: 'two' }), entry({ name: 'd/f', data: 'F' }), entry({ name: 'd', type: 'dir' }), entry({ name: 'd/f', data: 'F2' })));
    expect(error).toBeUndefined();
    expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('two');
    expect(readFileSync(join(dir, 'a'), 'utf8')).toBe('A');
    expect(readFileSync(join(dir, 'd/f'), 'utf8')).toBe('F2');
  });

  it('safeParts drops . and empty parts', () => {
    expect(safeParts(Buffer.from('./a//b/.')).map(String)).toEqual(['a', 'b']);
  });

  it('frameRanges: the frames holding the wanted entries, merged', () => {
    const frames: [number, number][] = [[0, 0], [100, 40], [200, 90], [300, 130], [350, 150]];
    expect(frameRanges([{ offset: 150, span: 20 }], frames)).toEqual([{ rawStart: 100, storedStart: 40, storedEnd: 90, from: 150, to: 170 }]);
    expect(frameRanges([{ offset: 90, span: 20 }, { offset: 110, span: 100 }], frames)).toEqual([{ rawStart: 0, storedStart: 0, storedEnd: 130, from: 90, to: 210 }]);
    expect(frameRanges([{ offset: 0, span: 10 }, { offset: 320, span: 30 }], frames)).toHaveLength(2);
  });
});

describe('HeaderEncoder', () => {
  it('a reused encoder writes what a fresh one writes, whatever came before (no stale scratch bytes)', async () => {
    const { HeaderEncoder } = await import('../../src/engines/dir/tar.js');
    const heads: TarHeader[] = [
      { ...base, name: Buffer.from(`${'n'.repeat(300)}/x`), type: 'file', size: 9 },
      { ...base, name: Buffer.from('a'), type: 'dir', size: 0, mtimeNsec: 0 },
      { ...base, name: Buffer.from('caf\xe9/l', 'latin1'), type: 'symlink', size: 0, linkname: Buffer.from('t'.repeat(150)), uname: 'u'.repeat(40), gname: 'root' },
      { ...base, name: Buffer.from('b'), type: 'file', size: 2 ** 34, uid: 2 ** 22, gid: 7, uname: 'root' },
      { ...base, name: Buffer.from('d'.repeat(99)), type: 'dir', size: 0 },
      { ...base, name: Buffer.from('short'), type: 'hardlink', size: 0, linkname: Buffer.from('a'), mtimeSec: -5, mtimeNsec: 0 },
    ];
    const reused = new HeaderEncoder();
    const seq = [...heads, ...heads.slice().reverse()];
    for (const h of seq) {
      const got = Buffer.from(reused.encode(h));
      expect(got.equals(new HeaderEncoder().encode(h))).toBe(true);
      expect(got.length % 512).toBe(0);
      const e = await readEntry(new BytePuller(Readable.from([got, END_OF_ARCHIVE])));
      expect(e!.name.equals(h.name)).toBe(true);
      expect([e!.type, e!.size, e!.uid, e!.gid, e!.mtimeSec, e!.mtimeNsec, e!.uname ?? '']).toEqual([h.type, h.size, h.uid, h.gid, h.mtimeSec, h.mtimeNsec, h.uname ?? '']);
      if (h.linkname) expect(e!.linkname!.equals(h.linkname)).toBe(true);
    }
  });
});
