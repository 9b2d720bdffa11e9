// `dbs restore ...`: the record of restores (running one is `dbs backup restore`).
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import type { CommandRunner } from '../cli.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { addListOptions, pageLimit, type ListFlags } from './lists.js';
import { printPage } from './short.js';
import { examplesText } from './help.js';
import { usageFields } from './monitor-view.js';

export function registerRestore(program: Command, run: CommandRunner): void {
  const restore = program.command('restore').description('the record of restores (start one with: dbs backup restore ID --to URL)');
  addListOptions(restore.command('list').description('list restores, newest first (a page; --json streams every match)'), 'restores', ['running', 'succeeded', 'failed', 'interrupted'])
    .option('--backup <id>', 'only restores of this backup')
    .addOption(suggest(new Option('--group-by <key>', "counts and bytes restored per plan, pool, type (the restored backup's), day or status instead of the restores"), ['plan', 'pool', 'type', 'day', 'status']))
    .addHelpText('after', examplesText('dbs restore list', 'dbs restore list --backup b-20261121T023000Z-3fa9', 'dbs restore list --status failed --since 7d', 'dbs restore list --group-by plan'))
    .action((o: ListFlags & { backup?: string; groupBy?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runRestorePage, runRestoreGroups } = await import('../core/inventory.js');
        if (o.groupBy !== undefined) {
          const g = runRestoreGroups({ ...o, groupBy: o.groupBy }, ctx);
          ctx.out.result(g, (x) =>
            x.groups.length === 0
              ? 'no restores'
              : table(
                  [x.groupBy.toUpperCase(), 'RESTORES', 'SIZE', 'NEWEST', 'OLDEST'],
                  x.groups.map((r) => [r.key, r.count, fmtBytes(r.bytes), fmtTime(r.newest), fmtTime(r.oldest)]),
                ),
          );
          return;
        }
        await printPage(ctx, runRestorePage({ ...o, limit: pageLimit(ctx, o) }, ctx), {
          empty: 'no restores',
          head: ['RESTORE', 'BACKUP', 'STATUS', 'STARTED', 'DURATION', 'SIZE', 'TARGET', 'ENDED'],
          cells: (r) => [r.id, r.backupId, r.status, fmtTime(r.startedAt), fmtDuration(r.durationMs), fmtBytes(r.bytes), r.target, fmtTime(r.endedAt)],
          id: (r) => r.id,
        });
      }),
    );
  restore
    .command('show')
    .description('show one restore')
    .addHelpText('after', examplesText('dbs restore show restore-3f9a1c2b7d'))
    .argument('<restore>', 'restore id')
    .action((id: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runRestoreShow } = await import('../core/restore.js');
        const r = runRestoreShow({ restore: id }, ctx);
        ctx.out.result(r, (x) =>
          fields([
            ['Restore', x.id],
            ['Backup', x.backupId],
            ['Status', x.status],
            ['Target', x.target],
            ['Options', JSON.stringify(x.options)],
            ['Started', fmtTime(x.startedAt)],
            ['Ended', fmtTime(x.endedAt)],
            ['Duration', fmtDuration(x.endedAt ? new Date(x.endedAt).getTime() - new Date(x.startedAt).getTime() : null)],
            ['Size', fmtBytes(x.bytes)],
            ...usageFields(x, { in: 'from the pool', out: 'to the target' }),
            ['Error', x.errorMessage ? `${x.errorMessage} [${x.errorCode}]` : ''],
          ]),
        );
      }),
    );
}
