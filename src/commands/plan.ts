// `dbs plan ...`
import { Option, type Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import type { CommandContext } from '../context.js';
import type { PlanInput } from '../core/plans.js';
import { fields, fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { numberOption, repeatable } from './options.js';
import { suggest } from './complete.js';
import { examplesText, markRequired } from './help.js';
import { addListOptions, pageLimit, type ListFlags } from './lists.js';
import { planList, printPage, stateText } from './short.js';

/** A task's request in a few words: "logical of mysql://root@h:3306 {databases}". */
function requestText(r: Record<string, unknown>): string {
  const sel = r.selection && typeof r.selection === 'object' && Object.keys(r.selection).length ? ` ${JSON.stringify(r.selection)}` : '';
  return `${String(r.backupType ?? '?')} of ${String(r.source ?? '?')}${sel}`;
}

type Opts = Record<string, string | boolean | string[] | undefined>;

function addPlanOptions(c: Command, create: boolean): Command {
  return c
    .option('--source <url>', 'mysql://USER@HOST:PORT, redis://HOST:PORT/DB, sqlite:///PATH, dir:///PATH, s3://BUCKET/PREFIX')
    .option('--pool <pool>', 'pool id or name')
    .addOption(suggest(new Option('--type <type>', 'logical (default for mysql/redis), physical, incremental, snapshot'), ['logical', 'physical', 'incremental', 'snapshot']))
    .option('--databases <list>', 'databases to back up, comma-separated')
    .option('--all-databases', 'every database of the server')
    .option('--tables <list>', 'only these tables: db.t1,db.t2')
    .option('--match <pattern>', 'redis: only keys matching this pattern')
    .addOption(repeatable(new Option('--include <glob>', 'dir: only paths matching this glob (repeatable)')))
    .addOption(repeatable(new Option('--exclude <glob>', 'dir: leave out paths matching this glob (repeatable)')))
    .option('--one-file-system', 'dir: do not descend into other file systems')
    .option('--skip-unreadable', 'dir: an unreadable file is a warning, not a failed backup')
    .option('--password-env <var>', 'read the source password from this environment variable')
    .option('--password-file <file>', 'read the source password from this file')
    .option('--password-from <ref>', 'env:VAR or file:PATH: keep only this reference; the password is read at every run (rotation)')
    .option('--endpoint <url>', 's3 bucket source: endpoint URL, e.g. https://s3.us-east-1.amazonaws.com')
    .option('--region <region>', 's3 bucket source: region (default us-east-1)')
    .option('--access-key <id>', 's3 bucket source: access key id (default: the AWS credential chain)')
    .option('--secret-key-env <var>', 's3 bucket source: read the secret key from this environment variable')
    .option('--secret-key-file <file>', 's3 bucket source: read the secret key from this file')
    .option('--secret-key-from <ref>', 's3 bucket source: env:VAR or file:PATH, read at every run')
    .option('--manual', 'run only on demand (default)')
    .option('--cron <expr>', 'cron expression, e.g. "30 2 * * *"')
    .addOption(suggest(new Option('--every <period>', 'hourly, daily or weekly'), ['hourly', 'daily', 'weekly']))
    .option('--at <time>', 'HH:MM (daily, weekly) or :MM (hourly)')
    .option('--days <list>', 'weekly: mon,tue,...')
    .option('--once <time>', 'run once at this time')
    .option('--start <time>', 'nothing runs before this time')
    .option('--tz <zone>', 'time zone of the schedule (default: local)')
    .addOption(numberOption('--keep-days <n>', 'delete backups older than N days', { min: 1, max: 1_000_000, example: '--keep-days 7' }))
    .addOption(numberOption('--keep-last <n>', 'keep the newest N backups', { min: 1, max: 1_000_000, example: '--keep-last 7' }))
    .addOption(numberOption('--keep-daily <n>', 'GFS: keep the newest backup of each of the last N days', { min: 1, max: 1_000_000, example: '--keep-daily 7' }))
    .addOption(numberOption('--keep-weekly <n>', 'GFS: keep the newest backup of each of the last N weeks', { min: 1, max: 1_000_000, example: '--keep-weekly 7' }))
    .addOption(numberOption('--keep-monthly <n>', 'GFS: keep the newest backup of each of the last N months', { min: 1, max: 1_000_000, example: '--keep-monthly 7' }))
    .option('--keep-forever', 'never delete backups (the default without --keep-* rules)')
    .option('--standby-pool <pool>', 'write backups here while the plan\'s pool is offline')
    .addOption(repeatable(new Option('--replicate-to <pool>', 'after each backup, copy it to this pool too (repeatable)')))
    .option('--remote-keep-forever', 'replica pools: never delete copies (the default)')
    .addOption(numberOption('--remote-keep-last <n>', 'replica pools: keep the newest N copies', { min: 1, max: 1_000_000, example: '--remote-keep-last 7' }))
    .addOption(numberOption('--remote-keep-days <n>', 'replica pools: delete copies older than N days', { min: 1, max: 1_000_000, example: '--remote-keep-days 30' }))
    .addOption(suggest(new Option('--compress <kind>', `zstd${create ? ' (default)' : ''}, gzip or none`), ['zstd', 'gzip', 'none']))
    .option('--base-plan <plan>', 'incremental: the physical plan whose backups start the chain')
    .option('--auto-full', 'incremental: take a full backup when the chain is missing or broken')
    .option('--verify-prepare', 'physical/incremental: extract and prepare each new backup before it counts')
    .addOption(repeatable(new Option('--encrypt-to <recipient>', 'encrypt every artifact to this age recipient (age1... or age1pq1...; repeatable)')))
    .option('--recipients-file <file>', 'encrypt to the age recipients in this file (one a line)')
    .option('--remark <text>', 'free text');
}

/**
 * The plan input of a command's options (--no-encrypt, --no-replicate, --no-standby-pool:
 * commander's `encrypt: false`, `replicate: false`, `standbyPool: false`).
 */
function planInput(o: Opts): PlanInput {
  const { encrypt, replicate, standbyPool, ...rest } = o as Opts & { encrypt?: boolean; replicate?: boolean; standbyPool?: string | boolean };
  return {
    ...(rest as object),
    ...(encrypt === false ? { noEncrypt: true } : {}),
    ...(replicate === false ? { noReplicate: true } : {}),
    ...(standbyPool === false ? { noStandby: true } : typeof standbyPool === 'string' ? { standbyPool } : {}),
  } as PlanInput;
}

async function password(ctx: CommandContext, o: Opts, askIfMissing: boolean) {
  // A reference (--password-from, --secret-key-from) goes to core as given: it is checked and
  // stored there (and refused together with a copying flag); nothing is asked.
  if (o.passwordFrom !== undefined || o.secretKeyFrom !== undefined) return undefined;
  const { resolveSecret } = await import('./secrets.js');
  // An S3 bucket source's secret key is its password (stored the same way).
  if (o.secretKeyEnv !== undefined || o.secretKeyFile !== undefined || o.accessKey !== undefined) {
    if (o.passwordEnv !== undefined || o.passwordFile !== undefined) {
      throw new (await import('../errors.js')).DbsError('USAGE', '--password-env/--password-file and --secret-key-env/--secret-key-file are exclusive', { hint: 'an s3 source takes --secret-key-env or --secret-key-file' });
    }
    return resolveSecret(ctx, { env: o.secretKeyEnv as string, file: o.secretKeyFile as string }, { flag: 'secret-key', what: 'S3 secret key', required: o.accessKey !== undefined, promptMessage: 'S3 secret key:' });
  }
  const given = o.passwordEnv !== undefined || o.passwordFile !== undefined;
  if (!given && !askIfMissing) return undefined;
  const src = String(o.source ?? '');
  const { descriptorOfUrl } = await import('../core/endpoints.js');
  // Server sources take a password; file sources (sqlite://, catalog) do not.
  if (!given && descriptorOfUrl(src)?.endpoint.form !== 'server') return undefined;
  return resolveSecret(ctx, { env: o.passwordEnv as string, file: o.passwordFile as string }, { flag: 'password', what: 'source password', required: false, promptMessage: 'Source password (empty for none):' });
}

/** On a terminal, `plan create` asks for what its flags did not give (the name, source, pool, databases). */
async function askMissing(ctx: CommandContext, i: PlanInput): Promise<void> {
  if (!ctx.prompt.enabled) return;
  ctx.catalog(); // opened first, so what opening it reports comes before the questions
  if (!i.name) i.name = await ctx.prompt.input('Plan name:');
  if (!i.source) i.source = await ctx.prompt.input('Source URL (mysql://user@host:port, redis://host:port, sqlite:///path):');
  if (!i.pool) {
    const pools = ctx.catalog().listPools();
    i.pool = await ctx.prompt.input(`Pool${pools.length ? ` (${pools.map((p) => p.name).join(', ')})` : ''}:`, pools.length === 1 ? pools[0].name : undefined);
  }
  const { descriptorOfUrl } = await import('../core/endpoints.js');
  if (i.source && descriptorOfUrl(i.source)?.asksSelection && i.databases === undefined && !i.allDatabases && i.tables === undefined) {
    const dbs = await ctx.prompt.input('Databases to back up (comma-separated, or * for all):', '*');
    if (dbs.trim() === '*') i.allDatabases = true;
    else i.databases = dbs;
  }
}

export function registerPlan(program: Command, run: CommandRunner): void {
  const plan = program
    .command('plan')
    .description('create backup plans and run them (source, type, selection, pool, schedule, retention)')
    .addHelpText(
      'after',
      `
Examples:
  DB_PW=... dbs plan create shop-nightly --source mysql://backup@db1:3306 --password-env DB_PW \\
      --pool backups --databases shop --every daily --at 02:30 --keep-days 14
  dbs plan create shop-k8s --source mysql://backup@db1:3306 --pool backups --databases shop \\
      --password-from file:/run/secrets/db-password      # read at every run: rotation works
  dbs plan run shop-nightly
  dbs plan list`,
    );

  const create = addPlanOptions(plan.command('create').description('create a plan after checking the source and the pool for real').argument('[name]', 'unique plan name'), true);
  markRequired(create, '--source', 'required; asked on a terminal');
  markRequired(create, '--pool', 'required; asked on a terminal');
  create
    .addHelpText(
      'after',
      examplesText(
        'dbs plan create shop-nightly --source mysql://backup@db1:3306 --password-env DB_PW \\',
        '    --pool backups --databases shop --every daily --at 02:30 --keep-days 14   # DB_PW holds the password',
        'dbs plan create cache --source redis://cache1:6379/0 --pool backups --every hourly --at :15 --keep-last 24',
        'dbs plan create app-db --source sqlite:///var/lib/app/app.db --pool backups --cron "30 2 * * *" \\',
        '    --keep-daily 7 --keep-weekly 4 --replicate-to offsite --remote-keep-last 30',
        "dbs plan create uploads --source dir:///srv/uploads --pool backups --exclude '*.tmp' --every weekly --days sun --at 03:00",
        'dbs plan create vault --source sqlite:///var/lib/vault.db --pool offsite --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
      ),
    )
    .action(
    (name: string | undefined, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanCreate } = await import('../core/plans.js');
        const pw = await password(ctx, o, true);
        const input = { ...planInput(o), name, password: pw };
        await askMissing(ctx, input);
        const r = await runPlanCreate(input, ctx);
        for (const w of r.warnings) ctx.out.warn(w);
        ctx.out.result(r, (x) => `created plan ${x.plan.name} (${x.plan.id}): ${x.plan.sourceKind} ${x.plan.backupType} of ${x.plan.source.url} (server ${x.serverVersion}) into pool ${x.plan.poolName}, ${x.plan.timer}, ${x.plan.retentionText}`);
      }),
  );

  plan
    .command('list')
    .description('list plans')
    .addHelpText('after', examplesText('dbs plan list', 'dbs plan list --pool backups --json'))
    .option('--pool <pool>', 'only plans of this pool')
    .action((o: { pool?: string }, cmd: Command) => run(cmd, (ctx) => planList(o, ctx)));

  addListOptions(plan.command('history').description('every execution of a plan, newest first: when, what was asked, the result (backup or error), success').argument('<plan>', 'plan id or name'), 'executions', ['queued', 'running', 'succeeded', 'failed', 'interrupted'], { perPlan: true })
    .addHelpText('after', examplesText('dbs plan history shop-nightly', 'dbs plan history shop-nightly --status failed --since 7d'))
    .action((ref: string, o: ListFlags, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanHistory } = await import('../core/inventory.js');
        await printPage(ctx, runPlanHistory({ ...o, plan: ref, limit: pageLimit(ctx, o) }, ctx), {
          empty: 'no executions',
          head: ['ASKED', 'TRIGGER', 'OK', 'RESULT', 'DURATION', 'REQUEST', 'TASK'],
          cells: (h) => [fmtTime(h.queuedAt), h.trigger, h.success ? 'yes' : h.status === 'running' || h.status === 'queued' ? h.status : 'no', h.backupId ?? (h.error ? `${h.error.code}: ${h.error.message}` : '-'), fmtDuration(h.durationMs), h.request ? requestText(h.request) : '-', h.task],
          id: (h) => h.task,
        });
      }),
    );

  plan
    .command('monitor')
    .description("chart a plan's samples (CPU, memory, bytes in/out of its tasks and restores) in the terminal")
    .argument('<plan>', 'plan id or name')
    .option('--since <when>', 'from this age or time (default 24h): 24h, 7d, 2026-12-01, "2026-12-01 02:30"')
    .addOption(suggest(new Option('--metric <metric>', 'cpu (default), mem, in, out, compress or encrypt'), ['cpu', 'mem', 'in', 'out', 'compress', 'encrypt']))
    .addHelpText(
      'after',
      `
cpu: CPU % of dbs and the run's programs (100 = one core); mem: their RSS; in: bytes read from
the source per second (a restore: from the pool); out: bytes sent to the pool per second (a
restore: into the target); compress, encrypt: bytes out of that stage of a backup per second.
In a daemon the dbs share is the whole process's. --json gives the samples (with each stage's
rate: source, compress, encrypt, upload), the series and each run's summary and throughput.

${examplesText('dbs plan monitor shop-nightly', 'dbs plan monitor shop-nightly --since 7d --metric mem', 'dbs plan monitor shop-nightly --metric out --json').trim()}`,
    )
    .action((ref: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanMonitor } = await import('../core/monitor.js');
        const { renderMonitor } = await import('./monitor-view.js');
        const r = runPlanMonitor({ plan: ref, since: o.since as string | undefined, metric: o.metric as string | undefined }, ctx);
        ctx.out.result(r, (x) => renderMonitor(x, Math.min(80, ctx.out.options.width ?? 80)));
      }),
    );

  plan
    .command('show')
    .description('show a plan with its backups and last tasks')
    .addHelpText('after', examplesText('dbs plan show shop-nightly'))
    .argument('<plan>', 'plan id or name')
    .action((ref: string, _o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanShow } = await import('../core/plans.js');
        const p = runPlanShow({ plan: ref }, ctx);
        ctx.out.result(p, (x) =>
          [
            fields([
              ['Name', x.name],
              ['ID', x.id],
              ['Status', stateText(x) + (x.pauseReason && x.state !== 'paused' ? ` (paused: ${x.pauseReason})` : '')],
              ['Last run', x.lastRun ? `${fmtTime(x.lastRun.at)} ${x.lastRun.status}: ${x.lastRun.result}` : '-'],
              ['Source', `${x.sourceKind} ${x.source.url}`],
              ['Backup type', x.backupType],
              ['Associated plans', x.associatedPlans.join(', ')],
              ['Selection', JSON.stringify(x.selection)],
              ['Pool', x.poolName],
              ['Schedule', x.timer],
              ['Next runs', x.nextRuns.map(fmtTime).join(', ') || '-'],
              ['Retention', x.retentionText],
              ['Standby pool', x.standbyPool ?? undefined],
              ['Replicas', x.replicas.length ? `${x.replicas.join(', ')} (${x.remoteRetentionText})` : undefined],
              ['Compression', x.compression],
              ['Encryption', x.recipients.length ? `age to ${x.recipients.join(', ')}` : 'none'],
              [x.sourceKind === 'bucket' ? 'Secret key' : 'Password', x.credential ? (x.credential.mode === 'reference' ? `from ${x.credential.from} (read at every run)` : 'copied into the catalog') : undefined],
              ['Remark', x.remark],
              ['Created', fmtTime(x.createdAt)],
              ['Updated', fmtTime(x.updatedAt)],
            ]),
            '',
            x.backups.length
              ? table(['BACKUP', 'ENDED', 'RAW', 'STORED'], x.backups.map((b) => [b.id, fmtTime(b.endedAt), fmtBytes(b.rawBytes), fmtBytes(b.storedBytes)]))
              : 'no backups',
            '',
            x.tasks.length ? table(['TASK', 'STATUS', 'TRIGGER', 'STARTED', 'ERROR'], x.tasks.map((t) => [t.id, t.status, t.trigger, fmtTime(t.startedAt), t.errorMessage ?? ''])) : 'no tasks',
          ].join('\n'),
        );
      }),
    );

  addPlanOptions(plan.command('update').description('change any field of a plan; the result is checked again').argument('<plan>', 'plan id or name').option('--name <name>', 'new name'), false)
    .option('--no-encrypt', 'stop encrypting new backups (those taken stay encrypted)')
    .option('--no-replicate', 'stop copying new backups to replica pools (copies made stay)')
    .option('--no-standby-pool', 'remove the standby pool (backups made there stay)')
    .addHelpText(
      'after',
      examplesText(
        'dbs plan update shop-nightly --keep-days 30',
        'dbs plan update shop-nightly --password-env DB_PW   # new credentials, checked against the source',
        'dbs plan update shop-nightly --every daily --at 01:00',
        'dbs plan update shop-nightly --name shop-daily --no-encrypt',
      ),
    )
    .action((ref: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanUpdate } = await import('../core/plans.js');
        const pw = await password(ctx, o, false);
        const p = await runPlanUpdate({ ...planInput(o), plan: ref, password: pw }, ctx);
        for (const w of p.warnings) ctx.out.warn(w);
        ctx.out.result(p, (x) => `updated plan ${x.name} (${x.id})`);
      }),
  );

  plan
    .command('run')
    .description('run a plan now in the foreground (exits non-zero when the backup failed), or every due plan with --due')
    .addHelpText('after', examplesText('dbs plan run shop-nightly', 'dbs plan run --due   # from cron or a systemd timer', 'dbs plan run --due --metrics-file /var/lib/node_exporter/textfile/dbs.prom'))
    .argument('[plan]', 'plan id or name')
    .option('--due', 'run every scheduled plan that is due since its last run, then exit (for cron/systemd timers)')
    .option('--metrics-file <file.prom>', "after the run (also a failed one), write the catalog's metrics to this node_exporter textfile, atomically")
    .action((ref: string | undefined, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { DbsError } = await import('../errors.js');
        if (o.due && ref) throw new DbsError('USAGE', '--due runs every due plan; do not name a plan', { hint: 'drop the plan name, or drop --due' });
        if (!o.due && !ref) throw new DbsError('USAGE', 'name the plan to run, or pass --due', { hint: 'e.g. dbs plan run shop' });
        // Checked before anything runs; written after the run whatever its outcome, so a
        // failed run shows in the file. A run's error wins over one writing the file.
        const metrics = typeof o.metricsFile === 'string' ? await import('../core/metrics.js') : undefined;
        const metricsFile = metrics?.checkMetricsFile(o.metricsFile as string, ctx.cwd);
        try {
          await runPlanRunCommand(ref, o, ctx);
        } catch (e) {
          if (metrics && metricsFile) await metrics.writeMetricsFile(ctx.catalog(), metricsFile).catch((we: unknown) => ctx.out.warn((we as Error).message));
          throw e;
        }
        if (metrics && metricsFile) await metrics.writeMetricsFile(ctx.catalog(), metricsFile);
      }),
    );

  for (const verb of ['pause', 'resume'] as const) {
    plan
      .command(verb)
      .description(verb === 'pause' ? 'stop running a scheduled plan on its schedule' : 'run a paused plan on its schedule again')
      .argument('<plan>', 'plan id or name')
      .addHelpText('after', examplesText(`dbs plan ${verb} shop-nightly`))
      .action((ref: string, _o: Opts, cmd: Command) =>
        run(cmd, async (ctx) => {
          const m = await import('../core/scheduler.js');
          const p = verb === 'pause' ? m.runPlanPause({ plan: ref }, ctx) : m.runPlanResume({ plan: ref }, ctx);
          ctx.out.result(p, (x) => `${verb === 'pause' ? 'paused' : 'resumed'} plan ${x.name}${x.nextRun ? `; next run ${fmtTime(x.nextRun)}` : ''}`);
        }),
      );
  }

  plan
    .command('prune')
    .description("apply the plan's retention now")
    .addHelpText('after', examplesText('dbs plan prune shop-nightly --dry-run', 'dbs plan prune shop-nightly'))
    .argument('<plan>', 'plan id or name')
    .option('--dry-run', 'only show what would be deleted and why')
    .action((ref: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanPrune } = await import('../core/prune.js');
        const r = await runPlanPrune({ plan: ref, dryRun: Boolean(o.dryRun) }, ctx);
        for (const d of r.pending) ctx.out.warn(`${d.id} in pool ${d.pool}: not deleted (${d.error}); it stays "deleting" and is deleted again by the daemon, the next run or prune`);
        ctx.out.result(r, (x) => (x.deleted.length ? x.deleted.map((d) => `${x.dryRun ? 'would delete' : 'deleted'} ${d.id}${d.pool ? ` in pool ${d.pool}` : ''}: ${d.reason}`).join('\n') : x.pending.length ? 'nothing deleted' : 'nothing to delete'));
      }),
    );

  plan
    .command('unlock')
    .description("remove a plan's lock left by a process that is gone (exit status 4 while its holder may still run)")
    .argument('<plan>', 'plan id or name')
    .option('--force', 'also remove a lock whose holder on another host still has a lease (make sure that process is gone)')
    .addHelpText(
      'after',
      `
A lock is a lease that its holder renews while it runs. A lock whose process on this host is
gone, or whose lease from another host has expired, is taken over by the next run anyway;
unlock removes it now. Refused while the holder runs on this host; refused for a holder on
another host whose lease has not expired, unless --force. Every removal is recorded as an event.

Examples:
  dbs plan unlock shop-nightly
  dbs plan unlock shop-nightly --force   # the pod that held it was deleted`,
    )
    .action((ref: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanUnlock } = await import('../core/locks.js');
        const r = await runPlanUnlock({ plan: ref, force: Boolean(o.force) }, ctx);
        ctx.out.result(r, (x) =>
          x.removed
            ? `removed the lock of plan ${x.plan.name} held by pid ${x.removed.pid} on ${x.removed.host}${x.forced ? ' (--force)' : ''}${x.interruptedTasks.length ? `; task ${x.interruptedTasks.join(', ')} marked interrupted` : ''}`
            : `plan ${x.plan.name} is not locked`,
        );
      }),
    );

  plan
    .command('delete')
    .description('delete a plan; refused while it has backups unless --with-backups')
    .addHelpText('after', examplesText('dbs plan delete old-plan', 'dbs plan delete old-plan --with-backups'))
    .argument('<plan>', 'plan id or name')
    .option('--with-backups', 'delete its backups first')
    .action((ref: string, o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPlanDelete } = await import('../core/plans.js');
        const r = await runPlanDelete({ plan: ref, withBackups: Boolean(o.withBackups) }, ctx);
        ctx.out.result(r, (x) => `deleted plan ${x.plan.name} (${x.plan.id})${x.deletedBackups.length ? ` and ${x.deletedBackups.length} backup(s)` : ''}`);
      }),
    );
}

/** `plan run`: one plan, or every due plan (--due); usage was checked by the caller. */
async function runPlanRunCommand(ref: string | undefined, o: Opts, ctx: CommandContext): Promise<void> {
  if (o.due) {
    const { runDue } = await import('../core/scheduler.js');
    const r = await runDue({}, ctx);
    if (r.ran.some((x) => x.status === 'failed' || x.status === 'paused' || x.status === 'interrupted')) ctx.exitCode = 1;
    ctx.out.result(
      { ...r, ran: r.ran.map((x) => ({ plan: x.plan, status: x.status, backup: x.result?.backup?.id, task: x.result?.task.id, error: x.error?.toJSON() })) },
      (x) => (x.ran.length ? x.ran.map((y) => `${y.plan}: ${y.status}${y.backup ? ` (${y.backup})` : ''}${y.error ? `: ${y.error.message}` : ''}`).join('\n') : `nothing due (${x.notDue} plan(s) checked)`),
    );
    return;
  }
  const { runPlanRun } = await import('../core/tasks.js');
  const bar = ctx.out.progress(`backing up ${ref}`, (done, _t, ms) => `${fmtBytes(done)}  ${fmtBytes(ms > 0 ? (done / ms) * 1000 : 0)}/s  ${fmtDuration(ms)}`);
  try {
    const r = await runPlanRun({ plan: ref!, onProgress: (n) => bar.update(n) }, ctx);
    bar.finish();
    ctx.out.result(r, (x) =>
      [
        `backup ${x.backup!.id} of plan ${x.task.planName}: ${fmtBytes(x.task.rawBytes)} raw, ${fmtBytes(x.task.storedBytes)} stored, task ${x.task.id}`,
        ...x.pruned.map((id) => `retention deleted ${id}`),
      ].join('\n'),
    );
  } finally {
    bar.finish();
  }
}
