// Scratch folders (src/core/scratch.ts): named by the owner's pid, swept once the owner is gone.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { makeScratch, sweepScratch } from '../../src/core/scratch.js';
import { tempDir } from '../support/testbed.js';

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const p = execa('true');
  await p;
  return p.pid!;
}

describe('scratch folders', () => {
  it('are private, named by kind and pid, under the context TMPDIR', async () => {
    const root = tempDir('scratch');
    const dir = await makeScratch({ env: { TMPDIR: root } }, 'restore');
    expect(dir.startsWith(join(root, `dbs-restore-p${process.pid}-`))).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('the sweep removes those of dead processes, with what they hold, and nothing else', async () => {
    const root = tempDir('scratch');
    const dead = await deadPid();
    const left = join(root, `dbs-task-p${dead}-AbC123`);
    mkdirSync(left);
    writeFileSync(join(left, 'mysql-client-1.cnf'), '[client]\npassword=x\n', { mode: 0o600 });
    const leftVerify = join(root, `dbs-verify-p${dead}-zz99ZZ`);
    mkdirSync(join(leftVerify, 'datadir'), { recursive: true });
    const mine = await makeScratch({ env: { TMPDIR: root } }, 'task');
    // Not ours to touch: other names, a non-numeric pid, a plain file.
    for (const other of [`dbs-other-p${dead}-AbC123`, `dbs-task-pabc-AbC123`, `dbs-task-p${dead}-short`, 'dbs-task-XyZ123']) mkdirSync(join(root, other));
    writeFileSync(join(root, 'unrelated.txt'), 'x');

    const removed = await sweepScratch({ env: { TMPDIR: root } });
    expect(removed.sort()).toEqual([left, leftVerify].sort());
    expect(existsSync(left)).toBe(false);
    expect(existsSync(leftVerify)).toBe(false);
    expect(existsSync(mine)).toBe(true);
    expect(readdirSync(root).sort()).toEqual([`dbs-other-p${dead}-AbC123`, `dbs-task-p${dead}-short`, `dbs-task-pabc-AbC123`, 'dbs-task-XyZ123', mine.slice(root.length + 1), 'unrelated.txt'].sort());
  });
});
