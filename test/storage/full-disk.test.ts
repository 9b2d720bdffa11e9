// watchFullDisk (pipeline/programs.ts): the guard that kills a program which stopped on a full
// pool disk instead of exiting (pzstd did, once in a few hundred CI runs). A real full disk: a
// 1 MiB tmpfs (the test machines run as root; CI does too). Needs no server.
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchFullDisk } from '../../src/pipeline/programs.js';
import { tempDir } from '../support/testbed.js';

describe('watchFullDisk', () => {
  const mnt = tempDir('fulldisk');
  beforeAll(async () => {
    const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { reject: false });
    expect(m.exitCode, `mounting a small tmpfs failed (this test needs root): ${m.stderr}`).toBe(0);
  });
  afterAll(async () => {
    await execa('umount', [mnt], { reject: false });
  });

  /** Writes into `path` until the disk refuses (ENOSPC), like a compressor writing the pool file. */
  function fill(path: string): number {
    const fd = openSync(path, 'w');
    let n = 0;
    try {
      for (;;) n += writeSync(fd, Buffer.alloc(64 * 1024, 1));
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    return n;
  }

  it('fires once when the disk is full and the file stopped growing', async () => {
    const file = join(mnt, 'out.zst');
    expect(fill(file)).toBeGreaterThan(512 * 1024);
    let fired = 0;
    const w = watchFullDisk(file, () => fired++, { intervalMs: 50, stuckChecks: 3 });
    const t0 = Date.now();
    while (!fired && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    w.stop();
    expect(fired).toBe(1);
    expect(w.full).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('never fires while the disk has room, however long the file does not grow (a dump waiting on a lock)', async () => {
    const file = join(tempDir('roomy'), 'out.zst');
    closeSync(openSync(file, 'w'));
    let fired = 0;
    const w = watchFullDisk(file, () => fired++, { intervalMs: 30, stuckChecks: 3 });
    await new Promise((r) => setTimeout(r, 600));
    w.stop();
    expect(fired).toBe(0);
    expect(w.full).toBe(false);
  });

  it('never fires for a file that is gone (committed or aborted meanwhile)', async () => {
    let fired = 0;
    const w = watchFullDisk(join(mnt, 'no-such-file'), () => fired++, { intervalMs: 30, stuckChecks: 2 });
    await new Promise((r) => setTimeout(r, 300));
    w.stop();
    expect(fired).toBe(0);
  });
});
