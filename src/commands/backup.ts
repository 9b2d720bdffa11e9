// `dbs backup ...`
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { DbsError } from '../errors.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { addListOptions, pageFooter, pageLimit, type ListFlags } from './lists.js';

const BACKUP_STATUS_NAMES = ['available', 'deleting', 'missing'];

type Opts = Record<string, string | boolean | undefined>;

function startPort(o: Opts): number | undefined {
  if (!o.start) {
    if (o.port !== undefined) throw new DbsError('USAGE', '--port needs --start', { hint: 'add --start to launch a server on the restored datadir' });
    return undefined;
  }
  const n = Number(o.port);
  if (o.port === undefined || !Number.isInteger(n) || n < 1 || n > 65535) throw new DbsError('INVALID_ARGUMENT', `--start needs --port N (1-65535)${o.port !== undefined ? `, got ${JSON.stringify(o.port)}` : ''}`, { hint: 'e.g. --start --port 3307' });
  return n;
}

export function registerBackup(program: Command, run: CommandRunner): void {
  const backup = program.command('backup').description('list, inspect, verify, restore and delete backups').addHelpText(
    'after',
    `
Examples:
  dbs backup list --plan shop-nightly
  dbs backup verify b-20261121T023000Z-3fa9
  DB_PW=... dbs backup restore b-20261121T023000Z-3fa9 --to mysql://root@db2:3306 --password-env DB_PW \\
      --database shop:shop_restored`,
  );

  addListOptions(backup.command('list').description('list backups, newest first (a page; --json streams every match)'), 'backups', BACKUP_STATUS_NAMES)
    .option('--group-by <key>', 'counts and sizes per plan, pool, type or day instead of the backups')
    .action((o: ListFlags & { groupBy?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupPage, runBackupGroups } = await import('../core/inventory.js');
        if (o.groupBy !== undefined) {
          const g = runBackupGroups({ ...o, groupBy: o.groupBy }, ctx);
          ctx.out.result(g, (x) =>
            x.groups.length === 0
              ? 'no backups'
              : table(
                  [x.groupBy.toUpperCase(), 'BACKUPS', 'RAW', 'STORED', 'NEWEST', 'OLDEST'],
                  x.groups.map((r) => [r.key, r.count, fmtBytes(r.rawBytes), fmtBytes(r.storedBytes), fmtTime(r.newest), fmtTime(r.oldest)]),
                ),
          );
          return;
        }
        const limit = pageLimit(ctx, o);
        const page = runBackupPage({ ...o, limit }, ctx);
        let last: string | undefined;
        let shown = 0;
        await ctx.out.resultList(page.rows, (x) => {
          shown = x.length;
          last = x.at(-1)?.id;
          return x.length === 0
            ? 'no backups'
            : table(
                ['BACKUP', 'PLAN', 'ENDED', 'STORED', 'STATUS', 'TYPE', 'POOL', 'RAW', 'RATIO'],
                x.map((b) => [b.id, b.planName, fmtTime(b.endedAt), fmtBytes(b.storedBytes), b.status, `${b.sourceKind} ${b.backupType}`, b.poolName, fmtBytes(b.rawBytes), b.ratio ?? '-']),
              );
        });
        pageFooter(ctx, shown, page.more(), last);
      }),
    );

  backup
    .command('show')
    .description("show a backup's manifest")
    .argument('<backup>', 'backup id')
    .action((id: string, _o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupShow } = await import('../core/backups.js');
        const m = runBackupShow({ backup: id }, ctx);
        ctx.out.result(m, (x) =>
          [
            fields([
              ['Backup', x.backupId],
              ['Plan', `${x.plan.name} (${x.plan.id})`],
              ['Status', x.status],
              ['Pool', x.pool],
              ['Source', `${x.source.kind} ${x.source.url}`],
              ['Type', x.backupType],
              ['Selection', JSON.stringify(x.selection)],
              ['Tool', [x.tool.name, x.tool.version].filter(Boolean).join(' ')],
              ['Server', x.server.version],
              ['Started', fmtTime(x.startedAt)],
              ['Ended', fmtTime(x.endedAt)],
              ['Duration', fmtDuration(new Date(x.endedAt).getTime() - new Date(x.startedAt).getTime())],
              ['Raw', fmtBytes(x.rawBytes)],
              ['Stored', fmtBytes(x.storedBytes)],
              ['Pipeline', x.pipeline ? `${x.pipeline.execution}: ${x.pipeline.stages.join(' -> ')}` : undefined],
              ['Facts', JSON.stringify(x.facts)],
            ]),
            '',
            table(['ARTIFACT', 'RAW', 'STORED', 'COMPRESSION', 'SHA256'], x.artifacts.map((a) => [a.name, fmtBytes(a.rawBytes), fmtBytes(a.storedBytes), a.compression, a.sha256])),
          ].join('\n'),
        );
      }),
    );

  backup
    .command('verify')
    .description('read every artifact back and check its size and sha256 against the manifest')
    .argument('<backup>', 'backup id')
    .option('--prepare', 'also prove it restorable: physical: extract and prepare it with its chain in a scratch dir; logical: decompress the dump and check its header, trailer and databases')
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupVerify } = await import('../core/backups.js');
        const r = await runBackupVerify({ backup: id, prepare: Boolean(o.prepare) }, ctx);
        if (!r.ok) ctx.exitCode = 1;
        ctx.out.result(r, (x) =>
          [
            `backup ${x.backup}: ${x.ok ? 'OK' : 'DAMAGED'}`,
            ...x.artifacts.map((a) => `  ${a.ok ? 'ok     ' : 'FAILED '} ${a.name} ${fmtBytes(a.bytes)}${a.problem ? `: ${a.problem}` : ''}`),
            ...(x.prepared ? [`  ${x.prepared.ok ? 'ok     ' : 'FAILED '} ${x.prepared.check}${x.prepared.problem ? `: ${x.prepared.problem}` : ''}`] : []),
          ].join('\n'),
        );
      }),
    );

  backup
    .command('delete')
    .description('delete a backup (artifacts, then manifest, then catalog row); refused while it is restored or has dependents')
    .argument('<backup>', 'backup id')
    .option('--cascade', 'also delete the incremental backups that depend on it')
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupDelete } = await import('../core/backups.js');
        const r = await runBackupDelete({ backup: id, cascade: Boolean(o.cascade) }, ctx);
        ctx.out.result(r, (x) => x.deleted.map((d) => `deleted backup ${d}`).join('\n'));
      }),
    );

  backup
    .command('restore')
    .description('restore a backup into a target')
    .argument('<backup>', 'backup id')
    .option('--to <url>', 'target: mysql://USER@HOST:PORT, redis://HOST:PORT/DB, sqlite:///PATH')
    .option('--to-dir <dir>', 'redis snapshot: write dump.rdb into this directory')
    .option('--to-datadir <dir>', 'physical mysql: an empty directory to become the datadir')
    .option('--start', 'physical mysql: start a server on the restored datadir (with --port)')
    .option('--port <n>', 'physical mysql: port for --start')
    .option('--password-env <var>', 'read the target password from this environment variable')
    .option('--password-file <file>', 'read the target password from this file')
    .option('--database <src:dst>', 'restore database SRC under the name DST')
    .option('--tables <list>', 'restore only these tables: db.t1,db.t2')
    .option('--replace', 'overwrite existing tables/keys')
    .option('--flush', 'redis: flush the target database first')
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupRestore } = await import('../core/restore.js');
        const { resolveSecret } = await import('./secrets.js');
        const { askUser } = await import('./report.js');
        const getPassword = () => resolveSecret(ctx, { env: o.passwordEnv as string, file: o.passwordFile as string }, { flag: 'password', what: 'target password', required: false, promptMessage: 'Target password (empty for none):' });
        const passwordFlag = o.passwordEnv !== undefined ? '--password-env' : o.passwordFile !== undefined ? '--password-file' : undefined;
        const bar = ctx.out.progress(`restoring ${id}`, (done, _t, ms) => `${fmtBytes(done)}  ${fmtBytes(ms > 0 ? (done / ms) * 1000 : 0)}/s  ${fmtDuration(ms)}`);
        try {
          const r = await runBackupRestore(
            { backup: id, to: o.to as string | undefined, toDir: o.toDir as string | undefined, toDatadir: o.toDatadir as string | undefined, startPort: startPort(o), getPassword, passwordFlag, decide: askUser(ctx.prompt), database: o.database as string, tables: o.tables as string, replace: Boolean(o.replace), flush: Boolean(o.flush), onProgress: (n) => bar.update(n) },
            ctx,
          );
          bar.finish();
          ctx.out.result(r, (x) => {
            const res = (x.options as { result?: Record<string, unknown> }).result ?? {};
            const steps = Array.isArray(res.load) ? ['', 'To load it:', ...(res.load as string[]).map((l) => `  ${l}`)] : [];
            const conn =
              typeof res.connect === 'string'
                ? [`server started on the restored datadir (pid ${res.pid}, port ${res.port}, socket ${res.socket})`, `  connect: ${res.connect}`, ...(res.stop ? [`  stop:    ${res.stop}`] : [])]
                : [];
            return [`restored ${x.backupId} into ${x.target} (${fmtBytes(x.bytes)}), restore ${x.id}`, ...conn, ...steps].join('\n');
          });
        } finally {
          bar.finish();
        }
      }),
    );
}
