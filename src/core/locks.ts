// Process locks in the catalog: one task per plan, one daemon per catalog. A lock held by a
// dead process on this host is stale and is taken over (the caller records an event).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DbsError } from '../errors.js';
import type { Catalog, LockRecord } from '../store/catalog.js';

/** True when `pid` is a live, non-zombie process on this host. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // PID 1 in containers may not reap: a zombie has an empty cmdline / state Z.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform !== 'linux';
  }
}

export function isStale(l: LockRecord): boolean {
  return l.host === hostname() && !pidAlive(l.pid);
}

export interface HeldLock {
  name: string;
  takenOver?: LockRecord;
  release(): void;
}

export function acquire(catalog: Catalog, name: string, owner: string, what: string): HeldLock {
  const r = catalog.acquireLock({ name, pid: process.pid, host: hostname(), owner }, isStale);
  if (!r.ok) {
    throw new DbsError('LOCKED', `${what} is locked by ${r.holder.owner} (pid ${r.holder.pid} on ${r.holder.host}, since ${r.holder.acquiredAt})`, {
      hint: 'wait for it to finish; a lock of a dead process is taken over automatically',
    });
  }
  return { name, takenOver: r.takenOver, release: () => catalog.releaseLock(name, process.pid) };
}
