// `dbs daemon`: runs scheduled plans until SIGTERM/SIGINT. Logs one line per happening to
// stdout: JSON (journald-friendly, the default) or text.
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import { DbsError } from '../errors.js';

export function registerDaemon(program: Command, run: CommandRunner): void {
  program
    .command('daemon')
    .description('run scheduled plans until stopped (systemd, a container, or a terminal)')
    .option('--concurrency <n>', 'tasks at once; the rest wait in a queue', '2')
    .option('--grace <seconds>', 'on SIGTERM/SIGINT, time running tasks get to finish before they are aborted', '300')
    .option('--log-format <format>', 'json (one object per line) or text', 'json')
    .option('--reload <seconds>', 'how often to pick up plan changes made by other dbs processes', '5')
    .option('--probe <seconds>', 'how often to probe offline sources and pools', '60')
    .addHelpText(
      'after',
      `
A run missed while no daemon was up runs once at start, not once per missed slot.
Examples:
  dbs daemon --concurrency 2
  systemd: see examples/systemd/dbs.service`,
    )
    .action((o: { concurrency: string; grace: string; logFormat: string; reload: string; probe: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const num = (v: string, flag: string, min: number) => {
          const n = Number(v);
          if (!Number.isFinite(n) || n < min || v.trim() === '') throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)} must be a number of at least ${min}`, { hint: `e.g. ${flag} 2` });
          return n;
        };
        if (o.logFormat !== 'json' && o.logFormat !== 'text') throw new DbsError('INVALID_ARGUMENT', `--log-format ${JSON.stringify(o.logFormat)} is not json or text`, { hint: 'use --log-format text for humans' });
        const concurrency = num(o.concurrency, '--concurrency', 1);
        if (!Number.isInteger(concurrency)) throw new DbsError('INVALID_ARGUMENT', '--concurrency must be a whole number', { hint: 'e.g. --concurrency 2' });
        const stdout = ctx.out.streams.stdout;
        const log =
          o.logFormat === 'json'
            ? (e: object) => stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`)
            : (e: { level: string; message: string }) => stdout.write(`${new Date().toISOString()} ${e.level.padEnd(7)} ${e.message}\n`);
        const { runDaemon } = await import('../core/daemon.js');
        await runDaemon({ concurrency, graceSeconds: num(o.grace, '--grace', 0), reloadMs: num(o.reload, '--reload', 0.1) * 1000, probeMs: num(o.probe, '--probe', 0.1) * 1000, log }, ctx);
      }),
    );
}
