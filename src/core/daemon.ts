// `dbs daemon`: schedules every active plan with node-cron, picks up changes made by other
// dbs processes, runs at most N tasks at once (never two of one plan), applies retention,
// pauses plans whose source is offline and resumes them when it answers, and shuts down
// gracefully on SIGTERM/SIGINT.
import { hostname } from 'node:os';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import type { PlanRecord, TaskRecord } from '../store/catalog.js';
import { acquire, holderAlive, isStale, leaseOf } from './locks.js';
import { ensurePoolOnline } from './pool-manifest.js';
import { openPool, probePool } from './pools.js';
import { settleDeadTask, sweepStaleUploads, type RecoveryEvent } from './recovery.js';
import { sweepScratch } from './scratch.js';
import { dueSlot, lastScheduledRun, OFFLINE_REASON, probeOfflinePlan, runScheduled } from './scheduler.js';
import { nextRuns, planSchedule } from './schedule.js';

/** A line of the daemon's log: the same shape as recovery's events. */
export type DaemonEvent = RecoveryEvent;

export interface DaemonOptions {
  concurrency: number;
  /** Seconds running tasks may take to finish after SIGTERM before they are aborted. */
  graceSeconds: number;
  /** How often the catalog is re-read for plan changes (ms). */
  reloadMs?: number;
  /** How often offline sources and every pool are probed (ms). */
  probeMs?: number;
  /** How long one pool probe may take before the pool counts as offline (ms; default 10 s). */
  probeTimeoutMs?: number;
  /** ADDR:PORT to serve GET /metrics on (Prometheus text format), while the daemon runs. */
  metricsListen?: string;
  log: (e: DaemonEvent) => void;
}

export interface DaemonResult {
  ran: number;
  interrupted: number;
}

interface Entry {
  key: string;
  timer?: NodeJS.Timeout;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * Marks tasks of dead processes interrupted (on this host: their pid is gone; on another host:
 * they no longer hold their plan's lock, or its lease expired), ends the programs dead dbs
 * processes left running, aborts their uploads and removes their scratch folders.
 */
export async function recoverInterrupted(ctx: Context, log: (e: DaemonEvent) => void): Promise<number> {
  const catalog = ctx.catalog();
  const host = hostname();
  const now = new Date(catalog.now());
  const lease = ctx.settings.lockLease;
  const lockOf = (planId: string) => catalog.getLock(`plan:${planId}`);
  let n = 0;
  const dead: TaskRecord[] = [];
  for (const status of ['running', 'queued'] as const) {
    for (const t of catalog.listTasks({ status, limit: 100_000 })) {
      let why: string;
      if (t.host === host) {
        if (t.pid !== null && holderAlive(t.pid, t.startedAt ?? t.queuedAt)) continue;
        why = `the process running it (pid ${t.pid}) died`;
      } else {
        const l = lockOf(t.planId);
        if (l && l.pid === t.pid && l.host === t.host && !isStale(l, now, lease)) continue;
        why = `the process running it (pid ${t.pid} on host ${t.host}) is gone: ${l && l.pid === t.pid && l.host === t.host ? 'its lease expired' : 'it no longer holds the plan lock'}`;
      }
      catalog.updateTask(t.id, { status: 'interrupted', endedAt: catalog.now(), errorCode: 'INTERRUPTED', errorMessage: why });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: t.planId, type: 'task.interrupted', level: 'warning', message: `task ${t.id}: ${why}` });
      log({ event: 'task.recovered', level: 'warning', message: `task ${t.id} of ${t.planName} was left running: ${why}; marked interrupted`, plan: t.planName, task: t.id });
      if (status === 'running') dead.push(t);
      n++;
    }
  }
  for (const r of catalog.listRestores({ status: 'running' })) {
    if (r.host === host && r.pid !== null && !holderAlive(r.pid, r.startedAt)) catalog.updateRestore(r.id, { status: 'interrupted', endedAt: catalog.now(), errorCode: 'INTERRUPTED', errorMessage: `the process running it (pid ${r.pid}) died` });
  }
  // Programs (dump tools, compressors) that outlived the dbs process that started them.
  const { reapOrphans } = await import('./orphans.js');
  for (const o of reapOrphans()) {
    log({ event: 'orphan.killed', level: 'warning', message: `ended ${o.command} (pid ${o.pid}${o.task ? `, task ${o.task}` : ''}), left running by dead dbs process ${o.parentPid}`, pid: o.pid, ...(o.task ? { task: o.task } : {}) });
    const t = o.task ? catalog.getTask(o.task) : undefined;
    if (t) catalog.recordEvent({ resourceKind: 'plan', resourceId: t.planId, type: 'orphan.killed', level: 'warning', message: `ended ${o.command} (pid ${o.pid}) of task ${t.id}, left running by dead dbs process ${o.parentPid}` });
  }
  // Per pool: adopt or remove what dead tasks left, then abort stale uploads.
  for (const pool of catalog.listPools()) {
    const plans = new Set(catalog.listPlans({ poolId: pool.id }).map((p) => p.id));
    if (plans.size === 0) continue;
    try {
      const driver = await openPool(ctx, pool);
      try {
        for (const t of dead.filter((x) => plans.has(x.planId))) await settleDeadTask(ctx, driver, t, log);
        await sweepStaleUploads(ctx, driver, pool, log);
      } finally {
        await driver.close();
      }
    } catch (e) {
      log({ event: 'pool.unreachable', level: 'warning', message: `cannot clean up pool ${pool.name}: ${(e as Error).message}` });
    }
  }
  // Scratch folders of dead processes (option files with passwords, snapshots).
  for (const path of await sweepScratch(ctx)) log({ event: 'scratch.removed', level: 'info', message: `removed ${path}, left by a process that died` });
  return n;
}

export async function runDaemon(o: DaemonOptions, ctx: Context): Promise<DaemonResult> {
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) {
    throw new DbsError('INVALID_ARGUMENT', `--concurrency ${o.concurrency} must be a whole number of at least 1`, { hint: 'e.g. --concurrency 2' });
  }
  if (!(o.graceSeconds >= 0)) throw new DbsError('INVALID_ARGUMENT', `--grace ${o.graceSeconds} must be a number of seconds`, { hint: 'e.g. --grace 300' });
  const metricsModule = o.metricsListen === undefined ? undefined : await import('./metrics.js');
  const listen = metricsModule?.parseListen(o.metricsListen!);
  const catalog = ctx.catalog();
  const lock = acquire(catalog, 'daemon', 'dbs daemon', `the catalog ${catalog.path}`, leaseOf(ctx));
  const log = o.log;
  // A daemon whose lock another process took over (its lease ran out) stops like on SIGTERM.
  const stop = AbortSignal.any([ctx.signal, lock.lost]);
  if (lock.takenOver) log({ event: 'lock.takeover', level: 'warning', message: `took over the daemon lock of pid ${lock.takenOver.pid} on ${lock.takenOver.host}: ${lock.takeoverReason ?? 'its holder is gone'}` });
  log({ event: 'daemon.started', level: 'info', message: `dbs daemon started (pid ${process.pid}, concurrency ${o.concurrency})`, pid: process.pid });

  const entries = new Map<string, Entry>();
  const queue: { planId: string; queuedAt: Date }[] = [];
  const running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  let ran = 0;
  let interrupted = 0;
  let stopping = false;

  const enqueue = (planId: string, why: string) => {
    if (stopping) return;
    const plan = catalog.getPlan(planId);
    if (!plan || plan.status !== 'active') return;
    if (running.has(planId) || queue.some((q) => q.planId === planId)) {
      const msg = `a run of ${plan.name} came due (${why}) while the previous one ${running.has(planId) ? 'still runs' : 'still waits'}; skipped`;
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'run.skipped', level: 'warning', message: msg });
      log({ event: 'run.skipped', level: 'warning', message: msg, plan: plan.name });
      return;
    }
    queue.push({ planId, queuedAt: ctx.clock() });
    log({ event: 'run.queued', level: 'info', message: `queued ${plan.name} (${why})`, plan: plan.name, waiting: queue.length });
    pump();
  };

  const pump = () => {
    while (!stopping && running.size < o.concurrency && queue.length) {
      const { planId, queuedAt } = queue.shift()!;
      const plan = catalog.getPlan(planId);
      if (!plan || plan.status !== 'active') continue;
      const controller = new AbortController();
      // Alert transitions after a task go to the daemon's log like everything else it does.
      const report: Context['report'] = (e) =>
        e.type === 'alert.transition'
          ? log({ event: e.to === 'firing' ? 'alert.firing' : 'alert.resolved', level: e.to === 'firing' ? 'error' : 'info', message: `alert ${e.alert} ${e.to === 'firing' ? 'fires' : 'resolved'} for plan ${e.plan}: notified ${e.delivered} target(s)${e.failed.length ? `; not delivered to ${e.failed.join(', ')}` : ''}`, plan: e.plan, alert: e.alert })
          : ctx.report(e);
      const taskCtx: Context = { ...ctx, signal: controller.signal, report };
      log({ event: 'task.started', level: 'info', message: `running ${plan.name}`, plan: plan.name, waitedMs: ctx.clock().getTime() - queuedAt.getTime() });
      const done = runScheduled(plan, 'schedule', taskCtx, queuedAt).then((r) => {
        ran++;
        if (r.status === 'succeeded') {
          const b = r.result!.backup!;
          log({ event: 'task.succeeded', level: 'info', message: `backup ${b.id} of ${plan.name}: ${b.rawBytes} bytes raw, ${b.storedBytes} stored`, plan: plan.name, task: r.result!.task.id, backup: b.id });
          for (const id of r.result!.pruned) log({ event: 'retention.deleted', level: 'info', message: `retention deleted ${id}`, plan: plan.name, backup: id });
        } else if (r.status === 'interrupted') {
          interrupted++;
          log({ event: 'task.interrupted', level: 'warning', message: `the run of ${plan.name} was interrupted`, plan: plan.name });
        } else if (r.status === 'paused') {
          log({ event: 'plan.auto-paused', level: 'error', message: `${plan.name} paused: ${r.error?.message}`, plan: plan.name });
        } else {
          log({ event: `task.${r.status}`, level: r.status === 'skipped' ? 'warning' : 'error', message: `${plan.name}: ${r.error?.message}`, plan: plan.name, code: r.error?.code });
        }
      });
      running.set(planId, {
        controller,
        done: done.finally(() => {
          running.delete(planId);
          pump();
        }),
      });
    }
  };

  // Timers are armed from nextRuns() (node-cron's matcher with cron-daemon DST rules), so
  // the daemon runs exactly the slots that `plan show` and `plan run --due` compute.
  const arm = (plan: PlanRecord) => {
    const s = planSchedule(plan);
    const key = JSON.stringify([plan.status, plan.schedule]);
    if (entries.get(plan.id)?.key === key) return;
    disarm(plan.id);
    if (plan.status !== 'active' || s.kind === 'manual') return;
    const entry: Entry = { key };
    entries.set(plan.id, entry);
    const schedule = (after: Date) => {
      const next = nextRuns(s, after, 1)[0];
      if (!next || stopping) return;
      const wait = next.getTime() - ctx.clock().getTime();
      entry.timer = setTimeout(
        () => {
          if (entries.get(plan.id) !== entry) return;
          if (ctx.clock() >= next) {
            enqueue(plan.id, s.kind === 'once' ? 'once' : 'schedule');
            schedule(next);
          } else schedule(after); // woke early (long waits are capped)
        },
        Math.max(0, Math.min(wait, 2 ** 31 - 1)),
      );
    };
    schedule(ctx.clock());
  };

  const disarm = (planId: string) => {
    const e = entries.get(planId);
    if (!e) return;
    if (e.timer) clearTimeout(e.timer);
    entries.delete(planId);
  };

  const invalidSeen = new Map<string, string>();
  // What each plan was last armed from (status and raw schedule): a reload reads only these
  // and decodes just the plans that changed, so 1,000 plans cost little memory churn.
  const seen = new Map<string, string>();
  const reload = (catchUp: boolean) => {
    const keys = catalog.planScheduleKeys();
    const ids = new Set(keys.map((k) => k.id));
    for (const id of [...entries.keys()]) if (!ids.has(id)) disarm(id);
    for (const id of [...seen.keys()]) if (!ids.has(id)) seen.delete(id);
    const plans: PlanRecord[] = [];
    for (const k of keys) {
      if (!catchUp && seen.get(k.id) === k.key) continue;
      const p = catalog.getPlan(k.id);
      if (!p) continue;
      seen.set(k.id, k.key);
      plans.push(p);
    }
    for (const p of plans) {
      try {
        arm(p);
        // A run missed while no daemon was up (or while the plan was being changed) runs
        // once now, not once per missed slot.
        if (catchUp && dueSlot(p, ctx.clock(), lastScheduledRun(catalog, p.id))) enqueue(p.id, 'missed while the daemon was down');
      } catch (e) {
        // A plan whose stored schedule does not decode is skipped (and said so), not the daemon.
        if (!(e instanceof DbsError) || e.code !== 'INVALID_RECORD') throw e;
        disarm(p.id);
        if (invalidSeen.get(p.id) !== e.message) log({ event: 'plan.invalid', level: 'error', message: `${e.message}; the plan is not scheduled`, plan: p.name });
        invalidSeen.set(p.id, e.message);
      }
    }
  };

  const probeLoop = async () => {
    while (!stopping) {
      for (const p of catalog.listPlans()) {
        if (stopping) break;
        if (p.status === 'paused' && p.pauseReason === OFFLINE_REASON && (await probeOfflinePlan(p, ctx))) {
          log({ event: 'plan.auto-resumed', level: 'info', message: `the source of ${p.name} answers again; resumed`, plan: p.name });
        }
      }
      // Every pool, one at a time, each probe bounded by probeTimeoutMs: an offline pool that
      // answers again is online (event); an online one that stops answering is offline (event).
      // What dbs_pool_online and dbs_pool_last_check_timestamp_seconds report.
      for (const pool of catalog.listPools()) {
        if (stopping) break;
        const timeoutMs = o.probeTimeoutMs ?? 10_000;
        const signal = AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]);
        let latency: number | null = null;
        let failure: string | undefined;
        try {
          const d = await openPool({ ...ctx, signal }, pool);
          try {
            // The marker first: nothing is written into an unmounted mount point or a wrong prefix.
            await ensurePoolOnline(d, pool.name, signal);
            latency = (await probePool(d, signal)).latencyMs;
          } finally {
            await d.close();
          }
        } catch (e) {
          if (stop.aborted) break;
          failure = signal.aborted ? `the probe did not finish within ${timeoutMs / 1000} s` : (e as Error).message;
        }
        const before = catalog.getPool(pool.id)?.status ?? pool.status;
        if (failure === undefined) {
          catalog.setPoolStatus(pool.id, 'online', '', latency);
          if (before === 'offline') {
            catalog.recordEvent({ resourceKind: 'pool', resourceId: pool.id, type: 'pool.online', level: 'info', message: 'the pool answers again' });
            log({ event: 'pool.online', level: 'info', message: `pool ${pool.name} answers again` });
          }
        } else {
          catalog.setPoolStatus(pool.id, 'offline', failure, null);
          if (before !== 'offline') {
            catalog.recordEvent({ resourceKind: 'pool', resourceId: pool.id, type: 'pool.offline', level: 'error', message: `the daemon's probe failed: ${failure}` });
            log({ event: 'pool.offline', level: 'error', message: `pool ${pool.name} does not answer: ${failure}` });
          }
        }
      }
      // Copies to replica pools that failed: retried here as well as by the plan's next run.
      if (!stopping) {
        try {
          const { retryFailedCopies } = await import('./copies.js');
          for (const c of await retryFailedCopies(ctx, (planId) => running.has(planId))) {
            log({ event: `copy.${c.status === 'ready' ? 'retried' : 'failed'}`, level: c.status === 'ready' ? 'info' : 'warning', message: c.status === 'ready' ? `copied backup ${c.backup} to pool ${c.pool}` : `copy of backup ${c.backup} to pool ${c.pool} failed again: ${c.error}`, backup: c.backup });
          }
        } catch (e) {
          if (!stop.aborted) log({ event: 'copy.failed', level: 'warning', message: `retrying failed copies: ${(e as Error).message}` });
        }
        // Copies whose delete did not finish (their pool did not answer): deleted again.
        try {
          const { retryPendingDeletes } = await import('./backups.js');
          for (const r of await retryPendingDeletes(ctx, { busy: (planId) => running.has(planId) })) {
            if (r.pending === undefined) log({ event: r.gone ? 'backup.deleted' : 'copy.deleted', level: 'info', message: `deleted the copy of backup ${r.backup} in pool ${r.pool}${r.gone ? ' (its last copy: the backup is gone)' : ''}`, backup: r.backup });
            else log({ event: 'copy.delete-failed', level: 'warning', message: `the copy of backup ${r.backup} in pool ${r.pool} is still not deleted: ${r.pending}`, backup: r.backup });
          }
        } catch (e) {
          if (!stop.aborted) log({ event: 'copy.delete-failed', level: 'warning', message: `retrying pending deletes: ${(e as Error).message}` });
        }
      }
      // Alerts over time (missed runs, no success for a while): evaluated for idle plans.
      if (!stopping) {
        try {
          const { evaluateAll } = await import('./alerts.js');
          for (const t of await evaluateAll(ctx, (planId) => running.has(planId))) {
            if (t.to === 'still-firing') continue;
            const failed = t.deliveries.filter((d) => !d.ok).map((d) => d.target);
            log({ event: t.to === 'firing' ? 'alert.firing' : 'alert.resolved', level: t.to === 'firing' ? 'error' : 'info', message: `alert ${t.alert} ${t.to === 'firing' ? 'fires' : 'resolved'} for plan ${t.plan}${failed.length ? `; not delivered to ${failed.join(', ')}` : ''}`, plan: t.plan, alert: t.alert });
          }
        } catch (e) {
          if (!stop.aborted) log({ event: 'alert.failed', level: 'warning', message: `evaluating alerts: ${(e as Error).message}` });
        }
      }
      await sleep(o.probeMs ?? 60_000, stop);
    }
  };

  let metricsServer: import('./metrics.js').MetricsServer | undefined;
  try {
    if (metricsModule && listen) {
      metricsServer = await metricsModule.serveMetrics(metricsModule.catalogMetrics(catalog, { processMetrics: true }), listen);
      const at = `${metricsServer.address.includes(':') ? `[${metricsServer.address}]` : metricsServer.address}:${metricsServer.port}`;
      log({ event: 'metrics.listening', level: 'info', message: `serving Prometheus metrics on http://${at}/metrics`, address: metricsServer.address, port: metricsServer.port });
    }
    await recoverInterrupted(ctx, log);
    reload(true);
    const probing = probeLoop();
    while (!stop.aborted) {
      await sleep(o.reloadMs ?? 5_000, stop);
      if (!stop.aborted) reload(false);
    }
    if (lock.lost.aborted && !ctx.signal.aborted) log({ event: 'daemon.lock-lost', level: 'error', message: 'another process took over the daemon lock (this daemon missed its heartbeats for a whole lease); stopping' });
    // Graceful shutdown: no new runs; running tasks get --grace seconds, then are aborted.
    stopping = true;
    for (const id of [...entries.keys()]) disarm(id);
    const dropped = queue.splice(0);
    log({ event: 'daemon.stopping', level: 'info', message: `stopping: ${running.size} task(s) running, ${dropped.length} queued run(s) dropped; grace ${o.graceSeconds}s` });
    const all = Promise.all([...running.values()].map((r) => r.done));
    const finished = await Promise.race([all.then(() => true), sleep(o.graceSeconds * 1000).then(() => false)]);
    if (!finished) {
      log({ event: 'daemon.aborting', level: 'warning', message: `grace period over; aborting ${running.size} task(s)` });
      for (const r of running.values()) r.controller.abort(Object.assign(new Error('daemon shutdown'), { name: 'AbortError' }));
      await all;
    }
    await probing;
    log({ event: 'daemon.stopped', level: 'info', message: `dbs daemon stopped (${ran} run(s), ${interrupted} interrupted)` });
    return { ran, interrupted };
  } finally {
    stopping = true;
    for (const id of [...entries.keys()]) disarm(id);
    await metricsServer?.close();
    lock.release();
  }
}
