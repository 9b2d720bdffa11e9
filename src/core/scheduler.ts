// When plans are due, and the scheduled-run wrapper shared by `plan run --due` and the
// daemon: auto-pause on an offline source, resume when it answers, pause/resume commands.
import type { Context } from './context.js';
import { DbsError, isAbort } from '../errors.js';
import { getEngine } from '../engines/registry.js';
import type { BackupType } from '../engines/types.js';
import type { Catalog, PlanRecord } from '../store/catalog.js';
import { findPlanOrThrow, planEndpoint, planSelection, planView, type PlanView } from './plans.js';
import { runPlanOnce, type RunResult } from './runner.js';
import { nextRuns, planSchedule } from './schedule.js';
import { egressOf } from './gateway.js';

export const OFFLINE_REASON = 'source offline';

/** When the plan's current schedule was set; nothing before it is a missed run. */
export function scheduleSince(plan: PlanRecord): Date {
  return new Date(planSchedule(plan).since ?? plan.createdAt);
}

/** The newest scheduled (or --due) run of the plan. */
export function lastScheduledRun(catalog: Catalog, planId: string): Date | undefined {
  const t = catalog.listTasks({ planId, limit: 50 }).find((x) => x.trigger === 'schedule' || x.trigger === 'due');
  return t ? new Date(t.queuedAt) : undefined;
}

/**
 * The slot a plan is due for at `now`, if any: the first slot after its last scheduled run
 * (or after the schedule was set) that is not in the future. Several missed slots make one
 * due run, not one per slot.
 */
export function dueSlot(plan: PlanRecord, now: Date, lastRun: Date | undefined): Date | undefined {
  const schedule = planSchedule(plan);
  if (plan.status !== 'active' || schedule.kind === 'manual') return undefined;
  const since = scheduleSince(plan);
  const from = lastRun && lastRun > since ? lastRun : since;
  const next = nextRuns(schedule, from, 1)[0];
  return next && next <= now ? next : undefined;
}

export interface ScheduledRunOutcome {
  plan: string;
  status: 'succeeded' | 'failed' | 'skipped' | 'paused' | 'interrupted';
  result?: RunResult;
  error?: DbsError;
}

/**
 * Runs a plan for its schedule. A source that does not answer pauses the plan (reason
 * "source offline") instead of failing again at every slot; the daemon resumes it.
 */
export async function runScheduled(plan: PlanRecord, trigger: 'schedule' | 'due', ctx: Context, queuedAt?: Date): Promise<ScheduledRunOutcome> {
  const catalog = ctx.catalog();
  try {
    const result = await runPlanOnce(plan, { trigger, queuedAt }, ctx);
    return { plan: plan.name, status: 'succeeded', result };
  } catch (e) {
    if (isAbort(e) || ctx.signal.aborted) return { plan: plan.name, status: 'interrupted' };
    const err = e instanceof DbsError ? e : new DbsError('BACKUP_FAILED', String(e));
    if (err.code === 'LOCKED') {
      catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'run.skipped', level: 'warning', message: `skipped: ${err.message}` });
      return { plan: plan.name, status: 'skipped', error: err };
    }
    if (err.code === 'SOURCE_UNREACHABLE') {
      catalog.transaction(() => {
        catalog.updatePlan(plan.id, { status: 'paused', pauseReason: OFFLINE_REASON });
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'plan.auto-paused', level: 'error', message: `paused: ${err.message}` });
      });
      return { plan: plan.name, status: 'paused', error: err };
    }
    return { plan: plan.name, status: 'failed', error: err };
  }
}

/** Probes the source of a plan paused as offline; resumes it when it answers. */
export async function probeOfflinePlan(plan: PlanRecord, ctx: Context): Promise<boolean> {
  if (plan.status !== 'paused' || plan.pauseReason !== OFFLINE_REASON) return false;
  const catalog = ctx.catalog();
  try {
    const engine = await getEngine(plan.sourceKind);
    await engine.probe(planEndpoint(ctx, plan), planSelection(plan), { signal: ctx.signal, type: plan.backupType as BackupType, ...egressOf(ctx) });
  } catch {
    return false;
  }
  catalog.transaction(() => {
    catalog.updatePlan(plan.id, { status: 'active', pauseReason: '' });
    catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'plan.auto-resumed', level: 'info', message: 'the source answers again; resumed' });
  });
  return true;
}

export interface DueResult {
  ran: ScheduledRunOutcome[];
  notDue: number;
}

/** `dbs plan run --due`: runs every plan that is due since its last run, one at a time. */
export async function runDue(_o: object, ctx: Context): Promise<DueResult> {
  const catalog = ctx.catalog();
  // Like the daemon at start: tasks of dead processes become interrupted and their uploads
  // are aborted, so cron/timer setups without a daemon leave no lying status behind.
  const { recoverInterrupted } = await import('./daemon.js');
  await recoverInterrupted(ctx, (event) => ctx.report({ type: 'recovery', event }));
  const now = ctx.clock();
  const ran: ScheduledRunOutcome[] = [];
  let notDue = 0;
  for (const plan of catalog.listPlans()) {
    if (ctx.signal.aborted) break;
    if (plan.status === 'paused' && plan.pauseReason === OFFLINE_REASON) await probeOfflinePlan(plan, ctx);
    const fresh = catalog.getPlan(plan.id)!;
    if (!dueSlot(fresh, now, lastScheduledRun(catalog, fresh.id))) {
      notDue++;
      continue;
    }
    ran.push(await runScheduled(fresh, 'due', ctx, now));
  }
  return { ran, notDue };
}

export function runPlanPause(o: { plan: string }, ctx: Context): PlanView {
  const catalog = ctx.catalog();
  const p = findPlanOrThrow(catalog, o.plan);
  if (planSchedule(p).kind === 'manual') {
    throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} is manual: there is no schedule to pause`, { hint: 'give it a schedule with dbs plan update --every/--cron, or just do not run it' });
  }
  if (p.status === 'paused') throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} is already paused${p.pauseReason ? ` (${p.pauseReason})` : ''}`, { hint: 'resume it with: dbs plan resume' });
  const u = catalog.transaction(() => {
    const x = catalog.updatePlan(p.id, { status: 'paused', pauseReason: 'paused by user' });
    catalog.recordEvent({ resourceKind: 'plan', resourceId: p.id, type: 'plan.paused', level: 'info', message: 'paused by user' });
    return x;
  });
  return planView(catalog, u, ctx.clock());
}

export function runPlanResume(o: { plan: string }, ctx: Context): PlanView {
  const catalog = ctx.catalog();
  const p = findPlanOrThrow(catalog, o.plan);
  if (planSchedule(p).kind === 'manual') {
    throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} is manual: there is no schedule to resume`, { hint: 'run it with: dbs plan run' });
  }
  if (p.status !== 'paused') throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} is not paused`, { hint: 'see its state with: dbs plan show' });
  const u = catalog.transaction(() => {
    // Resuming starts the schedule afresh: slots missed while paused do not run.
    const schedule = { ...planSchedule(p), since: ctx.clock().toISOString() };
    const x = catalog.updatePlan(p.id, { status: 'active', pauseReason: '', schedule });
    catalog.recordEvent({ resourceKind: 'plan', resourceId: p.id, type: 'plan.resumed', level: 'info', message: 'resumed by user' });
    return x;
  });
  return planView(catalog, u, ctx.clock());
}
