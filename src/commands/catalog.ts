// `dbs catalog ...`
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { examplesText } from './help.js';

type Opts = Record<string, string | boolean | undefined>;

export function registerCatalog(program: Command, run: CommandRunner): void {
  const catalog = program.command('catalog').description('the catalog itself: rebuild it from what the pools hold');
  catalog
    .command('rebuild')
    .description('recreate plans and backups (copies, chains, retention) from the files of a pool; merges, never duplicates; rebuilt plans are paused until `dbs plan update` gives them their credentials')
    .option('--pool <pool>', 'the pool to read (bind it first with dbs pool bind)')
    .option('--all-pools', 'every bound pool')
    .addHelpText(
      'after',
      `
After a host is lost: bind the pool another catalog wrote (dbs pool bind disk --type local
--path /mnt/backups), rebuild, then give each plan its credentials again (dbs plan update
shop-nightly --password-env DB_PW).
${examplesText('dbs catalog rebuild --pool disk', 'dbs catalog rebuild --all-pools')}`,
    )
    .action((o: Opts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runCatalogRebuild } = await import('../core/rebuild.js');
        const r = await runCatalogRebuild({ pool: o.pool as string | undefined, allPools: Boolean(o.allPools) }, ctx);
        ctx.out.result(r, (xs) =>
          xs
            .map((x) =>
              [
                `pool ${x.pool}: ${x.plans.length} plan(s) recreated${x.plans.length ? ` (${x.plans.join(', ')}; paused: they need credentials, see dbs plan update)` : ''}, ${x.backups.length} backup(s) adopted, ${x.copies.length} copie(s) recorded`,
                ...x.skipped.map((s) => `  skipped ${s.key}: ${s.reason}`),
              ].join('\n'),
            )
            .join('\n'),
        );
      }),
    );
}
