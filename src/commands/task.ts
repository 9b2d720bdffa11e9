// `dbs task ...`
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { numberOption } from './options.js';

export function registerTask(program: Command, run: CommandRunner): void {
  const task = program.command('task').description('executions of plans: status, times, sizes, errors');
  task
    .command('list')
    .description('list tasks, newest first')
    .option('--plan <plan>', 'only tasks of this plan')
    .addOption(numberOption('--limit <n>', 'at most N tasks', { min: 1, max: 1_000_000, example: '--limit 20' }, 50))
    .action((o: { plan?: string; limit: number }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runTaskList } = await import('../core/tasks.js');
        const ts = runTaskList({ plan: o.plan, limit: o.limit }, ctx);
        ctx.out.result(ts, (x) =>
          x.length === 0
            ? 'no tasks'
            : table(
                ['TASK', 'PLAN', 'STATUS', 'TRIGGER', 'STARTED', 'DURATION', 'RAW', 'STORED', 'BACKUP'],
                x.map((t) => [t.id, t.planName, t.status, t.trigger, fmtTime(t.startedAt), fmtDuration(t.durationMs), fmtBytes(t.rawBytes), fmtBytes(t.storedBytes), t.backupId ?? '-']),
              ),
        );
      }),
    );
  task
    .command('show')
    .description('show one task with its error and the tail of its tool log')
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
              ['Backup', x.backupId],
              ['Error', x.errorMessage ? `${x.errorMessage} [${x.errorCode}]` : ''],
            ]),
            ...(x.stderrTail ? ['', 'Tool log (tail):', x.stderrTail] : []),
          ].join('\n'),
        );
      }),
    );
}
