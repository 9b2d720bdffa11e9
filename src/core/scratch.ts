// Scratch folders of tasks, restores and verifies, under the temp dir. A process removes its
// own when it ends; one that is killed cannot, and its folder may hold a client option file
// with a password or a whole snapshot. So each name carries the owner's pid
// (dbs-task-p1234-Xy7aQ2), and recovery (`dbs daemon` start, `dbs plan run --due`) removes
// the folders of processes that are gone.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from './context.js';
import { pidAlive } from './locks.js';

export type ScratchKind = 'task' | 'restore' | 'verify';

const NAME = /^dbs-(?:task|restore|verify)-p(\d+)-[A-Za-z0-9]{6}$/;

/** The temp dir as the context sees it (tests give each run its own TMPDIR). */
function root(ctx: Pick<Context, 'env'>): string {
  return ctx.env.TMPDIR || tmpdir();
}

/** A new scratch folder of this process (mode 0700). */
export async function makeScratch(ctx: Pick<Context, 'env'>, kind: ScratchKind): Promise<string> {
  return mkdtemp(join(root(ctx), `dbs-${kind}-p${process.pid}-`));
}

/** Removes the scratch folders of dead processes; returns the paths removed. */
export async function sweepScratch(ctx: Pick<Context, 'env'>): Promise<string[]> {
  const dir = root(ctx);
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = NAME.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    const path = join(dir, name);
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}
