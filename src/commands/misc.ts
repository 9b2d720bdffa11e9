// `dbs quickstart`, `dbs doctor`, `dbs events`.
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { fmtBytes, fmtTime, table } from '../output/format.js';
import { numberOption } from './options.js';
import { examplesText } from './help.js';

export function registerMisc(program: Command, run: CommandRunner): void {
  program
    .command('quickstart')
    .description('try dbs end to end on a demo SQLite database: pool, plan, run, restore, check')
    .addHelpText('after', examplesText('dbs quickstart', 'dbs quickstart --home /tmp/dbs-demo   # a throwaway catalog'))
    .action((_o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runQuickstart } = await import('../core/quickstart.js');
        const r = await runQuickstart({}, ctx);
        ctx.out.result(r, (x) =>
          [
            `quickstart OK: backup ${x.backup.id} of ${x.database} (${fmtBytes(x.backup.rawBytes)} -> ${fmtBytes(x.backup.storedBytes)}) restored to ${x.restoredTo} and checked.`,
            `catalog: ${x.home}`,
            '',
            'Look around:',
            `  dbs plan show ${x.plan.name}`,
            `  dbs backup show ${x.backup.id}`,
            `  dbs task list`,
            '',
            'Next, with your own servers:',
            ...x.next.map((n) => `  ${n}`),
          ].join('\n'),
        );
      }),
    );

  program
    .command('doctor')
    .description('check the tools each engine needs and where dbs keeps its state')
    .addHelpText('after', examplesText('dbs doctor', 'dbs doctor --json'))
    .action((_o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runDoctor } = await import('../core/doctor.js');
        const r = await runDoctor({}, ctx);
        ctx.out.result(r, (x) =>
          [
            `dbs ${x.dbs} on Node.js ${x.node}`,
            `home:    ${x.home}`,
            `catalog: ${x.catalog.path} (schema ${x.catalog.schemaVersion})`,
            `config:  ${x.configFile ?? '(none)'}`,
            '',
            table(
              ['ENGINE', 'TOOL', 'FOUND', 'VERSION', 'FOR'],
              x.engines.flatMap((e) => (e.error ? [[e.kind, '-', 'error', e.error, '']] : e.tools.map((t) => [e.kind, t.name, t.found ? 'yes' : 'NO', t.version ?? '-', t.purpose]))),
            ),
            '',
            'Data path (optional: without these, backups are slower, not broken):',
            table(
              ['TOOL', 'FOUND', 'VERSION', 'FOR'],
              x.dataPath.map((t) => [t.name, t.found ? 'yes' : 'no', t.version ?? '-', t.purpose]),
            ),
          ].join('\n'),
        );
      }),
    );

  program
    .command('events')
    .description('what happened to pools and plans, newest first')
    .addHelpText('after', examplesText('dbs events', 'dbs events --plan shop-nightly --limit 20'))
    .option('--plan <plan>', 'only events of this plan')
    .addOption(numberOption('--limit <n>', 'at most N events', { min: 1, max: 1_000_000, example: '--limit 20' }, 50))
    .action((o: { plan?: string; limit: number }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const catalog = ctx.catalog();
        let resourceId: string | undefined;
        if (o.plan) {
          const { findPlanOrThrow } = await import('../core/plans.js');
          resourceId = findPlanOrThrow(catalog, o.plan).id;
        }
        const events = catalog.listEvents({ resourceId, limit: o.limit });
        ctx.out.result(events, (es) =>
          es.length === 0 ? 'no events' : table(['LAST', 'LEVEL', 'TYPE', 'RESOURCE', 'COUNT', 'MESSAGE'], es.map((e) => [fmtTime(e.lastAt), e.level, e.type, e.resourceId, e.count, e.message])),
        );
      }),
    );
}
