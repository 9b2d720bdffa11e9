// The directory engine. A backup is two artifacts:
//   data.tar.zst     a pax tar of the tree (an incremental: what changed), compressed by the
//                    sink in independent zstd frames whose raw/stored offsets it records;
//   index.jsonl.zst  JSON lines: a header (the data artifact, its frame table, the root's
//                    metadata), one `entry` per path of the WHOLE tree at this backup (where
//                    its bytes are: this backup's tar or an older one's, `in`), and for an
//                    incremental one `deleted` per path gone since the parent.
// Restore builds the tree aside (a temp dir next to the target), applying the chain in order
// (deletions, then the link's tar), and moves it in place at the end. `--path` reads only the
// frames that hold the chosen entries (ranged reads).
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rename, rm, rmdir, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DbsError } from '../../errors.js';
import { object } from '../../decode.js';
import type { ArtifactReader, ChainLink, Endpoint, Engine, EngineRunContext, ProbeInfo, RestoreOutcome, ToolInfo, TreeEntry, VerifyRequest } from '../types.js';
import { Extractor, extractAll, keyOf, safeParts, utimeOf, type Meta } from './extract.js';
import { decodeEntry, decodeHeader, deletedLine, deletions, indexEntries, LineFile, OwnHashes, pathSelect, ParentCursor, readHeader, type IndexHeader } from './index-stream.js';
import type { DirBackupOutcome, DirBackupRequest, DirFacts, DirRestoreOptions, DirRestoreRequest, DirSelection, IndexEntry } from './types.js';
import { entryPath, pathKey, splitMtime, TreeWalk } from './walk.js';

interface DirIndex {
  header: IndexHeader;
  entries: IndexEntry[];
  deleted: { path?: string; path64?: string }[];
}

function pathOf(ep: Endpoint): string {
  if (!ep.path) throw new DbsError('INVALID_ARGUMENT', `${ep.url} has no path`, { hint: 'use dir:///absolute/path' });
  return ep.path;
}

function findArtifact(arts: ArtifactReader[], prefix: string, what: string): ArtifactReader {
  const a = arts.find((x) => x.name.startsWith(prefix));
  if (!a) throw new DbsError('RESTORE_FAILED', `${what} has no ${prefix} artifact`, { hint: 'the backup is not a dbs directory backup' });
  return a;
}

async function readIndex(arts: ArtifactReader[], what: string): Promise<DirIndex> {
  const src = await findArtifact(arts, 'index.', what).open();
  const out: DirIndex = { header: { kind: 'header', format: 1, data: '' }, entries: [], deleted: [] };
  for await (const line of createInterface({ input: src, crlfDelay: Infinity })) {
    if (!line) continue;
    const o = object(JSON.parse(line), `the index of ${what}`);
    if (o.kind === 'header') out.header = decodeHeader(o, `the index header of ${what}`);
    else if (o.kind === 'entry') out.entries.push(decodeEntry(o, `an index entry of ${what}`)); else if (o.kind === 'deleted') out.deleted.push({ ...(typeof o.path === 'string' ? { path: o.path } : {}), ...(typeof o.path64 === 'string' ? { path64: o.path64 } : {}) });
  }
  if (!out.header.data) throw new DbsError('RESTORE_FAILED', `the index of ${what} has no header`, { hint: 'the backup is damaged; restore another backup' });
  return out;
}

/** A backup's index artifact, copied (decompressed) into `file`, a scratch file read by index-stream.ts. */
async function copyIndex(arts: ArtifactReader[], what: string, file: string): Promise<string> {
  await pipeline(await findArtifact(arts, 'index.', what).open(), createWriteStream(file, { mode: 0o600 }));
  return file;
}

/** The header of a backup's index (its first line; the rest is not read). */
async function indexHeader(arts: ArtifactReader[], what: string): Promise<IndexHeader> {
  const src = await findArtifact(arts, 'index.', what).open();
  const lines = createInterface({ input: src, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line) continue;
      const o = object(JSON.parse(line), `the index of ${what}`);
      if (o.kind === 'header') return decodeHeader(o, `the index header of ${what}`);
      break;
    }
  } finally {
    lines.close();
    src.destroy();
  }
  throw new DbsError('RESTORE_FAILED', `the index of ${what} has no header`, { hint: 'the backup is damaged; restore another backup' });
}

/** An entry is `p` or under it. */
function under(key: string, p: string): boolean {
  return key === p || key.startsWith(`${p}/`);
}

export class DirEngine implements Engine<DirSelection, DirFacts, DirRestoreOptions> {
  readonly kind = 'dir' as const;
  readonly types = ['snapshot', 'incremental'] as const;

  async tools(): Promise<ToolInfo[]> {
    return [{ name: 'tar + zstd (built in)', version: process.version, found: true, purpose: 'directory snapshots and incrementals' }];
  }

  async probe(source: Endpoint): Promise<ProbeInfo> {
    const path = pathOf(source);
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? new DbsError('SOURCE_NOT_FOUND', `the directory ${path} does not exist`, { hint: 'check the path in dir:///PATH' }) : new DbsError('SOURCE_UNREACHABLE', `cannot read ${path}: ${e.message}`, { cause: e });
    });
    if (!st.isDirectory()) throw new DbsError('INVALID_ARGUMENT', `${path} is not a directory`, { hint: 'point dir:///PATH at a directory (sqlite:///PATH backs up a SQLite file)' });
    await readdir(path).catch((e: Error) => {
      throw new DbsError('SOURCE_AUTH', `cannot list ${path}: ${e.message}`, { cause: e, hint: 'run dbs as a user that can read the tree' });
    });
    return { flavor: 'dir', serverVersion: 'posix', problems: [], facts: {} };
  }

  async backup(req: DirBackupRequest, ctx: EngineRunContext): Promise<DirBackupOutcome> {
    const root = pathOf(req.source);
    if (req.type === 'incremental' && !req.parent?.artifacts) {
      throw new DbsError('REFUSED', 'an incremental directory backup needs its parent', { hint: 'run the base plan first, or set --auto-full' });
    }
    // The index goes to scratch files as the walk goes (index-stream.ts): entries, then the
    // paths gone since the parent; the parent's index is copied next to them to be read along.
    const entries = new LineFile(join(ctx.tmpDir, 'dir-index-entries.jsonl'));
    const deleted = new LineFile(join(ctx.tmpDir, 'dir-index-deleted.jsonl'));
    let cursor: ParentCursor | undefined;
    try {
      if (req.type === 'incremental' && req.parent?.artifacts) {
        const copy = await copyIndex(req.parent.artifacts, `backup ${req.parent.id}`, join(ctx.tmpDir, 'dir-parent-index.jsonl'));
        cursor = new ParentCursor(copy, `the index of backup ${req.parent.id}`, (e) => deleted.add(deletedLine(e)));
      }
      const warn = (m: string) => (ctx.warn ? ctx.warn(m) : ctx.log(`warning: ${m}`));
      const walk = new TreeWalk({ root, selection: req.selection, ...(cursor ? { parent: { id: req.parent!.id, cursor } } : {}), index: entries, warn, signal: ctx.signal });
      let data: Awaited<ReturnType<typeof req.sink.write>>;
      try {
        data = await req.sink.write('data', Readable.from(walk.tar(), { objectMode: false }), { extension: '.tar', frameTable: true, parallelCompression: true });
        await walk.finishHashes();
      } catch (e) {
        walk.stopHashes();
        throw e;
      }
      cursor?.end();
      entries.close();
      deleted.close();
      const header: IndexHeader = { kind: 'header', format: 1, data: data.name, ...(data.frames ? { frames: data.frames } : {}), ...(walk.root ? { root: walk.root } : {}) };
      async function* lines(): AsyncGenerator<string | Buffer> {
        yield `${JSON.stringify(header)}\n`;
        for (const f of [entries.path, deleted.path]) yield* createReadStream(f, { highWaterMark: 1 << 20 });
      }
      await req.sink.write('index', Readable.from(lines(), { objectMode: false }), { extension: '.jsonl' });
      const facts: DirFacts = { ...walk.facts, deleted: deleted.lines };
      for (const k of ['changed', 'vanished', 'unreadable', 'skipped'] as const) if (facts[k]) ctx.log(`${facts[k]} ${k} (see the warnings)`);
      return { toolName: 'dbs tar', toolVersion: '1', serverVersion: 'posix', facts };
    } finally {
      cursor?.close();
      entries.close();
      deleted.close();
    }
  }

  async restore(req: DirRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    const target = pathOf(req.target).replace(/\/+$/, '');
    const links: ChainLink<DirFacts>[] = req.chain ?? [{ backupId: 'this', type: req.type, facts: req.facts, artifacts: req.artifacts }];
    const last = links.at(-1)!;
    const st = await lstat(target).catch(() => undefined);
    if (st && !st.isDirectory()) throw new DbsError('INVALID_PATH', `--to-dir ${target} is not a directory`, { hint: 'name a new or empty directory' });
    const existing = st ? await readdir(target) : [];
    if (existing.length && !req.options.replace) {
      throw new DbsError('ALREADY_EXISTS', `--to-dir ${target} is not empty`, { hint: 'name a new or empty directory, or pass --replace to replace its contents with the backup' });
    }
    const paths = req.options.paths;
    let root: IndexHeader['root'];
    let selected: IndexEntry[] | undefined;
    /** A --path restore: the directories of the last index (their metadata for the restored parents). */
    const dirs: { path: Buffer; meta: Meta }[] = [];
    let lastHeader: IndexHeader | undefined;
    if (paths.length) {
      // The last index, copied into the scratch dir and read through: what is under the
      // paths (and the first path of a hard link picked) is kept, not the whole index.
      const what = `the index of backup ${last.backupId}`;
      const file = await copyIndex(last.artifacts, `backup ${last.backupId}`, join(ctx.tmpDir, 'dir-restore-index-paths.jsonl'));
      lastHeader = readHeader(file, what);
      root = lastHeader.root;
      const pick = new Map<string, IndexEntry>();
      const hit = new Set<string>();
      // Only the lines of the paths and of the directories above them are parsed (pathSelect).
      const keepDir = (e: IndexEntry) => {
        if (e.type === 'dir') dirs.push({ path: entryPath(e), meta: { mode: e.mode, uid: e.uid, gid: e.gid, ...splitMtime(e.mtime) } });
      };
      for (const e of indexEntries(file, what, pathSelect(paths))) {
        keepDir(e);
        const key = pathKey(e);
        for (const p of paths) if (under(key, p)) {
          hit.add(p);
          pick.set(key, e);
        }
      }
      for (const p of paths) if (!hit.has(p)) throw new DbsError('NOT_FOUND', `backup ${last.backupId} holds no path ${JSON.stringify(p)}; nothing was restored`, { hint: `list it with: dbs backup ls ${last.backupId}` });
      // A hard link needs its first path (restored too): one more pass when one is not picked.
      const targets = new Set([...pick.values()].filter((e) => e.type === 'hardlink').map((e) => e.link ?? `\0${e.link64}`).filter((k) => !pick.has(k)));
      // (Their directories too: a target's parents get their metadata.)
      const select = pathSelect([...targets].filter((k) => !k.startsWith('\0')));
      if (targets.size) for (const e of indexEntries(file, what, select)) {
        keepDir(e);
        if (targets.has(pathKey(e))) pick.set(pathKey(e), e);
      }
      await rm(file, { force: true });
      selected = [...pick.values()];
    }
    await mkdir(dirname(target), { recursive: true });
    const build = await mkdtemp(join(dirname(target), `.dbs-restore-${basename(target)}-`));
    let rangedReads = 0;
    let storedRead = 0;
    try {
      const x = new Extractor(build);
      if (!selected) {
        // Each link's index is copied into the scratch dir and read alongside its tar
        // (index-stream.ts): the deletions first, then the content hashes in the tar's order.
        for (const [i, link] of links.entries()) {
          const what = `the index of backup ${link.backupId}`;
          const file = await copyIndex(link.artifacts, `backup ${link.backupId}`, join(ctx.tmpDir, `dir-restore-index-${i}.jsonl`));
          const header = readHeader(file, what);
          if (link === last) root = header.root;
          x.fresh = i === 0;
          for (const d of deletions(file, what)) await x.remove(entryPath(d));
          const own = new OwnHashes(file, what);
          x.expect = (e) => own.at(e.offset);
          try {
            const src = await findArtifact(link.artifacts, header.data, `backup ${link.backupId}`).open();
            await extractAll(src, x, { signal: ctx.signal });
          } finally {
            own.close();
          }
          await rm(file, { force: true });
        }
      } else {
        const holders = new Map<string, IndexEntry[]>();
        for (const e of selected) {
          const h = e.in ?? last.backupId;
          holders.set(h, [...(holders.get(h) ?? []), e]);
        }
        x.fresh = false;
        const wantSha = new Map(selected.filter((e) => e.sha256).map((e) => [keyOf(safeParts(entryPath(e))), e.sha256!]));
        x.expect = (_e, k) => wantSha.get(k);
        for (const link of links) {
          const want = holders.get(link === last ? last.backupId : link.backupId);
          if (!want?.length) continue;
          const header = link === last ? lastHeader! : await indexHeader(link.artifacts, `backup ${link.backupId}`);
          const art = findArtifact(link.artifacts, header.data, `backup ${link.backupId}`);
          const offsets = new Set(want.map((e) => e.offset));
          const frames = header.frames;
          if (!art.openRange || !frames || frames.length < 2) {
            await extractAll(await art.open(), x, { signal: ctx.signal, want: (e) => offsets.has(e.offset) });
            continue;
          }
          for (const r of frameRanges(want, frames)) {
            rangedReads++;
            storedRead += r.storedEnd - r.storedStart;
            const src = await art.openRange(r.storedStart, r.storedEnd);
            await extractAll(src, x, { signal: ctx.signal, startOffset: r.rawStart, from: r.from, stopAfter: r.to, want: (e) => offsets.has(e.offset) });
          }
        }
        // The parents of what was restored get their metadata from the index.
        for (const d of dirs) x.dirFromIndex(d.path, d.meta);
      }
      await x.finish();
      if (root) {
        if (x.owner) await chown(build, root.uid, root.gid);
        await chmod(build, root.mode);
      }
      // In place: the target was missing or empty (rmdir), or (--replace) is moved aside first.
      let aside: string | undefined;
      if (st && existing.length) {
        aside = join(dirname(target), `.dbs-replaced-${basename(target)}-${randomBytes(4).toString('hex')}`);
        await rename(target, aside);
      } else if (st) await rmdir(target);
      try {
        await rename(build, target);
      } catch (e) {
        if (aside) await rename(aside, target);
        throw e;
      }
      if (root) {
        const t = splitMtime(root.mtime);
        await utimes(target, utimeOf(t), utimeOf(t));
      }
      if (aside) await rm(aside, { recursive: true, force: true });
      return { bytes: x.bytes, facts: { path: target, files: x.files, ...(selected ? { entries: selected.length, rangedReads, storedBytesRead: storedRead } : {}) } };
    } catch (e) {
      await rm(build, { recursive: true, force: true });
      throw e;
    }
  }

  async list(req: VerifyRequest<DirSelection, DirFacts> & { paths: string[] }): Promise<TreeEntry[]> {
    const idx = await readIndex(req.artifacts, 'the backup');
    const out: TreeEntry[] = [];
    for (const e of idx.entries) {
      const key = pathKey(e);
      if (req.paths.length && !req.paths.some((p) => under(key, p))) continue;
      const path = e.path ?? entryPath(e).toString('utf8');
      const link = e.link ?? (e.link64 ? Buffer.from(e.link64, 'base64').toString('utf8') : undefined);
      out.push({ path, type: e.type, size: e.size, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, ...(link !== undefined ? { link } : {}) });
    }
    if (req.paths.length && out.length === 0) throw new DbsError('NOT_FOUND', `the backup holds no path ${req.paths.map((p) => JSON.stringify(p)).join(', ')}`, { hint: 'list the whole tree without --path' });
    return out;
  }
}

/** Merged ranges of whole frames holding the wanted entries (sorted by offset). */
export function frameRanges(want: Pick<IndexEntry, 'offset' | 'span'>[], frames: [number, number][]): { rawStart: number; storedStart: number; storedEnd: number; from: number; to: number }[] {
  const sorted = [...want].sort((a, b) => a.offset - b.offset);
  const frameOf = (raw: number): number => {
    let lo = 0;
    let hi = frames.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (frames[mid]![0] <= raw) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const out: { fs: number; fe: number; from: number; to: number }[] = [];
  for (const e of sorted) {
    const fs = frameOf(e.offset);
    const fe = frameOf(e.offset + e.span - 1) + 1;
    const cur = out.at(-1);
    if (cur && fs <= cur.fe) {
      cur.fe = Math.max(cur.fe, fe);
      cur.to = Math.max(cur.to, e.offset + e.span);
    } else out.push({ fs, fe, from: e.offset, to: e.offset + e.span });
  }
  return out.map((r) => ({ rawStart: frames[r.fs]![0], storedStart: frames[r.fs]![1], storedEnd: frames[r.fe]![1], from: r.from, to: r.to }));
}
