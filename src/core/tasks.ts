// Task queries and the `plan run` use case.
import type { Context } from './context.js';
import { runThroughput, type StageRates } from './samples.js';
import { DbsError } from '../errors.js';
import type { TaskRecord } from '../store/catalog.js';
import { findPlanOrThrow } from './plans.js';
import { runPlanOnce, type RunResult } from './runner.js';

export interface TaskView extends TaskRecord {
  durationMs: number | null;
  ratio: number | null;
  /** Stored bytes per second of the task's run (what went to the pool; the gateway caps it). */
  storedRate: number | null;
}

export function taskView(t: TaskRecord): TaskView {
  return {
    ...t,
    durationMs: t.startedAt && t.endedAt ? new Date(t.endedAt).getTime() - new Date(t.startedAt).getTime() : null,
    ratio: t.rawBytes && t.storedBytes !== null ? Math.round((t.storedBytes / t.rawBytes) * 1000) / 1000 : null,
    storedRate: t.startedAt && t.endedAt && t.storedBytes !== null && t.endedAt > t.startedAt ? Math.round(t.storedBytes / ((new Date(t.endedAt).getTime() - new Date(t.startedAt).getTime()) / 1000)) : null,
  };
}

export function runTaskList(o: { plan?: string; limit?: number }, ctx: Context): TaskView[] {
  const catalog = ctx.catalog();
  const planId = o.plan ? findPlanOrThrow(catalog, o.plan).id : undefined;
  return catalog.listTasks({ planId, limit: o.limit ?? 50 }).map(taskView);
}

/**
 * `task show`: the task, with its throughput per stage of the data path (bytes/s averaged over
 * its samples: source, compress, encrypt, upload; null without samples).
 */
export function runTaskShow(o: { task: string }, ctx: Context): TaskView & { throughput: StageRates | null } {
  const catalog = ctx.catalog();
  const t = catalog.getTask(o.task);
  if (!t) throw new DbsError('TASK_NOT_FOUND', `task ${JSON.stringify(o.task)} not found`, { hint: 'see the tasks with: dbs task list' });
  return { ...taskView(t), throughput: runThroughput(catalog.listSamples([t.id])) };
}

export async function runPlanRun(o: { plan: string; onProgress?: (n: number) => void }, ctx: Context): Promise<RunResult> {
  const plan = findPlanOrThrow(ctx.catalog(), o.plan);
  return runPlanOnce(plan, { trigger: 'manual', onProgress: o.onProgress }, ctx);
}
