// `dbs daemon`: runs scheduled plans until SIGTERM/SIGINT. Logs one line per happening to
// stdout: JSON (journald-friendly, the default) or text.
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import { examplesText } from './help.js';
import type { CommandRunner } from '../cli.js';
import { DbsError, ExitCode } from '../errors.js';
import { printableValue } from '../output/sanitize.js';
import { numberOption } from './options.js';

export function registerDaemon(program: Command, run: CommandRunner): void {
  program
    .command('daemon')
    .description('run scheduled plans until stopped (systemd, a container, or a terminal)')
    .addOption(numberOption('--concurrency <n>', 'tasks at once; the rest wait in a queue', { min: 1, max: 64 }, 2))
    .addOption(numberOption('--grace <seconds>', 'on SIGTERM/SIGINT, time running tasks get to finish before they are aborted', { min: 0, max: 604800, integer: false }, 300))
    .addOption(suggest(new Option('--log-format <format>', 'json (one object per line) or text').default('json'), ['json', 'text']))
    .addOption(numberOption('--reload <seconds>', 'how often to pick up plan changes made by other dbs processes', { min: 0.1, max: 86400, integer: false, example: '--reload 5' }, 5))
    .addOption(numberOption('--probe <seconds>', 'how often to probe offline sources and every pool', { min: 0.1, max: 86400, integer: false, example: '--probe 60' }, 60))
    .addOption(numberOption('--probe-timeout <seconds>', 'how long one pool probe may take before the pool counts as offline', { min: 0.1, max: 3600, integer: false, example: '--probe-timeout 10' }, 10))
    .option('--metrics-listen <addr:port>', 'serve Prometheus metrics on GET /metrics at this address, e.g. 127.0.0.1:9150')
    .addHelpText(
      'after',
      `
A run missed while no daemon was up runs once at start, not once per missed slot.
Exit status after SIGTERM/SIGINT: 0 when every running task finished within --grace,
130 when a task had to be aborted (it is recorded as interrupted).
Under systemd: see examples/systemd/dbs.service. Prometheus: see README "Metrics".
${examplesText('dbs daemon', 'dbs daemon --concurrency 4 --grace 600', 'dbs daemon --log-format text   # in a terminal', 'dbs daemon --metrics-listen 127.0.0.1:9150')}`,
    )
    .action((o: { concurrency: number; grace: number; logFormat: string; reload: number; probe: number; probeTimeout: number; metricsListen?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        if (o.logFormat !== 'json' && o.logFormat !== 'text') throw new DbsError('INVALID_ARGUMENT', `--log-format ${JSON.stringify(o.logFormat)} is not json or text`, { hint: 'use --log-format text for humans' });
        const stdout = ctx.out.streams.stdout;
        const log =
          o.logFormat === 'json'
            ? (e: object) => stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`)
            : (e: { level: string; message: string }) => stdout.write(`${new Date().toISOString()} ${e.level.padEnd(7)} ${printableValue(e.message)}\n`);
        const { runDaemon } = await import('../core/daemon.js');
        const r = await runDaemon({ concurrency: o.concurrency, graceSeconds: o.grace, reloadMs: o.reload * 1000, probeMs: o.probe * 1000, probeTimeoutMs: o.probeTimeout * 1000, metricsListen: o.metricsListen, log }, ctx);
        // A stop that aborted a running task is an interruption (130); a clean stop is 0.
        if (r.interrupted > 0) ctx.exitCode = ExitCode.interrupted;
      }),
    );
}
