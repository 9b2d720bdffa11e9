// `dbs task ...`
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import type { CommandRunner } from '../cli.js';
import { fields, fmtBytes, fmtDuration, fmtTime } from '../output/format.js';
import { addListOptions, type ListFlags } from './lists.js';
import { taskList } from './short.js';
import { examplesText } from './help.js';
import { throughputText, usageFields } from './monitor-view.js';

export function registerTask(program: Command, run: CommandRunner): void {
  const task = program.command('task').description('executions of plans: status, times, sizes, errors');
  addListOptions(task.command('list').description('list tasks, newest first (a page; --json streams every match)'), 'tasks', ['queued', 'running', 'succeeded', 'failed', 'interrupted'])
    .addOption(suggest(new Option('--group-by <key>', 'counts and sizes per plan, pool, type, day, status or trigger instead of the tasks'), ['plan', 'pool', 'type', 'day', 'status', 'trigger']))
    .addHelpText('after', examplesText('dbs task list', 'dbs task list --plan shop-nightly --status failed --since 24h', 'dbs task list --group-by status --since 7d', 'dbs task list --limit 100 --json'))
    .action((o: ListFlags & { groupBy?: string }, cmd: Command) => run(cmd, (ctx) => taskList(o, ctx)));

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
