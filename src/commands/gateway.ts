// `dbs gateway ...`: the one egress address and bandwidth cap of the catalog. Thin: parse,
// call core/gateway.ts, render.
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { fields, fmtTime } from '../output/format.js';
import type { GatewayView } from '../core/gateway.js';
import { examplesText } from './help.js';

function show(g: GatewayView): string {
  return fields([
    ['Address', `${g.address} (IPv${g.family})`],
    ['Bandwidth', g.bandwidthText ? `${g.bandwidthShown} (${g.bandwidthText})` : g.bandwidthShown],
    ['Pools', g.pools.map((p) => `${p.name} (${p.type})`).join(', ') || '-'],
    ['Created', fmtTime(g.createdAt)],
    ['Updated', fmtTime(g.updatedAt)],
  ]);
}

export function registerGateway(program: Command, run: CommandRunner): void {
  const gateway = program
    .command('gateway')
    .description('the backup gateway: the address S3 pool and source traffic leaves from, and one bandwidth cap')
    .addHelpText(
      'after',
      `
RATE is a number and a unit per second: 20MiB/s, 500KB/s, 100Mbit/s, 1Gbit/s.

Examples:
  dbs gateway create --ip 192.0.2.10 --bandwidth 20MiB/s
  dbs gateway update --bandwidth 100Mbit/s
  dbs gateway update --no-bandwidth
  dbs gateway show --json
  dbs gateway delete --force

Exit status: 2 for a bad address or RATE (nothing changes), 3 when there is no gateway,
4 for a second gateway or a delete refused while S3 pools go through it.`,
    );

  gateway
    .command('create')
    .description('create the gateway after binding to its address for real')
    .addHelpText('after', examplesText('dbs gateway create --ip 192.0.2.10', 'dbs gateway create --ip 192.0.2.10 --bandwidth 20MiB/s'))
    .requiredOption('--ip <addr>', 'an IPv4 or IPv6 address of this host')
    .option('--bandwidth <rate>', 'cap for all pool traffic of a process, e.g. 20MiB/s (default: none)')
    .action((o: { ip: string; bandwidth?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runGatewayCreate } = await import('../core/gateway.js');
        const g = await runGatewayCreate({ ip: o.ip, bandwidth: o.bandwidth }, ctx);
        ctx.out.result(g, (x) => `created the gateway ${x.address}, bandwidth ${x.bandwidthShown}; ${x.pools.length} pool(s) go through it`);
      }),
    );

  gateway
    .command('show')
    .description('show the gateway and the pools whose traffic goes through it')
    .addHelpText('after', examplesText('dbs gateway show', 'dbs gateway show --json'))
    .action((_o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runGatewayShow } = await import('../core/gateway.js');
        ctx.out.result(runGatewayShow({}, ctx), show);
      }),
    );

  gateway
    .command('update')
    .description('change the address (bound to for real first) or the bandwidth cap')
    .addHelpText('after', examplesText('dbs gateway update --bandwidth 100Mbit/s', 'dbs gateway update --no-bandwidth', 'dbs gateway update --ip 192.0.2.11'))
    .option('--ip <addr>', 'new address of this host')
    .option('--bandwidth <rate>', 'new cap, e.g. 100Mbit/s')
    .option('--no-bandwidth', 'remove the cap')
    .action((o: { ip?: string; bandwidth?: string | boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runGatewayUpdate } = await import('../core/gateway.js');
        const bandwidth = o.bandwidth === false ? null : o.bandwidth === true ? undefined : o.bandwidth;
        const g = await runGatewayUpdate({ ip: o.ip, bandwidth }, ctx);
        ctx.out.result(g, (x) => `updated the gateway: ${x.address}, bandwidth ${x.bandwidthShown}`);
      }),
    );

  gateway
    .command('delete')
    .description('delete the gateway; refused while S3 pools go through it, unless --force')
    .addHelpText('after', examplesText('dbs gateway delete', 'dbs gateway delete --force   # S3 pools then connect from the default address'))
    .option('--force', 'delete anyway: those pools then connect from the default address, uncapped')
    .action((o: { force?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runGatewayDelete } = await import('../core/gateway.js');
        const r = runGatewayDelete({ force: Boolean(o.force) }, ctx);
        ctx.out.result(r, (x) =>
          x.released.length
            ? `deleted the gateway ${x.gateway.address}; ${x.released.map((p) => p.name).join(', ')} now connect from this host's default address, without a bandwidth cap`
            : `deleted the gateway ${x.gateway.address}`,
        );
      }),
    );
}
