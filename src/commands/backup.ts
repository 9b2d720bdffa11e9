// `dbs backup ...`
import { Option, type Command } from 'commander';
import { repeatable } from './options.js';
import { suggest } from './complete.js';
import type { CommandRunner } from '../cli.js';
import { DbsError } from '../errors.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { addListOptions, type ListFlags } from './lists.js';
import { backupList } from './short.js';
import { examplesText } from './help.js';

const BACKUP_STATUS_NAMES = ['available', 'deleting', 'missing'];

type Opts = Record<string, string | boolean | string[] | undefined>;

function startPort(o: Opts): number | undefined {
  if (!o.start) {
    if (o.port !== undefined) throw new DbsError('USAGE', '--port needs --start', { hint: 'add --start to launch a server on the restored datadir' });
    return undefined;
  }
  const n = Number(o.port);
  if (o.port === undefined || !Number.isInteger(n) || n < 1 || n > 65535) throw new DbsError('INVALID_ARGUMENT', `--start needs --port N (1-65535)${o.port !== undefined ? `, got ${JSON.stringify(o.port)}` : ''}`, { hint: 'e.g. --start --port 3307' });
  return n;
}

/** The repeatable --path values (commander collects them into a list). */
function pathList(o: Opts): string[] | undefined {
  const v: unknown = (o as Record<string, unknown>).path;
  return Array.isArray(v) ? v.map(String) : undefined;
}

/** Engine facts for a person: a long list (a bucket's split keys) as its length; --json has it whole. */
function factsText(facts: unknown): string {
  return JSON.stringify(facts, (k, v: unknown) => (k && Array.isArray(v) && v.length > 4 ? `${v.length} items` : v));
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
    .addOption(suggest(new Option('--group-by <key>', 'counts and sizes per plan, pool, type or day instead of the backups'), ['plan', 'pool', 'type', 'day']))
    .addHelpText('after', examplesText('dbs backup list --plan shop-nightly', 'dbs backup list --pool offsite --since 7d --json', 'dbs backup list --group-by day --since 30d'))
    .action((o: ListFlags & { groupBy?: string }, cmd: Command) => run(cmd, (ctx) => backupList(o, ctx)));

  backup
    .command('show')
    .description("show a backup's manifest")
    .addHelpText('after', examplesText('dbs backup show b-20261121T023000Z-3fa9', 'dbs backup show b-20261121T023000Z-3fa9 --json'))
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
              ['Encryption', x.encryption && x.encryption !== 'none' ? `age to ${x.encryption.recipients.join(', ')}` : 'none'],
              ['Facts', factsText(x.facts)],
            ]),
            '',
            table(['ARTIFACT', 'RAW', 'STORED', 'COMPRESSION', 'SHA256'], x.artifacts.map((a) => [a.name, fmtBytes(a.rawBytes), fmtBytes(a.storedBytes), a.compression, a.sha256])),
            '',
            table(
              ['COPY IN POOL', 'ROLE', 'STATUS', 'SIZE', 'SHA256 CHECKED', 'ERROR'],
              x.copies.map((c) => [c.poolName, c.role, c.status, c.storedBytes === null ? '-' : fmtBytes(c.storedBytes), fmtTime(c.checkedAt), c.error || '-']),
            ),
            ...x.pendingDeletes.map((d) => `\nthe copy in pool ${d.pool} is being deleted: the last attempt (${fmtTime(d.at)}, ${d.attempts} so far) failed: ${d.error || 'interrupted'}.\nIt is no copy any more; it is deleted again by ${d.retry}.`),
          ].join('\n'),
        );
      }),
    );

  backup
    .command('verify')
    .description('read every artifact back and check its size and sha256 against the manifest')
    .addHelpText('after', examplesText('dbs backup verify b-20261121T023000Z-3fa9', 'dbs backup verify b-20261121T023000Z-3fa9 --from-pool offsite', 'dbs backup verify b-20261121T023000Z-3fa9 --prepare   # physical: also extract and prepare it'))
    .argument('<backup>', 'backup id')
    .option('--prepare', 'also prove it restorable: physical: extract and prepare it with its chain in a scratch dir; logical: decompress the dump and check its header, trailer and databases')
    .option('--from-pool <pool>', 'verify the copy in this pool (default: the primary copy, or a replica when its pool is offline)')
    .option('--identity-file <file>', 'with --prepare, encrypted backups: the age identity file (default: $DBS_IDENTITY_FILE)')
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupVerify } = await import('../core/backups.js');
        const r = await runBackupVerify({ backup: id, prepare: Boolean(o.prepare), fromPool: o.fromPool as string | undefined, identityFile: o.identityFile as string | undefined }, ctx);
        if (!r.ok) ctx.exitCode = 1;
        ctx.out.result(r, (x) =>
          [
            `backup ${x.backup} in pool ${x.pool}: ${x.ok ? 'OK' : 'DAMAGED'}`,
            ...x.artifacts.map((a) => `  ${a.ok ? 'ok     ' : 'FAILED '} ${a.name} ${fmtBytes(a.bytes)}${a.problem ? `: ${a.problem}` : ''}`),
            ...(x.prepared ? [`  ${x.prepared.ok ? 'ok     ' : 'FAILED '} ${x.prepared.check}${x.prepared.problem ? `: ${x.prepared.problem}` : ''}`] : []),
          ].join('\n'),
        );
      }),
    );

  backup
    .command('copy')
    .description('copy a backup to another pool (artifacts checked against their sha256, manifest last); server side when both pools share an endpoint and credentials')
    .addHelpText('after', examplesText('dbs backup copy b-20261121T023000Z-3fa9 --to offsite', 'dbs backup copy b-20261121T023000Z-3fa9 --from-pool offsite --to archive --read-back'))
    .argument('<backup>', 'backup id')
    .requiredOption('--to <pool>', 'the pool to copy it to')
    .option('--from-pool <pool>', 'read the copy in this pool (default: the primary copy, or the first ready replica)')
    .option('--read-back', 'after a server-side copy, read the copy back against its sha256 even when the server reports it equal to the source')
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupCopy, CHECK_TEXT } = await import('../core/copies.js');
        const r = await runBackupCopy({ backup: id, to: o.to as string, from: o.fromPool as string | undefined, readBack: Boolean(o.readBack) }, ctx);
        ctx.out.result(r, (x) => (x.already ? `backup ${x.backup} already has a ready copy in pool ${x.pool}` : `copied backup ${x.backup} from pool ${x.from} to pool ${x.pool} (${fmtBytes(x.bytes)}, ${x.method === 'server' ? 'server-side copy' : 'streamed'}, ${CHECK_TEXT[x.check ?? 'sha256']})`));
      }),
    );

  backup
    .command('delete')
    .description('delete a backup (artifacts, then manifest, then catalog row); refused while it is restored or has dependents')
    .addHelpText('after', examplesText('dbs backup delete b-20261121T023000Z-3fa9', 'dbs backup delete b-20261121T023000Z-3fa9 --cascade   # and the incrementals on top of it'))
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
    .command('ls')
    .description('list the tree a directory backup holds (from its index)')
    .addHelpText('after', examplesText('dbs backup ls b-20261121T023000Z-3fa9', 'dbs backup ls b-20261121T023000Z-3fa9 --path etc/nginx'))
    .argument('<backup>', 'backup id')
    .addOption(repeatable(new Option('--path <path>', 'only this path and what is under it (repeatable)')))
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupLs } = await import('../core/backups.js');
        const r = await runBackupLs({ backup: id, paths: Array.isArray(o.path) ? o.path : [] }, ctx);
        ctx.out.result(r, (x) =>
          x.entries
            .map((e) => `${e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'hardlink' ? 'h' : '-'}${(e.mode ?? 0).toString(8).padStart(4, '0')} ${String(e.uid ?? '')}:${String(e.gid ?? '')} ${String(e.size).padStart(12)}  ${e.path}${e.link !== undefined ? ` -> ${e.link}` : ''}`)
            .join('\n'),
        );
      }),
    );

  backup
    .command('restore')
    .description('restore a backup into a target')
    .addHelpText('after', examplesText('dbs backup restore b-20261121T023000Z-3fa9 --to mysql://root@db2:3306 --password-env DB_PW \\', '    --database shop:shop_restored   # DB_PW holds the password', 'dbs backup restore b-20261121T023000Z-3fa9 --to sqlite:///tmp/app-restored.db', 'dbs backup restore b-20261121T023000Z-3fa9 --to-dir /srv/restore --path uploads/2026'))
    .argument('<backup>', 'backup id')
    .option('--to <url>', 'target: mysql://USER@HOST:PORT, redis://HOST:PORT/DB, sqlite:///PATH, s3://BUCKET/PREFIX')
    .option('--to-dir <dir>', 'redis snapshot: write dump.rdb into this directory')
    .option('--to-datadir <dir>', 'physical mysql: an empty directory to become the datadir')
    .option('--start', 'physical mysql: start a server on the restored datadir (with --port)')
    .option('--port <n>', 'physical mysql: port for --start')
    .option('--password-env <var>', 'read the target password from this environment variable')
    .option('--password-file <file>', 'read the target password from this file')
    .option('--password-from <ref>', 'env:VAR or file:PATH: read the target password from there (as plans do)')
    .option('--database <src:dst>', 'restore database SRC under the name DST')
    .option('--tables <list>', 'restore only these tables: db.t1,db.t2')
    .option('--replace', 'overwrite existing tables/keys')
    .option('--flush', 'redis: flush the target database first')
    .addOption(repeatable(new Option('--path <path>', 'dir/s3: restore only this path (a file or directory of a tree; a key or a folder of keys); repeatable')))
    .option('--endpoint <url>', 's3 target: endpoint URL (default: the source bucket\'s)')
    .option('--region <region>', 's3 target: region (default: the source bucket\'s)')
    .option('--access-key <id>', 's3 target: access key id (default: the AWS credential chain)')
    .option('--secret-key-env <var>', 's3 target: read the secret key from this environment variable')
    .option('--secret-key-file <file>', 's3 target: read the secret key from this file')
    .option('--secret-key-from <ref>', 's3 target: env:VAR or file:PATH: read the secret key from there')
    .option('--identity-file <file>', 'encrypted backups: the age identity file (default: $DBS_IDENTITY_FILE)')
    .option('--from-pool <pool>', 'restore the copy in this pool (default: the primary copy, or a replica when its pool is offline)')
    .action((id: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runBackupRestore } = await import('../core/restore.js');
        const { resolveSecret } = await import('./secrets.js');
        const { askUser } = await import('./report.js');
        const s3Secret = o.secretKeyEnv !== undefined || o.secretKeyFile !== undefined || o.secretKeyFrom !== undefined || o.accessKey !== undefined;
        if (s3Secret && (o.passwordEnv !== undefined || o.passwordFile !== undefined || o.passwordFrom !== undefined)) throw new DbsError('USAGE', '--password-env/--password-file/--password-from and --secret-key-env/--secret-key-file/--secret-key-from are exclusive', { hint: 'an s3 target takes --secret-key-env, --secret-key-file or --secret-key-from' });
        // A reference is read now, by the one function that reads references (core/credentials.ts).
        const from = o.passwordFrom !== undefined ? { flag: 'password', text: o.passwordFrom as string, what: 'target password', copying: [o.passwordEnv, o.passwordFile] } : o.secretKeyFrom !== undefined ? { flag: 'secret-key', text: o.secretKeyFrom as string, what: 'S3 secret key', copying: [o.secretKeyEnv, o.secretKeyFile] } : undefined;
        if (from && from.copying.some((v) => v !== undefined)) throw new DbsError('USAGE', `--${from.flag}-from and --${from.flag}-env/--${from.flag}-file are exclusive`, { hint: 'give the secret one way' });
        const { parseSecretRef, resolveGivenRef } = await import('../core/credentials.js');
        const ref = from ? parseSecretRef(from.text, { flag: from.flag, cwd: ctx.cwd }) : undefined;
        const getPassword = async () =>
          from && ref
            ? resolveGivenRef(ctx, ref, from.what, from.flag)
            : s3Secret
            ? resolveSecret(ctx, { env: o.secretKeyEnv as string, file: o.secretKeyFile as string }, { flag: 'secret-key', what: 'S3 secret key', required: o.accessKey !== undefined, promptMessage: 'S3 secret key:' })
            : resolveSecret(ctx, { env: o.passwordEnv as string, file: o.passwordFile as string }, { flag: 'password', what: 'target password', required: false, promptMessage: 'Target password (empty for none):' });
        const passwordFlag =
          o.passwordEnv !== undefined ? '--password-env' : o.passwordFile !== undefined ? '--password-file' : o.passwordFrom !== undefined ? '--password-from' : o.secretKeyEnv !== undefined ? '--secret-key-env' : o.secretKeyFile !== undefined ? '--secret-key-file' : o.secretKeyFrom !== undefined ? '--secret-key-from' : undefined;
        const bar = ctx.out.progress(`restoring ${id}`, (done, _t, ms) => `${fmtBytes(done)}  ${fmtBytes(ms > 0 ? (done / ms) * 1000 : 0)}/s  ${fmtDuration(ms)}`);
        try {
          const r = await runBackupRestore(
            { backup: id, to: o.to as string | undefined, toDir: o.toDir as string | undefined, toDatadir: o.toDatadir as string | undefined, startPort: startPort(o), getPassword, passwordFlag, decide: askUser(ctx.prompt), fromPool: o.fromPool as string | undefined, database: o.database as string, tables: o.tables as string, replace: Boolean(o.replace), flush: Boolean(o.flush), paths: pathList(o), endpoint: o.endpoint as string | undefined, region: o.region as string | undefined, accessKey: o.accessKey as string | undefined, identityFile: o.identityFile as string | undefined, onProgress: (n) => bar.update(n) },
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
