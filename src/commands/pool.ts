// `dbs pool ...`: parse argv into typed options, call core, hand the result to output.
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import type { CommandRunner } from '../cli.js';
import { DbsError, exitCodeOf } from '../errors.js';
import { fields, fmtTime, table } from '../output/format.js';
import { examplesText } from './help.js';

export function registerPool(program: Command, run: CommandRunner): void {
  const pool = program
    .command('pool')
    .description('bind and manage storage pools (local directories, S3 buckets)')
    .addHelpText(
      'after',
      `
Examples:
  dbs pool bind backups --type local --path /var/backups/dbs
  AWS_SECRET=... dbs pool bind offsite --type s3 --endpoint https://s3.example.com \\
      --bucket my-backups --prefix prod --access-key AKIA... --secret-key-env AWS_SECRET
  dbs pool list
  dbs pool check offsite`,
    );

  pool
    .command('bind')
    .description('bind a storage pool after checking it for real (write, read back, delete)')
    .addHelpText('after', examplesText('dbs pool bind backups --type local --path /var/backups/dbs', 'dbs pool bind offsite --type s3 --endpoint https://s3.example.com --bucket my-backups \\', '    --prefix prod --access-key AKIA... --secret-key-env AWS_SECRET   # AWS_SECRET holds the key'))
    .argument('<name>', 'unique pool name')
    .addOption(suggest(new Option('--type <type>', 'local or s3').makeOptionMandatory(), ['local', 's3']))
    .option('--path <dir>', 'local: absolute path of an existing directory')
    .option('--endpoint <url>', 's3: endpoint URL, e.g. https://s3.us-east-1.amazonaws.com')
    .option('--bucket <bucket>', 's3: bucket (default "dbs", created when missing)')
    .option('--prefix <prefix>', 's3: key prefix inside the bucket')
    .option('--region <region>', 's3: region (default us-east-1)')
    .option('--access-key <id>', 's3: access key id (default: the AWS credential chain)')
    .option('--secret-key-env <var>', 's3: read the secret key from this environment variable')
    .option('--secret-key-file <file>', 's3: read the secret key from this file')
    .option('--secret-key-from <ref>', 's3: env:VAR or file:PATH: keep only this reference; the key is read at each use (rotation)')
    .option('--path-style', 's3: path-style addressing (default)', true)
    .option('--no-path-style', 's3: virtual-hosted-style addressing')
    .option('--remark <text>', 'free text')
    .action((name: string, o: Record<string, string | boolean | undefined>, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPoolBind, takesCredentials } = await import('../core/pools.js');
        const { resolveSecret } = await import('./secrets.js');
        // A reference goes to core as given (checked and stored there); never with a copying flag.
        if (o.secretKeyFrom !== undefined && (o.secretKeyEnv !== undefined || o.secretKeyFile !== undefined)) {
          throw new DbsError('USAGE', '--secret-key-from and --secret-key-env/--secret-key-file are exclusive', { hint: '--secret-key-from keeps a reference read at each use; --secret-key-env copies the value now: give one' });
        }
        const wantsSecret = o.secretKeyFrom === undefined && takesCredentials(o.type as string) && (o.accessKey !== undefined || o.secretKeyEnv !== undefined || o.secretKeyFile !== undefined);
        const secretKey = wantsSecret
          ? await resolveSecret(ctx, { env: o.secretKeyEnv as string, file: o.secretKeyFile as string }, { flag: 'secret-key', what: 'S3 secret key', required: true, promptMessage: 'S3 secret key:' })
          : undefined;
        const r = await runPoolBind(
          {
            name,
            type: o.type as string,
            path: o.path as string | undefined,
            endpoint: o.endpoint as string | undefined,
            bucket: o.bucket as string | undefined,
            prefix: o.prefix as string | undefined,
            region: o.region as string | undefined,
            accessKey: o.accessKey as string | undefined,
            secretKey,
            secretKeyFrom: o.secretKeyFrom as string | undefined,
            pathStyle: o.pathStyle as boolean,
            remark: o.remark as string | undefined,
          },
          ctx,
        );
        for (const c of r.created) ctx.out.info(`created ${c}`);
        for (const w of r.warnings) ctx.out.warn(w);
        if (r.adopted) ctx.out.info(`adopted an existing dbs pool at ${r.pool.location} (id ${r.pool.id}); its backups can be indexed with: dbs catalog rebuild --pool ${r.pool.name}`);
        ctx.out.result(r, (x) => `bound pool ${x.pool.name} (${x.pool.id}) at ${x.pool.location}, latency ${x.pool.latencyMs} ms`);
      }),
    );

  pool
    .command('list')
    .description('list bound pools')
    .addHelpText('after', examplesText('dbs pool list', 'dbs pool list --json'))
    .action((_o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPoolList } = await import('../core/pools.js');
        const pools = runPoolList({}, ctx);
        ctx.out.result(pools, (ps) =>
          ps.length === 0
            ? 'no pools bound; bind one with: dbs pool bind NAME --type local --path DIR'
            : table(
                ['NAME', 'ID', 'STATUS', 'TYPE', 'LOCATION', 'PLANS', 'GATEWAY', 'CREATED', 'UPDATED'],
                ps.map((p) => [p.name, p.id, p.status, p.type, p.location, p.plans, p.viaGateway ? 'yes' : '-', fmtTime(p.createdAt), fmtTime(p.updatedAt)]),
              ),
        );
      }),
    );

  pool
    .command('show')
    .description('show one pool')
    .addHelpText('after', examplesText('dbs pool show offsite'))
    .argument('<pool>', 'pool id or name')
    .action((ref: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPoolShow, poolFields } = await import('../core/pools.js');
        const p = runPoolShow({ pool: ref }, ctx);
        ctx.out.result(p, (x) =>
          fields([
            ['Name', x.name],
            ['ID', x.id],
            ['Type', x.type],
            ['Location', x.location],
            ...poolFields(x),
            ['Status', x.status + (x.statusMessage ? ` (${x.statusMessage})` : '')],
            ['Latency', x.latencyMs === null ? '-' : `${x.latencyMs} ms`],
            ['Checked', fmtTime(x.checkedAt)],
            ['Plans', x.planNames.map((pl) => pl.name).join(', ') || '-'],
            ['Secret key', x.secretKey ? (x.secretKey.mode === 'reference' ? `from ${x.secretKey.from} (read at each use)` : 'copied into the catalog') : undefined],
            ['Gateway', x.viaGateway ? 'yes: connects from the gateway address (dbs gateway show)' : '-'],
            ['Remark', x.remark],
            ['Created', fmtTime(x.createdAt)],
            ['Updated', fmtTime(x.updatedAt)],
          ]),
        );
      }),
    );

  pool
    .command('update')
    .description('rename a pool, change its remark or credentials (new credentials are checked first)')
    .addHelpText('after', examplesText('dbs pool update offsite --name offsite-eu --remark "Frankfurt, 2nd copy"', 'dbs pool update offsite --access-key AKIA... --secret-key-file /etc/dbs/offsite.key'))
    .argument('<pool>', 'pool id or name')
    .option('--name <name>', 'new name')
    .option('--remark <text>', 'new remark')
    .option('--access-key <id>', 's3: new access key id')
    .option('--secret-key-env <var>', 's3: read the new secret key from this environment variable')
    .option('--secret-key-file <file>', 's3: read the new secret key from this file')
    .option('--secret-key-from <ref>', 's3: env:VAR or file:PATH: keep only this reference, read at each use')
    .action((ref: string, o: Record<string, string | undefined>, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPoolUpdate } = await import('../core/pools.js');
        const { resolveSecret } = await import('./secrets.js');
        const secretKey =
          o.secretKeyEnv !== undefined || o.secretKeyFile !== undefined
            ? await resolveSecret(ctx, { env: o.secretKeyEnv, file: o.secretKeyFile }, { flag: 'secret-key', what: 'S3 secret key', required: true })
            : undefined;
        const p = await runPoolUpdate({ pool: ref, name: o.name, remark: o.remark, accessKey: o.accessKey, secretKey, secretKeyFrom: o.secretKeyFrom }, ctx);
        for (const w of p.warnings) ctx.out.warn(w);
        ctx.out.result(p, (x) => `updated pool ${x.name} (${x.id})`);
      }),
    );

  pool
    .command('unbind')
    .description('forget a pool (its data stays where it is); refused while a plan uses it or the catalog knows backups in it')
    .addHelpText('after', examplesText('dbs pool unbind old-disk', 'dbs pool unbind old-disk --forget-backups'))
    .argument('<pool>', 'pool id or name')
    .option('--forget-backups', 'also forget the backup copies the catalog knows there (their data stays)')
    .action((ref: string, o: { forgetBackups?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPoolUnbind } = await import('../core/pools.js');
        const r = runPoolUnbind({ pool: ref, forgetBackups: Boolean(o.forgetBackups) }, ctx);
        ctx.out.result(r, (x) => `unbound pool ${x.pool.name} (${x.pool.id}); the data at ${x.pool.location} was left in place${x.forgotten.length ? `; ${x.forgotten.length} backup(s) whose only copy it held left the catalog` : ''}`);
      }),
    );

  pool
    .command('check')
    .description('probe a pool (write, read back, delete) and record online/offline and latency')
    .addHelpText('after', examplesText('dbs pool check offsite', 'dbs pool check offsite --json'))
    .argument('<pool>', 'pool id or name')
    .action((ref: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runPoolCheck } = await import('../core/pools.js');
        const r = await runPoolCheck({ pool: ref }, ctx);
        if (r.error) ctx.exitCode = exitCodeOf(r.error.code);
        ctx.out.result(r, (x) => (x.status === 'online' ? `pool ${x.pool} is online, latency ${x.latencyMs} ms${x.adoptedBackups?.length ? `; adopted ${x.adoptedBackups.length} backup(s) the catalog did not know: ${x.adoptedBackups.join(', ')}` : ''}${x.missingBackups?.length ? `; ${x.missingBackups.length} backup(s) missing: ${x.missingBackups.join(', ')}` : ''}` : `pool ${x.pool} is OFFLINE: ${x.error?.message} [${x.error?.code}]`));
      }),
    );
}
