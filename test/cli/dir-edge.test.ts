// Directory sources at their edges, through the real binary (bin/dbs.js over dist/: build
// first): a file that changes while it is read or vanishes (the process is stopped with
// SIGSTOP while it holds the big file open, the tree is changed, then it goes on), files and
// directories that cannot be read (dbs runs as uid 65534 through setpriv: root reads
// everything), and --one-file-system over a tmpfs mounted inside the tree. Each case checks the
// exit code, the backup.warning events, the counts in the manifest (catalog and pool), and what
// a restore gives (content hashes); the incremental after a changed file, with a directory of its
// parent vanishing mid-run (recorded as deleted).
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;
const NOBODY = 65534;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function start(home: string, args: string[], o: { nobody?: boolean } = {}): ResultPromise {
  if (!existsSync(new URL('../../dist/bundle/main.js', import.meta.url))) throw new Error('dist/bundle/ is missing: run npm run build (npm test does)');
  const argv = [process.execPath, BIN, '--home', home, ...args];
  const [cmd, ...rest] = o.nobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', ...argv] : argv;
  return execa(cmd!, rest, { env: { PATH: process.env.PATH!, HOME: home, DBS_CACHE_DIR: join(home, '.cache') }, extendEnv: false, reject: false, input: '', cwd: home });
}
async function run(home: string, args: string[], o: { nobody?: boolean } = {}): Promise<Run> {
  const r = await start(home, args, o);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
function json<T>(r: Run): T {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** What is under `root`: relative path -> sha256 of a file, 'dir', or 'special' (a fifo...). */
function hashes(root: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(join(root, rel)).sort()) {
    const p = rel ? `${rel}/${n}` : n;
    const st = statSync(join(root, p));
    if (st.isDirectory()) {
      out[p] = 'dir';
      Object.assign(out, hashes(root, p));
    } else out[p] = st.isFile() ? sha(readFileSync(join(root, p))) : 'special';
  }
  return out;
}

interface Backup { id: string; planId: string; facts: Record<string, number> }
interface Manifest { backupId: string; plan: { id: string }; facts: Record<string, number> }
interface Event { type: string; level: string; message: string }

async function setup(o: { nobody?: boolean } = {}) {
  const home = tempDir('home');
  const pool = tempDir('pool');
  const root = join(tempDir('src'), 'tree');
  mkdirSync(root);
  if (o.nobody) {
    const can = await run(home, ['--version'], o);
    expect(can.code, `uid ${NOBODY} must be able to run ${process.execPath} and read ${BIN} (every parent directory of the checkout needs o+x): ${can.stderr}`).toBe(0);
    // tempDir()s are 0700 under a 0700 parent: let uid 65534 through, and own its dirs.
    chmodSync(dirname(home), 0o711);
    for (const d of [home, pool, dirname(root), root]) {
      chmodSync(d, 0o755);
      chownSync(d, NOBODY, NOBODY);
    }
  }
  const r = await run(home, ['pool', 'bind', 'p', '--type', 'local', '--path', pool], o);
  expect(r.code, r.stderr).toBe(0);
  return { home, pool, root };
}

async function backupOf(home: string, plan: string, o: { nobody?: boolean } = {}): Promise<Backup> {
  const r = await run(home, ['--json', 'plan', 'run', plan], o);
  return show(home, json<{ task: { backupId: string } }>(r).task.backupId, o);
}
async function show(home: string, id: string, o: { nobody?: boolean } = {}): Promise<Backup> {
  const m = json<Manifest>(await run(home, ['--json', 'backup', 'show', id], o));
  return { id: m.backupId, planId: m.plan.id, facts: m.facts };
}
/** The backup.warning messages of a plan, sorted (several share a timestamp). */
async function warnings(home: string, plan: string, o: { nobody?: boolean } = {}): Promise<string[]> {
  const es = json<Event[]>(await run(home, ['--json', 'events', '--plan', plan, '--limit', '1000'], o));
  return es.filter((e) => e.type === 'backup.warning').map((e) => e.message).sort();
}
/** The manifest in the pool (what survives the catalog): its facts. */
function poolFacts(pool: string, b: Backup): Record<string, number> {
  const m = JSON.parse(readFileSync(join(pool, 'dbs/backups', b.planId, b.id, 'manifest.json'), 'utf8')) as Manifest;
  return m.facts;
}
async function restored(home: string, id: string, o: { nobody?: boolean } = {}): Promise<string> {
  const out = join(tempDir('out'), 'r');
  if (o.nobody) {
    chmodSync(dirname(out), 0o755);
    chownSync(dirname(out), NOBODY, NOBODY);
  }
  const r = await run(home, ['backup', 'restore', id, '--to-dir', out], o);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

/**
 * Polls until process `pid` holds `file` open; false if it ends first. No timer between polls
 * (a 24 MiB file of random bytes is open for ~35 ms here: the compressor paces the reads).
 */
async function waitOpen(pid: number, file: string, until: Promise<unknown>): Promise<boolean> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  while (!done) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      return false;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return true;
      } catch {
        // closed meanwhile
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  return false;
}

describe('dir backups: files that change, vanish or cannot be read; --one-file-system', () => {
  it('a file that grows, shrinks or is written to while read is "changed", one that vanishes is "vanished": warned per file, counted, restored as read, taken again next time', async () => {
    const { home, pool, root } = await setup();
    const MiB = 1024 * 1024;
    const grow = randomBytes(24 * MiB);
    const shrink = randomBytes(24 * MiB);
    writeFileSync(join(root, 'a-grow.bin'), grow);
    writeFileSync(join(root, 'b-shrink.bin'), shrink);
    const touch = randomBytes(24 * MiB);
    writeFileSync(join(root, 'b-touch.bin'), touch);
    writeFileSync(join(root, 'keep.txt'), 'kept');
    mkdirSync(join(root, 'c-dir'));
    writeFileSync(join(root, 'c-dir/x.txt'), 'x');
    writeFileSync(join(root, 'z-gone.txt'), 'gone');
    mkdirSync(join(root, 'z-gonedir'));
    writeFileSync(join(root, 'z-gonedir/f.txt'), 'f');
    symlinkSync('keep.txt', join(root, 'z-link'));
    await execa('mkfifo', [join(root, 'fifo')]);
    expect((await run(home, ['plan', 'create', 'full', '--source', `dir://${root}`, '--pool', 'p'])).code).toBe(0);
    expect((await run(home, ['plan', 'create', 'inc', '--type', 'incremental', '--base-plan', 'full'])).code).toBe(0);

    const child = start(home, ['--json', 'plan', 'run', 'full']);
    const pid = child.pid!;
    // While it reads a-grow.bin: it grows, and two entries listed already vanish.
    expect(await waitOpen(pid, join(root, 'a-grow.bin'), child), 'dbs never held a-grow.bin open').toBe(true);
    process.kill(pid, 'SIGSTOP');
    appendFileSync(join(root, 'a-grow.bin'), randomBytes(MiB));
    unlinkSync(join(root, 'z-gone.txt'));
    rmSync(join(root, 'z-gonedir'), { recursive: true });
    unlinkSync(join(root, 'z-link'));
    process.kill(pid, 'SIGCONT');
    // While it reads b-shrink.bin: it shrinks to 1 MiB.
    expect(await waitOpen(pid, join(root, 'b-shrink.bin'), child), 'dbs never held b-shrink.bin open').toBe(true);
    process.kill(pid, 'SIGSTOP');
    truncateSync(join(root, 'b-shrink.bin'), MiB);
    process.kill(pid, 'SIGCONT');
    // While it reads b-touch.bin: its last MiB is written over (same size, a new mtime).
    expect(await waitOpen(pid, join(root, 'b-touch.bin'), child), 'dbs never held b-touch.bin open').toBe(true);
    process.kill(pid, 'SIGSTOP');
    const fd = openSync(join(root, 'b-touch.bin'), 'r+');
    writeSync(fd, randomBytes(MiB), 0, MiB, 23 * MiB);
    closeSync(fd);
    process.kill(pid, 'SIGCONT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const id = (JSON.parse(String(r.stdout)) as { task: { backupId: string } }).task.backupId;
    const b = await show(home, id);

    for (const facts of [b.facts, poolFacts(pool, b)]) {
      expect(facts).toMatchObject({ files: 5, dirs: 1, symlinks: 0, changed: 3, vanished: 3, unreadable: 0, skipped: 1 });
    }
    const w = await warnings(home, 'full');
    expect(w).toEqual([
      `"a-grow.bin" changed while it was read (size ${24 * MiB} -> ${25 * MiB}); the backup holds the bytes read, the next backup takes it again`,
      `"b-shrink.bin" changed while it was read (size ${24 * MiB} -> ${MiB}); the backup holds the bytes read, the next backup takes it again`,
      '"b-touch.bin" changed while it was read (written to, same size); the backup holds the bytes read, the next backup takes it again',
      '"fifo": a socket, fifo or device, not backed up',
      '"z-gone.txt" vanished while the backup ran',
      '"z-gonedir" vanished while the backup ran',
      '"z-link" vanished while the backup ran',
    ]);

    // Restored: the bytes read. a-grow.bin as it was when listed (the appended MiB is not
    // in it); b-shrink.bin keeps its listed size, its first MiB as it was and zeros where the
    // file had ended; each file's hash is the one in the index.
    const out = await restored(home, id);
    const h = hashes(out);
    expect(h['a-grow.bin']).toBe(sha(grow));
    const got = readFileSync(join(out, 'b-shrink.bin'));
    expect(got.length).toBe(24 * MiB);
    expect(got.subarray(0, MiB).equals(shrink.subarray(0, MiB))).toBe(true);
    expect(got.subarray(got.length - MiB).equals(Buffer.alloc(MiB))).toBe(true);
    expect(readFileSync(join(out, 'b-touch.bin')).subarray(0, MiB).equals(touch.subarray(0, MiB))).toBe(true);
    expect(h['keep.txt']).toBe(sha(Buffer.from('kept')));
    expect(h['z-gone.txt']).toBeUndefined();
    // What vanished is not in the backup (a directory neither: not left as an empty one).
    expect(h['z-gonedir']).toBeUndefined();
    const ls = json<{ entries: { path: string; size: number }[] }>(await run(home, ['--json', 'backup', 'ls', id]));
    expect(ls.entries.map((e) => e.path)).toEqual(['a-grow.bin', 'b-shrink.bin', 'b-touch.bin', 'c-dir', 'c-dir/x.txt', 'keep.txt']);

    // The next incremental takes the three changed files again (nothing else changed), and a
    // directory of the parent that vanishes while it runs is recorded as deleted with its
    // subtree: the restored chain is the tree as it is now.
    const next = start(home, ['--json', 'plan', 'run', 'inc']);
    expect(await waitOpen(next.pid!, join(root, 'a-grow.bin'), next), 'dbs never held a-grow.bin open').toBe(true);
    process.kill(next.pid!, 'SIGSTOP');
    rmSync(join(root, 'c-dir'), { recursive: true });
    process.kill(next.pid!, 'SIGCONT');
    const r2 = await next;
    expect(r2.exitCode, String(r2.stderr)).toBe(0);
    const inc = await show(home, (JSON.parse(String(r2.stdout)) as { task: { backupId: string } }).task.backupId);
    expect(inc.facts).toMatchObject({ written: 3, unchanged: 1, changed: 0, vanished: 1, skipped: 1, deleted: 2 });
    expect(await warnings(home, 'inc')).toEqual(['"c-dir" vanished while the backup ran', '"fifo": a socket, fifo or device, not backed up']);
    const { fifo, ...now } = hashes(root);
    expect(fifo).toBe('special');
    expect(hashes(await restored(home, inc.id))).toEqual(now);
  });

  it('unreadable files and directories (dbs as uid 65534): each fails the backup, naming it, writing no backup; --skip-unreadable warns and keeps the rest', async () => {
    const o = { nobody: true };
    const { home, pool, root } = await setup(o);
    writeFileSync(join(root, 'ok.txt'), 'ok');
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(root, 'sub/fine.txt'), 'fine');
    writeFileSync(join(root, 'noread.txt'), 'secret');
    mkdirSync(join(root, 'closed'));
    writeFileSync(join(root, 'closed/in.txt'), 'in');
    mkdirSync(join(root, 'nox'));
    writeFileSync(join(root, 'nox/y.txt'), 'y');
    for (const p of ['ok.txt', 'sub', 'sub/fine.txt', 'noread.txt', 'closed', 'closed/in.txt', 'nox', 'nox/y.txt']) chownSync(join(root, p), NOBODY, NOBODY);
    expect((await run(home, ['plan', 'create', 'strict', '--source', `dir://${root}`, '--pool', 'p'], o)).code).toBe(0);
    expect((await run(home, ['plan', 'create', 'lax', '--source', `dir://${root}`, '--pool', 'p', '--skip-unreadable'], o)).code).toBe(0);

    // Every kind: a file that cannot be opened, a directory that cannot be listed, a
    // directory that can be listed but not entered (its entries cannot be stat'ed).
    const kinds: [string, number, RegExp][] = [
      ['noread.txt', 0o000, /cannot read file "noread\.txt" in .*: EACCES/],
      ['closed', 0o000, /cannot read directory "closed" in .*: EACCES/],
      ['nox', 0o600, /cannot read entry "nox\/y\.txt" in .*: EACCES/],
    ];
    for (const [p, mode, msg] of kinds) {
      chmodSync(join(root, p), mode);
      const r = await run(home, ['plan', 'run', 'strict'], o);
      expect(r.code, `${p}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).toMatch(/--skip-unreadable/);
      chmodSync(join(root, p), p === 'noread.txt' ? 0o644 : 0o755);
    }
    // Three failed tasks, each with the error; no backup: none in the catalog, no artifacts
    // or manifests in the pool.
    const tasks = json<{ status: string; errorCode: string; errorMessage: string }[]>(await run(home, ['--json', 'task', 'list'], o));
    expect(tasks.map((t) => [t.status, t.errorCode])).toEqual(kinds.map(() => ['failed', 'BACKUP_FAILED']));
    for (const [p] of kinds) expect(tasks.filter((t) => t.errorMessage.includes(`"${p === 'nox' ? 'nox/y.txt' : p}"`)), p).toHaveLength(1);
    expect(json<unknown[]>(await run(home, ['--json', 'backup', 'list'], o))).toEqual([]);
    const backups = join(pool, 'dbs/backups');
    expect(existsSync(backups) ? readdirSync(backups, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []).toEqual([]);

    for (const [p, mode] of kinds) chmodSync(join(root, p), mode);
    const b = await backupOf(home, 'lax', o);
    for (const facts of [b.facts, poolFacts(pool, b)]) expect(facts).toMatchObject({ files: 2, dirs: 2, unreadable: 3, changed: 0, vanished: 0 });
    expect(await warnings(home, 'lax', o)).toEqual([
      '"closed" cannot be read (EACCES): not in this backup',
      '"noread.txt" cannot be read (EACCES): not in this backup',
      '"nox/y.txt" cannot be read (EACCES): not in this backup',
    ]);
    const out = await restored(home, b.id, o);
    chmodSync(join(out, 'nox'), 0o755); // so that the comparison can enter it
    for (const [p] of kinds) chmodSync(join(root, p), 0o755);
    chmodSync(join(root, 'noread.txt'), 0o644);
    const want = hashes(root);
    // What could be read is there, byte for byte; what could not is absent: the directory that
    // cannot be listed too (not an empty one); the one that can be listed is kept, empty.
    expect(hashes(out)).toEqual({ nox: 'dir', 'ok.txt': want['ok.txt'], sub: 'dir', 'sub/fine.txt': want['sub/fine.txt'] });
    const ls = json<{ entries: { path: string }[] }>(await run(home, ['--json', 'backup', 'ls', b.id], o));
    expect(ls.entries.map((e) => e.path)).toEqual(['nox', 'ok.txt', 'sub', 'sub/fine.txt']);
  });

  it('--one-file-system keeps a mount point inside the tree but not what is mounted there', async () => {
    const { home, root } = await setup();
    writeFileSync(join(root, 'a.txt'), 'a');
    mkdirSync(join(root, 'mnt'));
    mkdirSync(join(root, 'plain'));
    writeFileSync(join(root, 'plain/p.txt'), 'p');
    const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(root, 'mnt')], { reject: false });
    expect(m.exitCode, `mount a tmpfs (needs root): ${String(m.stderr)}`).toBe(0);
    try {
      mkdirSync(join(root, 'mnt/deep'));
      writeFileSync(join(root, 'mnt/deep/inner.txt'), 'inner');
      writeFileSync(join(root, 'mnt/top.txt'), 'top');
      expect(statSync(join(root, 'mnt')).dev).not.toBe(statSync(root).dev);
      expect((await run(home, ['plan', 'create', 'ofs', '--source', `dir://${root}`, '--pool', 'p', '--one-file-system'])).code).toBe(0);
      expect((await run(home, ['plan', 'create', 'all', '--source', `dir://${root}`, '--pool', 'p'])).code).toBe(0);
      expect((await run(home, ['plan', 'create', 'inc', '--source', `dir://${root}`, '--pool', 'p', '--one-file-system', '--include', 'mnt', '--include', 'plain'])).code).toBe(0);
      const want = hashes(root);
      const paths = (b: Backup) => run(home, ['--json', 'backup', 'ls', b.id]).then((r) => json<{ entries: { path: string }[] }>(r).entries.map((e) => e.path));

      const ofs = await backupOf(home, 'ofs');
      expect(await paths(ofs)).toEqual(['a.txt', 'mnt', 'plain', 'plain/p.txt']);
      expect(ofs.facts).toMatchObject({ files: 2, dirs: 2, skipped: 0 });
      expect(hashes(await restored(home, ofs.id))).toEqual({ 'a.txt': want['a.txt'], mnt: 'dir', plain: 'dir', 'plain/p.txt': want['plain/p.txt'] });
      // Without it, the mounted tree is backed up.
      const all = await backupOf(home, 'all');
      expect(await paths(all)).toEqual(['a.txt', 'mnt', 'mnt/deep', 'mnt/deep/inner.txt', 'mnt/top.txt', 'plain', 'plain/p.txt']);
      expect(hashes(await restored(home, all.id))).toEqual(want);
      // With --include too: the mount point is kept, its contents are not.
      const inc = await backupOf(home, 'inc');
      expect(await paths(inc)).toEqual(['mnt', 'plain', 'plain/p.txt']);
    } finally {
      await execa('umount', [join(root, 'mnt')], { reject: false });
    }
  });
});
