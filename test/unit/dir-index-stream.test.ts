// The directory index as streams: tree order is the walk's order, lines read back across chunk
// edges (multi-byte names cut by a chunk), and the parent cursor's gone/kept entries.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { Extractor, extractAll } from '../../src/engines/dir/extract.js';
import { deletedLine, deletions, entryLine, LineFile, OwnHashes, ownFields, ParentCursor, pathSelect, readHeader, SyncLines, treeOrder, treeOrderOfKeys } from '../../src/engines/dir/index-stream.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../../src/engines/dir/tar.js';
import type { IndexEntry } from '../../src/engines/dir/types.js';

const dir = mkdtempSync(join(tmpdir(), 'dbs-index-stream-'));

/** A pseudo-random tree of names (bytes that sort around '/': '.', '-', '0', 'a', 0xff). */
function randomTree(seed: number): Map<string, unknown> {
  let x = seed;
  const rnd = (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
  const alphabet = ['.', '-', '0', 'a', 'b', 'é', '\u00ff', ' '];
  const make = (depth: number): Map<string, unknown> => {
    const m = new Map<string, unknown>();
    for (let i = rnd(6); i >= 0; i--) {
      let name = '';
      for (let j = rnd(3); j >= 0; j--) name += alphabet[rnd(alphabet.length)];
      m.set(name, depth < 3 && rnd(2) ? make(depth + 1) : null);
    }
    return m;
  };
  return make(0);
}

/** The walk's order: children sorted by name bytes, each directory before its subtree. */
function walkOrder(t: Map<string, unknown>, prefix: Buffer[] = []): Buffer[] {
  const out: Buffer[] = [];
  const names = [...t.keys()].map((n) => Buffer.from(n, 'utf8')).sort(Buffer.compare);
  for (const n of names) {
    const path = [...prefix, n];
    out.push(Buffer.concat(path.flatMap((p, i) => (i ? [Buffer.from('/'), p] : [p]))));
    const sub = t.get(n.toString('utf8'));
    if (sub instanceof Map) out.push(...walkOrder(sub, path));
  }
  return out;
}

function entry(path: string, type: IndexEntry['type'] = 'file'): IndexEntry {
  return { type, path, size: 1, mode: 0o644, uid: 0, gid: 0, mtime: '1.000000000', ino: 1, offset: 0, span: 512 };
}

function indexFile(name: string, paths: (string | [string, IndexEntry['type']])[]): string {
  const f = join(dir, name);
  writeFileSync(f, `{"kind":"header","format":1,"data":"data.tar.zst"}\n${paths.map((p) => entryLine(typeof p === 'string' ? entry(p) : entry(p[0], p[1]))).join('')}${deletedLine({ path: 'old' })}`);
  return f;
}

describe('tree order', () => {
  it('is the order the walk emits paths in (200 random trees)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const walked = walkOrder(randomTree(seed));
      expect([...walked].sort(treeOrder).map(String)).toEqual(walked.map(String));
      // The extractor's form (latin1 keys) orders alike.
      const keys = walked.map((b) => b.toString('latin1'));
      expect([...keys].sort(treeOrderOfKeys)).toEqual(keys);
    }
  });
  it('puts a directory before its subtree and its subtree before a sibling that shares a prefix', () => {
    const p = (s: string) => Buffer.from(s);
    expect(treeOrder(p('a'), p('a/x'))).toBeLessThan(0);
    expect(treeOrder(p('a/x'), p('a.b'))).toBeLessThan(0); // byte order would put "a.b" first
    expect(treeOrder(p('a/x'), p('a-b'))).toBeLessThan(0);
    expect(treeOrder(p('a/z'), p('ab'))).toBeLessThan(0);
    expect(treeOrder(p('b'), p('a/z'))).toBeGreaterThan(0);
    expect(treeOrder(p('a'), p('a'))).toBe(0);
  });
});

describe('LineFile and SyncLines', () => {
  it('read back every line, multi-byte names cut at a chunk edge included, and a last line without its newline', () => {
    const f = join(dir, 'lines.jsonl');
    const w = new LineFile(f);
    const want: string[] = [];
    // Lines of varying lengths so that 1 MiB chunk edges fall inside 2- and 3-byte characters.
    for (let i = 0; i < 30_000; i++) {
      const line = `${i} ${'é'.repeat(i % 37)}${'€'.repeat(i % 11)} ${'x'.repeat(i % 5)}`;
      want.push(line);
      w.add(`${line}\n`);
    }
    w.close();
    expect(w.lines).toBe(30_000);
    const r = new SyncLines(f);
    const got: string[] = [];
    for (let l = r.next(); l !== null; l = r.next()) got.push(l);
    r.close();
    r.close(); // twice is harmless
    expect(got).toEqual(want);
    // A character cut exactly at the first chunk's edge, and a line longer than two chunks.
    const cut = `${'x'.repeat((1 << 20) - 2)}\né${'€'.repeat(900_000)}\nend`;
    const h = join(dir, 'cut.txt');
    writeFileSync(h, cut);
    const r3 = new SyncLines(h);
    const wantCut: (string | null)[] = [...cut.split('\n'), null];
    expect([r3.next(), r3.next(), r3.next(), r3.next()]).toEqual(wantCut);
    r3.close();
    // The same through a selecting reader (it passes over lines as bytes): every line taken,
    // then only the short ones.
    const all = new SyncLines(h, () => true);
    expect([all.next(), all.next(), all.next(), all.next()]).toEqual(wantCut);
    all.close();
    const short = new SyncLines(h, (_b, s, e) => e - s < 10);
    expect([short.next(), short.lineNo, short.next()]).toEqual(['end', 3, null]);
    short.close();
    const g = join(dir, 'no-newline.txt');
    writeFileSync(g, 'one\ntwo é');
    const r2 = new SyncLines(g);
    expect([r2.next(), r2.next(), r2.next()]).toEqual(['one', 'two é', null]);
    r2.close();
  });
});

describe('LineFile holes', () => {
  it('fills a placeholder in a line not yet written and in one already in the file, multi-byte text before it', () => {
    const f = join(dir, 'holes.jsonl');
    const w = new LineFile(f);
    const holes: { h: ReturnType<LineFile['addWithHole']>; hex: string }[] = [];
    const want: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const hex = createHash('sha256').update(String(i)).digest('hex');
      const line = `{"path":"${'é'.repeat(i % 7)}${i}","sha256":"${'0'.repeat(64)}","n":${i}}`;
      want.push(line.replace('0'.repeat(64), hex));
      if (i % 3) w.add(`${line.replace('0'.repeat(64), hex)}\n`);
      else holes.push({ h: w.addWithHole(`${line}\n`, line.indexOf('"sha256":"') + 10), hex });
      // Fill some at once (still buffered), the rest much later (flushed to the file by then).
      if (i % 6 === 0) {
        const x = holes.pop()!;
        w.fill(x.h, x.hex);
      }
    }
    expect(w.holes).toBe(holes.length);
    for (const x of holes) w.fill(x.h, x.hex);
    expect(w.holes).toBe(0);
    w.close();
    expect(readFileSync(f, 'utf8')).toBe(want.map((l) => `${l}\n`).join(''));
    expect(() => w.fill(holes[0]!.h, holes[0]!.hex)).toThrow(/after its file was closed/);
  });
});

describe('ParentCursor', () => {
  it('gives the parent entry of each walked path; what the walk passes, skips or writes as another type is gone', () => {
    const f = indexFile('parent.jsonl', ['a', ['b', 'dir'], 'b/gone', 'b/kept', 'c', 'd', 'e/f', 'z']);
    const gone: string[] = [];
    const c = new ParentCursor(f, 'the parent', (e) => gone.push(e.path!));
    const walk = (p: string, type: IndexEntry['type'] = 'file') => {
      const prev = c.at(Buffer.from(p));
      c.keep(Buffer.from(p), type);
      return prev?.path;
    };
    expect(walk('a')).toBe('a');
    expect(walk('b', 'dir')).toBe('b');
    expect(walk('b/kept')).toBe('b/kept'); // b/gone was passed
    expect(c.at(Buffer.from('c'))?.path).toBe('c'); // looked at, then not written (it vanished)
    expect(walk('d', 'dir')).toBe('d'); // a file before, a directory now
    expect(walk('d/new')).toBeUndefined();
    c.end(); // e/f and z: not in the walk
    expect(gone).toEqual(['b/gone', 'c', 'd', 'e/f', 'z']);
    expect(c.gone).toBe(5);
  });

  it('refuses a parent index that is not in tree order', () => {
    const f = indexFile('unordered.jsonl', ['a', 'c', 'b']);
    const c = new ParentCursor(f, 'the index of backup b-x', () => undefined);
    expect(() => c.at(Buffer.from('z'))).toThrow(/the index of backup b-x: line 4 \("b"\) is not in tree order/);
    c.close();
  });

  it('refuses a line that is not JSON, naming the line', () => {
    const f = join(dir, 'broken.jsonl');
    writeFileSync(f, `{"kind":"header","format":1,"data":"d"}\n${entryLine(entry('a'))}{"kind":"entry",\n`);
    const c = new ParentCursor(f, 'the parent', () => undefined);
    expect(c.at(Buffer.from('a'))?.path).toBe('a');
    expect(() => c.at(Buffer.from('b'))).toThrow(/the parent: line 3 is not JSON/);
    c.close();
  });
});

describe('OwnHashes: a restore checks each file against the index, found by its offset in the tar', () => {
  const files: [string, Buffer][] = [['a.txt', Buffer.from('alpha\n')], ['big.bin', Buffer.alloc(3 * 1024 * 1024 + 5, 7)], ['c.txt', Buffer.from('gamma')]];
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  function archive(): { tar: Buffer; offsets: number[] } {
    const parts: Buffer[] = [];
    const offsets: number[] = [];
    let at = 0;
    for (const [name, data] of files) {
      const h = encodeHeader({ name: Buffer.from(name), type: 'file', size: data.length, mode: 0o644, uid: 0, gid: 0, mtimeSec: 1_700_000_000, mtimeNsec: 0 } as TarHeader);
      offsets.push(at);
      parts.push(h, data, Buffer.alloc(padding(data.length)));
      at += h.length + data.length + padding(data.length);
    }
    return { tar: Buffer.concat([...parts, END_OF_ARCHIVE]), offsets };
  }
  function index(name: string, hashes: string[]): string {
    const { offsets } = archive();
    const f = join(dir, name);
    const lines = files.map(([p, data], i) => entryLine({ ...entry(p), size: data.length, sha256: hashes[i]!, offset: offsets[i]!, span: 0 }));
    // An entry whose bytes are in an older backup sits between them (at an offset of that tar).
    lines.splice(1, 0, entryLine({ ...entry('older.txt'), sha256: '0'.repeat(64), offset: offsets[1]!, span: 0, in: 'b-older' }));
    writeFileSync(f, `{"kind":"header","format":1,"data":"data.tar.zst","root":{"mode":493,"uid":0,"gid":0,"mtime":"1.000000000"}}\n${lines.join('')}${deletedLine({ path: 'gone.txt' })}${deletedLine({ path64: Buffer.from([0xff]).toString('base64') })}`);
    return f;
  }
  async function restore(indexFile: string): Promise<{ out: string; checked: number }> {
    const out = join(mkdtempSync(join(dir, 'x-')), 'build');
    mkdirSync(out);
    const x = new Extractor(out);
    const own = new OwnHashes(indexFile, 'the index');
    let checked = 0;
    x.expect = (e) => {
      const s = own.at(e.offset);
      if (s) checked++;
      return s;
    };
    try {
      await extractAll(Readable.from([archive().tar]), x, { signal: new AbortController().signal });
    } finally {
      own.close();
    }
    return { out, checked };
  }

  it('every file of the tar is checked against its own line (not the older entry at the same offset)', async () => {
    const f = index('own-good.jsonl', files.map(([, d]) => sha(d)));
    const { out, checked } = await restore(f);
    expect(checked).toBe(3);
    for (const [name, data] of files) expect(readFileSync(join(out, name)).equals(data)).toBe(true);
    expect(readHeader(f, 'the index').root?.mode).toBe(493);
    expect([...deletions(f, 'the index')]).toEqual([{ path: 'gone.txt' }, { path64: '/w==' }]);
  });

  it.each([0, 1, 2])('content that differs from the index (file %i) fails the restore', async (bad) => {
    const hashes = files.map(([, d]) => sha(d));
    hashes[bad] = sha(Buffer.from('something else'));
    await expect(restore(index(`own-bad-${bad}.jsonl`, hashes))).rejects.toThrow(new RegExp(`the content of "${files[bad]![0].replace('.', '\\.')}" does not match its sha256 in the index`));
  });
});

describe('pathSelect: the lines a --path restore parses', () => {
  const names = ['etc', 'etc/app', 'etc/app/x', 'etcetera', 'a"b', 'a"b/c', 'back\\slash', 'back\\slash/d', 'é', 'é/€', 'tab\there', 'x/etc/app', 'line\nbreak/z'];
  const takes = (line: string, paths: string[]) => {
    const b = Buffer.from(line.trimEnd(), 'utf8');
    return pathSelect(paths)(b, 0, b.length);
  };
  it('every entry at or under a path and every directory above one is parsed; the rest is passed over', () => {
    for (const p of names) for (const n of names) for (const type of ['file', 'dir', 'symlink', 'hardlink'] as const) {
      const under = n === p || n.startsWith(`${p}/`);
      const above = p.startsWith(`${n}/`);
      // A link target that holds the needle's text cannot fool it: only the path field counts.
      const line = entryLine({ ...entry(n, type), link: `../${p}/"path":"${p}` });
      if (under) expect(takes(line, [p]), `${type} ${n} under ${p}`).toBe(true);
      else if (!n.startsWith(p)) expect(takes(line, [p]), `${type} ${n} not under ${p}`).toBe(above);
    }
  });
  it('any of several paths; directories above each', () => {
    expect(takes(entryLine(entry('b/c/d')), ['a/x', 'b/c'])).toBe(true);
    expect(takes(entryLine(entry('b', 'dir')), ['a/x', 'b/c'])).toBe(true);
    expect(takes(entryLine(entry('a', 'dir')), ['a/x', 'b/c'])).toBe(true);
    expect(takes(entryLine(entry('c', 'dir')), ['a/x', 'b/c'])).toBe(false);
    expect(takes(entryLine(entry('b/d')), ['a/x', 'b/c'])).toBe(false);
  });
  it('lines not laid out as entryLine writes a UTF-8 path are always parsed', () => {
    for (const line of [
      entryLine({ ...entry('x'), path: undefined, path64: '/w==' }),
      '{"kind":"deleted","path":"q"}',
      '{"kind":"header","format":1,"data":"data.tar.zst"}',
      '{"type":"file","kind":"entry","path":"q"}',
      '{"kind":"entry","type":"file"}',
      'not json',
      '',
    ]) expect(takes(line, ['etc']), line).toBe(true);
  });
  it('reads through a file: only the taken lines, numbered as in the file, across chunk edges', () => {
    const f = join(dir, 'select.jsonl');
    // Lines of about 300 bytes: 8,000 of them cross several 1 MiB chunk edges.
    const lines = Array.from({ length: 8000 }, (_, i) => entryLine({ ...entry(`d${i % 7}/f${i}-${'é'.repeat(100)}`), sha256: 'ab'.repeat(32) }));
    writeFileSync(f, `{"kind":"header","format":1,"data":"data.tar.zst"}\n${lines.join('')}`);
    const want = (i: number) => i % 7 === 3 && i % 5 === 0;
    const paths = lines.map((_, i) => i).filter(want).map((i) => `d3/f${i}-${'é'.repeat(100)}`);
    const r = new SyncLines(f, pathSelect(paths));
    const got: [number, string][] = [];
    for (let t = r.next(); t !== null; t = r.next()) got.push([r.lineNo, t]);
    r.close();
    expect(got[0]).toEqual([1, '{"kind":"header","format":1,"data":"data.tar.zst"}']);
    expect(got.slice(1)).toEqual(lines.map((l, i) => [i + 2, l.trimEnd()] as [number, string]).filter((_, i) => want(i)));
    expect(statSync(f).size).toBeGreaterThan(3 << 20);
  });
});

describe('ownFields: the offset and sha256 of an entry line, read in place', () => {
  const read = (line: string) => {
    const b = Buffer.from(`junk,"offset":7,"sha256":"${'f'.repeat(64)}"}\n${line.trimEnd()}\n{"kind":"entry","type":"file","in":"b-x"}`, 'utf8');
    const s = b.indexOf(10) + 1;
    return ownFields(b, s, b.indexOf(10, s));
  };
  it('equals what parsing the line gives, whatever the path and link hold', () => {
    const sha = createHash('sha256').update('x').digest('hex');
    for (const path of ['a', 'a"b', 'x,"offset":9,', 'y,"sha256":"' + 'a'.repeat(64) + '"', 'é/€', 'in,"in":"q']) for (const type of ['file', 'dir', 'symlink', 'hardlink'] as const) {
      for (const offset of [0, 512, 123_456_789_012]) {
        const e: IndexEntry = { ...entry(path, type), link: type === 'symlink' || type === 'hardlink' ? `t,"offset":5,"in":"z` : undefined, offset, ...(type === 'file' ? { sha256: sha } : {}) };
        const parsed = JSON.parse(entryLine(e)) as IndexEntry;
        expect(read(entryLine(e)), `${type} ${path} ${offset}`).toEqual(parsed.sha256 ? { offset, sha256: parsed.sha256 } : { offset });
        expect(read(entryLine({ ...e, in: 'b-20261201T000000Z-abcd' }))).toBe('in an older backup');
      }
    }
  });
  it('a line laid out otherwise is left to the parser (null)', () => {
    for (const line of [
      '{"kind":"deleted","path":"q"}',
      '{"kind":"header","format":1,"data":"data.tar.zst"}',
      '{"type":"file","kind":"entry","path":"q","offset":5,"span":512}',
      '{"kind":"entry","type":"file","path":"q","offset":05,"span":512}',
      '{"kind":"entry","type":"file","path":"q","offset":-5,"span":512}',
      '{"kind":"entry","type":"file","path":"q","offset":5.5,"span":512}',
      '{"kind":"entry","type":"file","path":"q","offset":1234567890123456,"span":512}',
      `{"kind":"entry","type":"file","path":"q","offset":5,"span":512,"sha256":"${'A'.repeat(64)}"}`,
      `{"kind":"entry","type":"file","path":"q","offset":5,"span":512,"sha256":"${'a'.repeat(63)}"}`,
      '{"kind":"entry","type":"file","path":"q","span":512}',
      '{"kind":"entry","type":"file","path":"q","offset":5,"span":512',
    ]) expect(read(line), line).toBeNull();
  });
});
