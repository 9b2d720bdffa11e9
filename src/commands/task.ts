// `dbs task ...`
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import type { CommandRunner } from '../cli.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { addListOptions, pageFooter, pageLimit, type ListFlags } from './lists.js';
import { examplesText } from './help.js';
import { throughputText, usageFields } from './monitor-view.js';

export function registerTask(program: Command, run: CommandRunner): void {
  const task = program.command('task').description('executions of plans: status, times, sizes, errors');
  addListOptions(task.command('list').description('list tasks, newest first (a page; --json streams every match)'), 'tasks', ['queued', 'running', 'succeeded', 'failed', 'interrupted'])
    .addOption(suggest(new Option('--group-by <key>', 'counts and sizes per plan, pool, type, day, status or trigger instead of the tasks'), ['plan', 'pool', 'type', 'day', 'status', 'trigger']))
    .addHelpText('after', examplesText('dbs task list', 'dbs task list --plan shop-nightly --status failed --since 24h', 'dbs task list --group-by status --since 7d', 'dbs task list --limit 100 --json'))
    .action((o: ListFlags & { groupBy?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runTaskPage, runTaskGroups } = await import('../core/inventory.js');
        if (o.groupBy !== undefined) {
          const g = runTaskGroups({ ...o, groupBy: o.groupBy }, ctx);
          ctx.out.result(g, (x) =>
            x.groups.length === 0
              ? 'no tasks'
              : table(
                  [x.groupBy.toUpperCase(), 'TASKS', 'RAW', 'STORED', 'NEWEST', 'OLDEST'],
                  x.groups.map((r) => [r.key, r.count, fmtBytes(r.rawBytes), fmtBytes(r.storedBytes), fmtTime(r.newest), fmtTime(r.oldest)]),
                ),
          );
          return;
        }
        const limit = pageLimit(ctx, o);
        const page = runTaskPage({ ...o, limit }, ctx);
        let last: string | undefined;
        let shown = 0;
        await ctx.out.resultList(page.rows, (x) => {
          shown = x.length;
          last = x.at(-1)?.id;
          return x.length === 0
            ? 'no tasks'
            : table(
                ['TASK', 'PLAN', 'STATUS', 'RESULT', 'STARTED', 'ENDED', 'DURATION', 'TRIGGER', 'STORED', 'RAW'],
                x.map((t) => [t.id, t.planName, t.status, t.result, fmtTime(t.startedAt), fmtTime(t.endedAt), fmtDuration(t.durationMs), t.trigger, fmtBytes(t.storedBytes), fmtBytes(t.rawBytes)]),
              );
        });
        pageFooter(ctx, shown, page.more(), last);
      }),
    );
  task
    .command('show')
    .description('show one task with its error and the tail of its tool log')
    .addHelpText('after', examplesText('dbs task show task-3f9a1c2b7d', 'dbs task show task-3f9a1c2b7d --json'))
    .argument('<task>', 'task id')
    .action((id: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runTaskShow } = await import('../core/tasks.js');
        const t = runTaskShow({ task: id }, ctx);
        ctx.out.result(t, (x) =>
          [
            fields([
              ['Task', x.id],
              ['Plan', `${x.planName} (${x.planId})`],
              ['Status', x.status],
              ['Trigger', x.trigger],
              ['Queued', fmtTime(x.queuedAt)],
              ['Started', fmtTime(x.startedAt)],
              ['Ended', fmtTime(x.endedAt)],
              ['Duration', fmtDuration(x.durationMs)],
              ['Raw', fmtBytes(x.rawBytes)],
              ['Stored', fmtBytes(x.storedBytes)],
              ['Ratio', x.ratio ?? '-'],
              ['Rate', x.storedRate === null ? '-' : `${fmtBytes(x.storedRate)}/s stored`],
              ...usageFields(x, { in: 'from the source', out: 'to the pool' }),
              ['Throughput', throughputText(x.throughput)],
              ['Backup', x.backupId],
              ['Error', x.errorMessage ? `${x.errorMessage} [${x.errorCode}]` : ''],
            ]),
            ...(x.stderrTail ? ['', 'Tool log (tail):', x.stderrTail] : []),
          ].join('\n'),
        );
      }),
    );
}
