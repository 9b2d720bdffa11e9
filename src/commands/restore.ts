// `dbs restore ...`: the record of restores (running one is `dbs backup restore`).
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';

export function registerRestore(program: Command, run: CommandRunner): void {
  const restore = program.command('restore').description('the record of restores (start one with: dbs backup restore ID --to URL)');
  restore
    .command('list')
    .description('list restores, newest first')
    .option('--backup <id>', 'only restores of this backup')
    .action((o: { backup?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runRestoreList } = await import('../core/restore.js');
        const rs = runRestoreList({ backup: o.backup }, ctx);
        ctx.out.result(rs, (x) =>
          x.length === 0 ? 'no restores' : table(['RESTORE', 'BACKUP', 'STATUS', 'TARGET', 'STARTED', 'ENDED', 'SIZE'], x.map((r) => [r.id, r.backupId, r.status, r.target, fmtTime(r.startedAt), fmtTime(r.endedAt), fmtBytes(r.bytes)])),
        );
      }),
    );
  restore
    .command('show')
    .description('show one restore')
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
            ['Error', x.errorMessage ? `${x.errorMessage} [${x.errorCode}]` : ''],
          ]),
        );
      }),
    );
}
