// Process locks in the catalog: one task per plan, one daemon per catalog. A lock is a lease:
// its holder renews it (heartbeat) every quarter of the lease length while it holds it.
//   - a holder on this host (same host name and PID namespace) is checked directly: when its
//     pid is dead (or now belongs to a process that started after the lock was taken), the
//     lock is stale at once;
//   - a holder on another host cannot be checked (a Kubernetes pod that was OOM-killed, a
//     machine that went down): its lock is stale once its lease has expired.
// A stale lock is taken over; the caller records an event.
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Context } from './context.js';
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

let bootMs: number | undefined;
/** Clock ticks per second of /proc/PID/stat's start time (USER_HZ: 100 on every Linux arch Node runs on). */
const USER_HZ = 100;

/** When process `pid` started (ms since the epoch, to about a second), or undefined off Linux. */
export function processStartMs(pid: number): number | undefined {
  try {
    bootMs ??= Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]) * 1000;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 of the line; fields here start at field 3
    return Number.isFinite(ticks) ? bootMs + (ticks * 1000) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True while `pid` is alive AND is the process that was there at `since` (ISO time): a pid
 * reused by a process that started later (a restarted container counts pids from 1 again)
 * is not the holder. Two seconds of slack cover the start time's rounding.
 */
export function holderAlive(pid: number, since: string | null): boolean {
  if (!pidAlive(pid)) return false;
  if (!since) return true;
  const started = processStartMs(pid);
  return started === undefined || started <= Date.parse(since) + 2000;
}

let ownPidNs: string | null | undefined;
/** This process's PID namespace ("pid:[4026531836]"), or null where there is none to read. */
export function pidNamespace(): string | null {
  if (ownPidNs === undefined) {
    try {
      ownPidNs = readlinkSync('/proc/self/ns/pid');
    } catch {
      ownPidNs = null;
    }
  }
  return ownPidNs;
}

export type LockState = 'alive-here' | 'dead-here' | 'live-lease' | 'expired-lease';

/** Whether a holder's pid can be checked from here: same host name and PID namespace. */
export function isLocalHolder(l: LockRecord): boolean {
  return l.host === hostname() && (l.pidNs === null || pidNamespace() === null || l.pidNs === pidNamespace());
}

/** When a lock's lease ends (rows without one: a default lease from their start). */
export function leaseEnd(l: LockRecord, defaultLeaseSeconds: number): number {
  return l.expiresAt ? Date.parse(l.expiresAt) : Date.parse(l.acquiredAt) + defaultLeaseSeconds * 1000;
}

export function lockState(l: LockRecord, now: Date, defaultLeaseSeconds: number): LockState {
  if (isLocalHolder(l)) return holderAlive(l.pid, l.acquiredAt) ? 'alive-here' : 'dead-here';
  return leaseEnd(l, defaultLeaseSeconds) > now.getTime() ? 'live-lease' : 'expired-lease';
}

export function isStale(l: LockRecord, now: Date, defaultLeaseSeconds: number): boolean {
  const s = lockState(l, now, defaultLeaseSeconds);
  return s === 'dead-here' || s === 'expired-lease';
}

/** "pid 123 on host pod-7 (lease expires 2026-..., in 42 s)" */
export function describeHolder(l: LockRecord, now: Date, defaultLeaseSeconds: number): string {
  const local = isLocalHolder(l);
  const end = leaseEnd(l, defaultLeaseSeconds);
  const left = Math.round((end - now.getTime()) / 1000);
  const lease = local ? '' : `, lease ${left > 0 ? `expires ${new Date(end).toISOString()} (in ${left} s)` : `expired ${new Date(end).toISOString()}`}`;
  return `${l.owner} (pid ${l.pid} on ${local ? 'this host' : 'host'} ${l.host}, since ${l.acquiredAt}${lease})`;
}

export interface HeldLock {
  name: string;
  record: LockRecord;
  takenOver?: LockRecord;
  /** Why the previous holder counted as dead (for the takeover event). */
  takeoverReason?: string;
  /** Aborted when the lock was lost: removed (`dbs plan unlock --force`) or taken over. */
  readonly lost: AbortSignal;
  release(): void;
}

export interface LeaseOptions {
  /** Lease length in seconds (settings.lockLease). */
  leaseSeconds: number;
}

export function leaseOf(ctx: Pick<Context, 'settings'>): LeaseOptions {
  return { leaseSeconds: ctx.settings.lockLease };
}

/**
 * Takes the lock `name` or throws LOCKED naming its holder. While held, an unref'd timer renews
 * the lease every leaseSeconds/4; when a renewal finds the lock gone or another's, `lost` aborts.
 */
export function acquire(catalog: Catalog, name: string, owner: string, what: string, lease: LeaseOptions): HeldLock {
  const ms = lease.leaseSeconds * 1000;
  const now = new Date(catalog.now());
  let reason: string | undefined;
  const r = catalog.acquireLock({ name, pid: process.pid, host: hostname(), owner, leaseMs: ms, pidNs: pidNamespace() }, (held) => {
    const s = lockState(held, now, lease.leaseSeconds);
    if (s === 'dead-here') reason = `its process ${held.pid} on this host is gone`;
    if (s === 'expired-lease') reason = `its lease from host ${held.host} (pid ${held.pid}) expired at ${new Date(leaseEnd(held, lease.leaseSeconds)).toISOString()}`;
    return s === 'dead-here' || s === 'expired-lease';
  });
  if (!r.ok) {
    const local = isLocalHolder(r.holder);
    throw new DbsError('LOCKED', `${what} is locked by ${describeHolder(r.holder, now, lease.leaseSeconds)}`, {
      hint: local
        ? 'wait for it to finish; a lock of a dead process is taken over automatically'
        : `wait for it to finish; if host ${r.holder.host} is gone, the lock is taken over once its lease expires (${lease.leaseSeconds} s after its last heartbeat), or remove it now with: dbs plan unlock PLAN --force`,
      details: { holder: { pid: r.holder.pid, host: r.holder.host, owner: r.holder.owner, acquiredAt: r.holder.acquiredAt, heartbeatAt: r.holder.heartbeatAt, expiresAt: r.holder.expiresAt } },
    });
  }
  const rec = r.lock;
  const controller = new AbortController();
  const timer = setInterval(() => {
    let ours: boolean;
    try {
      ours = catalog.renewLock(name, rec.pid, rec.host, rec.acquiredAt, ms);
    } catch {
      return; // catalog busy for longer than its busy timeout: the next beat tries again
    }
    if (!ours) {
      clearInterval(timer);
      controller.abort(new DbsError('LOCKED', `${what}: this process lost its lock (it was removed or taken over by another process)`, { hint: 'see: dbs events' }));
    }
  }, Math.max(250, ms / 4));
  timer.unref();
  return {
    name,
    record: rec,
    ...(r.takenOver ? { takenOver: r.takenOver, takeoverReason: reason } : {}),
    lost: controller.signal,
    release: () => {
      clearInterval(timer);
      try {
        catalog.releaseLock(name, rec.pid, rec.host, rec.acquiredAt);
      } catch {
        // a closed catalog: the lock is stale once this process is gone
      }
    },
  };
}

/** Marks the tasks the previous holder of a plan's lock left running as interrupted. */
export function interruptHolderTasks(catalog: Catalog, planId: string, holder: LockRecord, why: string): string[] {
  const ids: string[] = [];
  for (const status of ['running', 'queued'] as const) {
    for (const t of catalog.listTasks({ planId, status, limit: 1000 })) {
      if (t.pid !== holder.pid || t.host !== holder.host) continue;
      catalog.updateTask(t.id, { status: 'interrupted', endedAt: catalog.now(), errorCode: 'INTERRUPTED', errorMessage: `its process (pid ${t.pid} on ${t.host}) is gone: ${why}` });
      ids.push(t.id);
    }
  }
  return ids;
}

export interface PlanUnlockResult {
  plan: { id: string; name: string };
  /** The lock that was removed, if there was one. */
  removed: LockRecord | null;
  /** How its holder stood: dead here, expired lease, or a live lease removed with --force. */
  state: LockState | null;
  forced: boolean;
  interruptedTasks: string[];
}

/**
 * `dbs plan unlock PLAN [--force]`: removes a plan's lock. Refused (REFUSED) while the holder
 * runs on this host; refused for a holder on another host whose lease has not expired, unless
 * `force`. A lock of a dead holder is removed without --force. Every removal is an event.
 */
export async function runPlanUnlock(o: { plan: string; force?: boolean }, ctx: Context): Promise<PlanUnlockResult> {
  const catalog = ctx.catalog();
  const { findPlanOrThrow } = await import('./plans.js');
  const p = findPlanOrThrow(catalog, o.plan);
  const name = `plan:${p.id}`;
  const plan = { id: p.id, name: p.name };
  const lease = ctx.settings.lockLease;
  return catalog.transaction(() => {
    const held = catalog.getLock(name);
    const now = new Date(catalog.now());
    if (!held) return { plan, removed: null, state: null, forced: false, interruptedTasks: [] };
    const state = lockState(held, now, lease);
    const who = describeHolder(held, now, lease);
    if (state === 'alive-here') {
      throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} is locked by ${who}, which is running`, {
        hint: `wait for it to finish, or stop it (kill ${held.pid}); its lock goes with it`,
      });
    }
    if (state === 'live-lease' && !o.force) {
      throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} is locked by ${who}, whose lease is still being renewed or has not expired`, {
        hint: `make sure that process is gone, then: dbs plan unlock ${p.name} --force (or wait until the lease expires: it is taken over then)`,
      });
    }
    catalog.releaseLock(name, held.pid, held.host, held.acquiredAt);
    const why = state === 'live-lease' ? 'its lock was removed with dbs plan unlock --force' : state === 'expired-lease' ? 'its lease expired' : 'it died';
    const interruptedTasks = interruptHolderTasks(catalog, p.id, held, why);
    const forced = state === 'live-lease';
    catalog.recordEvent({
      resourceKind: 'plan',
      resourceId: p.id,
      type: forced ? 'lock.forced' : 'lock.removed',
      level: 'warning',
      message: `${forced ? 'forced removal of' : 'removed'} the lock held by ${who}`,
    });
    return { plan, removed: held, state, forced, interruptedTasks };
  });
}
