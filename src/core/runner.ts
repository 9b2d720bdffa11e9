// Runs a plan once: plan lock -> task (running) -> engine artifacts through the pipeline
// into the pool -> manifest (last, create-if-absent) -> catalog row -> retention.
// On failure: partial artifacts and multipart uploads removed, the task records why.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Context } from './context.js';
import { DbsError, describeError, isAbort } from '../errors.js';
import { descriptorOrThrow } from '../engines/registry.js';
import type { BackupType } from '../engines/types.js';
import type { Compression } from '../pipeline/stages.js';
import { redactText, type Secret } from '../secret.js';
import { POOL_MARKER_KEY, backupPrefix, manifestKey } from '../storage/layout.js';
import type { PoolDriver } from '../storage/types.js';
import type { BackupRecord, PlanRecord, PoolRecord, TaskRecord } from '../store/catalog.js';
import { planStandby } from './copies.js';
import { newId } from '../store/catalog.js';
import { VERSION } from '../version.js';
import { PoolSink, artifactReaders } from './artifacts.js';
import { makeScratch } from './scratch.js';
import { basePlanOf, chainOf, chainParent, openChain } from './chains.js';
import { acquire, interruptHolderTasks, leaseOf } from './locks.js';
import { withTaskTag } from '../pipeline/child.js';
import { MANIFEST_FORMAT, newBackupId, type Manifest } from './manifest.js';
import { typeSpecOf } from './applicable.js';
import { planEndpoint, planRecipients, planSelection } from './plans.js';
import { openPool } from './pools.js';
import { sourceEgress } from './gateway.js';
import { sweepStaleUploads } from './recovery.js';
import type { CopyResult } from './copies.js';
import { startSampler } from './samples.js';

const STDERR_TAIL_LINES = 30;

export interface RunOptions {
  trigger: 'manual' | 'schedule' | 'due';
  /** When the run was queued (the daemon's queue); defaults to its start. */
  queuedAt?: Date;
  onProgress?: (rawBytes: number) => void;
}

export interface RunResult {
  task: TaskRecord;
  backup?: BackupRecord;
  pruned: string[];
  /** Copies to replica pools made (or failed) by this run. */
  copies?: CopyResult[];
}

/**
 * Removes everything under a backup's prefix and its incomplete uploads. Best effort, and
 * bounded by `signal` (a pool that hangs must not hold the task, and its lock, any longer).
 */
async function cleanupBackup(driver: PoolDriver, planId: string, backupId: string, signal?: AbortSignal): Promise<void> {
  const prefix = backupPrefix(planId, backupId);
  try {
    await driver.abortIncomplete(prefix, { signal });
    const keys: string[] = [];
    for await (const o of driver.list(prefix, { signal })) keys.push(o.key);
    // The manifest goes last so a half-deleted backup never looks complete.
    keys.sort((a, b) => Number(a.endsWith('/manifest.json')) - Number(b.endsWith('/manifest.json')));
    for (const k of keys) await driver.delete(k, { signal });
  } catch {
    // The task already failed; leftovers are found by `dbs pool check` / the daemon sweep.
  }
}

/**
 * Fails fast, before any dump starts, when the pool does not answer or lost its marker, and
 * records the pool's status either way.
 */
async function checkPoolReachable(ctx: Context, pool: PoolRecord, driver: PoolDriver): Promise<void> {
  const catalog = ctx.catalog();
  try {
    const marker = await driver.stat(POOL_MARKER_KEY, { signal: ctx.signal });
    if (!marker) {
      throw new DbsError('POOL_CHECK_FAILED', `pool ${pool.name} (${driver.location}) has lost its marker ${POOL_MARKER_KEY}`, {
        hint: 'is the right disk mounted / the right bucket and prefix bound? see: dbs pool check',
      });
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    const err = e instanceof DbsError ? e : new DbsError('POOL_UNREACHABLE', describeError(e), { cause: e });
    if (pool.status !== 'offline') {
      catalog.setPoolStatus(pool.id, 'offline', err.message, null);
      catalog.recordEvent({ resourceKind: 'pool', resourceId: pool.id, type: 'pool.offline', level: 'error', message: err.message });
    }
    throw err;
  }
  if (pool.status === 'offline') {
    catalog.setPoolStatus(pool.id, 'online', '', null);
    catalog.recordEvent({ resourceKind: 'pool', resourceId: pool.id, type: 'pool.online', level: 'info', message: 'the pool answers again' });
  }
}

/** An error that says the pool is offline (not answering, refusing our credentials, or without its marker). */
function poolOffline(e: unknown): boolean {
  return e instanceof DbsError && (e.code === 'POOL_UNREACHABLE' || e.code === 'POOL_AUTH' || e.code === 'POOL_CHECK_FAILED');
}

export async function runPlanOnce(plan: PlanRecord, o: RunOptions, outer: Context): Promise<RunResult> {
  const catalog = outer.catalog();
  const lock = acquire(catalog, `plan:${plan.id}`, `task of plan ${plan.name}`, `plan ${JSON.stringify(plan.name)}`, leaseOf(outer));
  let ran = false;
  let started: Promise<void> | undefined;
  try {
    if (lock.takenOver) {
      const why = lock.takeoverReason ?? 'its holder is gone';
      const left = interruptHolderTasks(catalog, plan.id, lock.takenOver, why);
      catalog.recordEvent({
        resourceKind: 'plan',
        resourceId: plan.id,
        type: 'lock.takeover',
        level: 'warning',
        message: `took over the lock of ${lock.takenOver.owner} (pid ${lock.takenOver.pid} on ${lock.takenOver.host}): ${why}${left.length ? `; its task ${left.join(', ')} marked interrupted` : ''}`,
      });
      // What the dead holder started may still run (a dump waiting on a lock): end it.
      const { reapOrphans } = await import('./orphans.js');
      for (const x of reapOrphans()) {
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'orphan.killed', level: 'warning', message: `ended ${x.command} (pid ${x.pid}), left running by dead dbs process ${x.parentPid}` });
      }
    }
    // A lost lock (dbs plan unlock --force, a takeover) stops the run: two runs of one plan must not overlap.
    const ctx: Context = { ...outer, signal: AbortSignal.any([outer.signal, lock.lost]) };
    const taskId = newId('task');
    ran = true;
    // healthchecks-style start pings go out while the task runs (never awaited by it).
    started = catalog.alertsForPlan(plan.id).length ? import('./alerts.js').then((m) => m.pingStart(outer, plan)) : undefined;
    // Every program the task starts carries DBS_TASK=<task id> (see pipeline/child.ts).
    return await withTaskTag(taskId, () => runLocked(plan, o, ctx, taskId, lock.lost));
  } finally {
    lock.release();
    // Alerts after the lock is released: a slow target never holds the plan. They never fail the task.
    await started;
    if (ran && catalog.alertsForPlan(plan.id).length) {
      const { afterTask } = await import('./alerts.js');
      for (const t of await afterTask(outer, plan)) {
        if (t.to === 'still-firing') continue;
        outer.report({ type: 'alert.transition', alert: t.alert, plan: t.plan, to: t.to, delivered: t.deliveries.filter((d) => d.ok).length, failed: t.deliveries.filter((d) => !d.ok).map((d) => d.target) });
      }
    }
  }
}

async function runLocked(plan: PlanRecord, o: RunOptions, ctx: Context, taskId: string, lockLost: AbortSignal): Promise<RunResult> {
  const catalog = ctx.catalog();
  const stderrTail: string[] = [];
  const started = ctx.clock();
  const task = catalog.insertTask({
    id: taskId,
    planId: plan.id,
    planName: plan.name,
    trigger: o.trigger,
    status: 'running',
    queuedAt: (o.queuedAt ?? started).toISOString(),
    startedAt: started.toISOString(),
    pid: process.pid,
    host: hostname(),
    poolId: plan.poolId,
    backupType: plan.backupType,
    // What was asked, as it was asked: the plan can change later, its history must not.
    request: { trigger: o.trigger, sourceKind: plan.sourceKind, source: plan.source.url, backupType: plan.backupType, selection: plan.selection, poolId: plan.poolId, compression: plan.compression },
  });
  const backupId = newBackupId(started, randomBytes(2).toString('hex'));
  let driver: PoolDriver | undefined;
  let tmpDir: string | undefined;
  // The source's password is read inside the task: a referenced variable or file that is
  // missing fails this task (SECRET_UNAVAILABLE, naming it) before anything is written.
  let password: Secret | undefined;
  const redact = (s: string) => redactText(s, [password]);
  // Samples of CPU, RSS and bytes in/out while the task runs (core/samples.ts).
  const sampler = startSampler(catalog, taskId, ctx.settings.sampleSeconds);
  const onProgress = (raw: number) => {
    sampler.bytesIn(raw);
    o.onProgress?.(raw);
  };
  try {
    const endpoint = planEndpoint(ctx, plan);
    password = endpoint.password;
    const primary = catalog.getPool(plan.poolId);
    if (!primary) throw new DbsError('POOL_NOT_FOUND', `the pool ${plan.poolId} of plan ${plan.name} is not bound`, { hint: 'bind it again or update the plan' });
    const standbyId = planStandby(plan);
    const standby = standbyId ? catalog.getPool(standbyId) : undefined;
    let pool: PoolRecord = primary;
    const egress = sourceEgress(catalog);
    const engineCtx = {
      signal: ctx.signal,
      tmpDir: '',
      ...(egress ? { egress } : {}),
      log: (line: string) => {
        stderrTail.push(redact(line));
        if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      },
      warn: (message: string) => {
        stderrTail.push(redact(`warning: ${message}`));
        if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'backup.warning', level: 'warning', message: redact(message) });
      },
    };
    // The plan's pool offline (its probe fails, or a write fails before any byte is committed):
    // the backup goes to the standby pool, with an event that says why.
    const failover = async (e: unknown): Promise<PoolDriver> => {
      const reason = describeError(e);
      if (!standby) throw e;
      await driver?.close();
      driver = undefined;
      pool = standby;
      const d = await openPool(ctx, standby);
      driver = d;
      try {
        await checkPoolReachable(ctx, standby, d);
      } catch (e2) {
        if (ctx.signal.aborted) throw e2;
        throw new DbsError('POOL_UNREACHABLE', `plan ${plan.name}: its pool ${primary.name} and its standby pool ${standby.name} are both offline (${reason}; ${describeError(e2)})`, {
          hint: `check them with: dbs pool check ${primary.name}; dbs pool check ${standby.name}`,
          cause: e2,
        });
      }
      const message = `pool ${primary.name} is offline (${reason}); backup ${backupId} goes to the standby pool ${standby.name}`;
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'pool.failover', level: 'warning', message });
      ctx.report({ type: 'pool.failover', plan: plan.name, from: primary.name, to: standby.name, reason });
      engineCtx.log(message);
      return d;
    };
    driver = await openPool(ctx, pool);
    try {
      await checkPoolReachable(ctx, pool, driver);
    } catch (e) {
      if (!standby || ctx.signal.aborted || !poolOffline(e)) throw e;
      driver = await failover(e);
    }
    if (pool.id === primary.id && standby && catalog.listBackups({ planId: plan.id })[0]?.poolId === standby.id) {
      const message = `pool ${primary.name} answers again; backups go to it again (not to the standby pool ${standby.name})`;
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'pool.failback', level: 'info', message });
      ctx.report({ type: 'pool.failback', plan: plan.name, to: primary.name, from: standby.name });
    }
    const desc = descriptorOrThrow(plan.sourceKind);
    const engine = await desc.load();
    const selection = planSelection(plan);
    const recipients = planRecipients(plan);
    // The catalog holds secrets (source passwords, S3 keys): never into a pool in plaintext.
    if (desc.catalogSource && recipients.length === 0) {
      throw new DbsError('REFUSED', `plan ${plan.name} backs up the dbs catalog, which holds secrets: it would store them unencrypted`, {
        hint: `add recipients: dbs plan update ${plan.name} --encrypt-to age1... (or --recipients-file F)`,
      });
    }
    tmpDir = await makeScratch(ctx, 'task');
    engineCtx.tmpDir = tmpDir;
    // Increments build on the newest backup of their chain; with --auto-full a missing or
    // broken chain makes a full backup (the type that starts the chain) instead. Chains never
    // span pools: the parent must be in the pool this backup goes to.
    const planType = plan.backupType as BackupType;
    const chain = typeSpecOf(plan.sourceKind, planType).spec.chain;
    const increment = chain?.role === 'increment' ? chain : undefined;
    const autoFull = Boolean(plan.options.autoFull);
    let type = planType;
    let parent: BackupRecord | undefined;
    let sink!: PoolSink;
    let outcome;
    for (;;) {
      const d: PoolDriver = driver!;
      sink = new PoolSink({
        driver: d,
        planId: plan.id,
        backupId,
        compression: plan.compression as Compression,
        compressionLevel: ctx.settings.compressionLevel,
        recipients,
        ...(ctx.settings.execution ? { execution: ctx.settings.execution } : {}),
        signal: ctx.signal,
        onProgress,
        onStoredBytes: (n) => sampler.addBytesOut(n),
        onStageBytes: (stage, n) => sampler.addStageBytes(stage, n),
      });
      // Uploads that tasks of dead processes left in this pool (this plan's too: we hold its lock).
      await sweepStaleUploads(ctx, d, pool, () => undefined, plan.id).catch(() => undefined);
      type = planType;
      parent = increment ? chainParent(catalog, plan, pool.id) : undefined;
      if (increment && !parent) {
        const elsewhere = pool.id !== primary.id ? chainParent(catalog, plan, primary.id) : undefined;
        if (!autoFull) {
          if (elsewhere) {
            throw new DbsError('BACKUP_FAILED', `plan ${plan.name}: its chain is in pool ${primary.name}, which is offline; chains never span pools and the standby pool ${pool.name} has no backup to build an incremental on`, {
              hint: 'set --auto-full to start a new full backup on the standby, or bring the pool back',
            });
          }
          throw new DbsError('BACKUP_FAILED', `plan ${plan.name} has no base backup to build an incremental on`, {
            hint: `run the base plan first (dbs plan run ${basePlanOf(catalog, plan)?.name ?? 'BASE'}), or set --auto-full`,
          });
        }
        const reason = elsewhere ? `its chain is in pool ${primary.name}, which is offline, and chains never span pools` : 'it has no base backup to build an incremental on';
        engineCtx.log(`${reason}: taking a full backup in pool ${pool.name} (--auto-full)`);
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'backup.auto-full', level: elsewhere ? 'warning' : 'info', message: `${reason}; backup ${backupId} is a full backup in pool ${pool.name} (--auto-full)` });
        ctx.report({ type: 'backup.auto-full', plan: plan.name, pool: pool.name, reason });
        type = increment.full;
      }
      // The parent's artifacts are readable by the engine (a dir index), from this pool's copy.
      const parentLink = increment && parent ? await openChain(ctx, desc, [parent], undefined, undefined, pool.id) : undefined;
      const request = (t: BackupType) => ({
        source: endpoint,
        type: t,
        selection,
        sink,
        ...(increment && t === planType && parent && parentLink ? { parent: { id: parent.id, facts: parentLink.links[0]!.facts, artifacts: parentLink.links[0]!.artifacts } } : {}),
      });
      try {
        try {
          outcome = await engine.backup(request(type), engineCtx);
        } catch (e) {
          // A broken chain (another server, an LSN gap) is refused before any data is written.
          if (!(increment && autoFull && type === planType && e instanceof DbsError && e.code === 'REFUSED' && sink.stored.length === 0)) throw e;
          engineCtx.log(`the chain is broken (${e.message}): taking a full backup (--auto-full)`);
          await cleanupBackup(d, plan.id, backupId);
          type = increment.full;
          parent = undefined;
          outcome = await engine.backup(request(type), engineCtx);
        } finally {
          await parentLink?.close();
        }
        break;
      } catch (e) {
        // The pool failed before any artifact was committed: the same backup on the standby.
        if (!(standby && pool.id === primary.id && sink.stored.length === 0 && !ctx.signal.aborted && poolOffline(e))) throw e;
        await cleanupBackup(d, plan.id, backupId, AbortSignal.timeout(ctx.settings.s3Timeout * 1000));
        await failover(e);
      }
    }
    const parentId = increment && type === planType && parent ? parent.id : null;
    if (sink.stored.length === 0) throw new DbsError('BACKUP_FAILED', `the ${plan.sourceKind} engine produced no artifact`, { hint: 'see the task log' });
    // --verify-prepare: prove the backup restorable (with its chain) before it counts.
    let verified: Record<string, unknown> | undefined;
    if (plan.options.verifyPrepare && engine.verifyPrepare) {
      const prior = parentId ? chainOf(catalog, catalog.getBackup(parentId)!) : [];
      const opened = await openChain(ctx, desc, prior, undefined, undefined, pool.id);
      try {
        const self = { backupId, type, facts: outcome.facts, artifacts: artifactReaders(driver!, sink.stored, ctx.signal) };
        const v = await engine.verifyPrepare({ type, selection, facts: outcome.facts, artifacts: self.artifacts, chain: [...opened.links, self] }, engineCtx);
        verified = { ok: true, at: ctx.clock().toISOString(), ...v.facts };
      } finally {
        await opened.close();
      }
    }
    const ended = ctx.clock();
    const rawBytes = sink.stored.reduce((n, a) => n + a.rawBytes, 0);
    const storedBytes = sink.stored.reduce((n, a) => n + a.storedBytes, 0);
    sampler.bytesIn(rawBytes);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      dbsVersion: VERSION,
      backupId,
      plan: { id: plan.id, name: plan.name },
      source: { kind: plan.sourceKind, url: endpoint.url },
      backupType: type,
      selection: plan.selection,
      parentId,
      tool: { name: outcome.toolName, version: outcome.toolVersion },
      server: { version: outcome.serverVersion },
      facts: verified ? { ...outcome.facts, verifyPrepare: verified } : outcome.facts,
      artifacts: sink.stored.map((a) => ({ ...a, encryption: a.encryption ?? 'none' })),
      encryption: recipients.length ? { format: 'age', recipients } : 'none',
      pipeline: sink.summary(),
      rawBytes,
      storedBytes,
      startedAt: started.toISOString(),
      endedAt: ended.toISOString(),
    };
    ctx.signal.throwIfAborted();
    await driver!.put(manifestKey(plan.id, backupId), `${JSON.stringify(manifest, null, 2)}\n`, { ifAbsent: true, signal: ctx.signal });
    const result = catalog.transaction(() => {
      const backup = catalog.insertBackup({
        id: backupId,
        planId: plan.id,
        planName: plan.name,
        taskId: task.id,
        poolId: pool.id,
        status: 'available',
        sourceKind: plan.sourceKind,
        backupType: type,
        parentId,
        rawBytes,
        storedBytes,
        startedAt: manifest.startedAt,
        endedAt: manifest.endedAt,
        manifest,
      });
      const t = catalog.updateTask(task.id, {
        status: 'succeeded',
        endedAt: manifest.endedAt,
        rawBytes,
        storedBytes,
        backupId,
        stderrTail: stderrTail.join('\n'),
      });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'backup.succeeded', level: 'info', message: `backup ${backupId}` });
      return { task: t, backup };
    });
    // Replica pools get the new backup (and every earlier copy that failed), each checked
    // against its sha256; a failed copy is a failed copy row and an event, never a failed task.
    const { replicatePlan } = await import('./copies.js');
    // The backup is committed: nothing here may fail the task (an abort leaves a failed copy).
    const copies = await replicatePlan(plan, ctx, backupId).catch((e) => {
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'copy.failed', level: 'error', message: describeError(e) });
      return [];
    });
    for (const c of copies) ctx.report({ type: 'copy.done', backup: c.backup, pool: c.pool, status: c.status, ...(c.error ? { error: c.error } : {}) });
    const { applyRetention } = await import('./prune.js');
    const pruned = await applyRetention(plan, ctx).catch((e) => {
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'retention.failed', level: 'warning', message: describeError(e) });
      return [] as string[];
    });
    // Copies and retention are part of the task: its summary covers them.
    const finalTask = catalog.updateTask(task.id, sampler.stop());
    return { ...result, task: finalTask, pruned, copies };
  } catch (e) {
    const lost = lockLost.aborted && lockLost.reason instanceof DbsError ? lockLost.reason : undefined;
    const interrupted = !lost && (isAbort(e) || ctx.signal.aborted);
    // An unreachable pool gets one request timeout for the cleanup; other failures three.
    const unreachable = e instanceof DbsError && e.code === 'POOL_UNREACHABLE';
    if (driver) await cleanupBackup(driver, plan.id, backupId, AbortSignal.timeout(ctx.settings.s3Timeout * 1000 * (unreachable ? 1 : 3)));
    const err = lost
      ? lost
      : e instanceof DbsError
        ? e
        : interrupted
          ? new DbsError('INTERRUPTED', `the task of plan ${plan.name} was interrupted`)
          : new DbsError('BACKUP_FAILED', `backup of plan ${plan.name} failed: ${redact(describeError(e))}`, { cause: e });
    catalog.updateTask(task.id, {
      status: interrupted ? 'interrupted' : 'failed',
      endedAt: ctx.clock().toISOString(),
      errorCode: interrupted ? 'INTERRUPTED' : err.code,
      errorMessage: redact(err.message),
      stderrTail: stderrTail.join('\n'),
    });
    catalog.recordEvent({
      resourceKind: 'plan',
      resourceId: plan.id,
      type: interrupted ? 'task.interrupted' : 'backup.failed',
      level: 'error',
      message: redact(err.message),
    });
    if (interrupted) throw e;
    throw err;
  } finally {
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    await driver?.close();
    // The summary goes on the task whatever its end (never failing it).
    try {
      catalog.updateTask(task.id, sampler.stop());
    } catch {
      // the catalog is gone or closed: the task row says what it can
    }
  }
}
