// `dbs alert ...`: rules over plans' outcomes and usage that notify targets. Thin: parse argv
// into an AlertSpec / AlertPatch, call core/alerts.ts, render.
import { Option, type Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import type { AlertView } from '../core/alerts.js';
import type { EventRecord } from '../store/catalog.js';
import { fields, fmtTime, table } from '../output/format.js';
import { examplesText } from './help.js';
import { repeatable } from './options.js';
import { suggest } from './complete.js';

/** What completion offers for --on and --notify: the rule and target kinds. */
const RULE_WORDS = ['failed', 'missed', 'no-success-for', 'duration>', 'cpu>', 'mem>', 'out<'];
const TARGET_WORDS = ['webhook:', 'command:', 'email:', 'ping:'];

function show(a: AlertView & { events?: EventRecord[] }): string {
  const base = fields([
    ['Name', a.name],
    ['ID', a.id],
    ['Plan', a.allPlans ? '(all plans)' : a.plan],
    ['Rules', a.rules.join(', ')],
    ['Targets', a.targets.join('\n')],
    ['Secret', a.secretFrom ? `from ${a.secretFrom}` : '-'],
    ['State', a.states.length ? a.states.map((s) => `${s.plan}: ${s.state}${s.reason ? ` (${s.reason})` : ''} since ${fmtTime(s.since)}`).join('\n') : 'not evaluated yet'],
    ['Remark', a.remark || '-'],
    ['Created', fmtTime(a.createdAt)],
    ['Updated', fmtTime(a.updatedAt)],
  ]);
  if (!a.events?.length) return base;
  return `${base}\n\nRecent events:\n${table(['LAST', 'LEVEL', 'TYPE', 'COUNT', 'MESSAGE'], a.events.map((e) => [fmtTime(e.lastAt), e.level, e.type, e.count, e.message]))}`;
}

const RULES_HELP = `
RULE (--on, repeatable; the alert fires while ANY rule holds):
  failed                 the plan's last task failed
  missed[>GRACE]         a scheduled run did not start within GRACE of its slot (default 10m)
  no-success-for DUR     no successful backup for DUR (e.g. 26h)
  duration>DUR           the last task took longer than DUR (e.g. 2h)
  cpu>N%                 the last successful task's average CPU (100% = one core)
  mem>SIZE               the last successful task's peak RSS (e.g. 2GiB)
  out<RATE               the last backup's bytes sent to the pool per second (e.g. 1MiB/s)
TARGET (--notify, repeatable):
  webhook:URL            POST the event as JSON (signed with X-Dbs-Signature when --secret-from)
  command:/abs/path      run it with the event JSON on stdin (minimal environment, 30s timeout)
  email:ADDR             mail through the SMTP server of the settings (config key "smtp")
  ping:URL               healthchecks-style: GET URL/start, URL on success, URL/fail on failure
A firing alert notifies once; it notifies again when it resolves. See README "Alerts and notifications".`;

interface CreateOpts {
  plan?: string;
  allPlans?: boolean;
  on?: string[];
  notify?: string[];
  secretFrom?: string;
  remark?: string;
}

export function registerAlert(program: Command, run: CommandRunner): void {
  const alert = program
    .command('alert')
    .description('alerts: rules over plans that notify webhooks, commands, mail and ping URLs')
    .addHelpText(
      'after',
      `${RULES_HELP}

Exit status: 2 for bad input (every problem listed; nothing is written), 3 for an unknown alert.`,
    );

  alert
    .command('create')
    .description('create an alert on one plan or on every plan')
    .argument('<name>', 'the alert name')
    .option('--plan <plan>', 'the plan it watches (name or id)')
    .option('--all-plans', 'watch every plan (also ones created later)')
    .addOption(suggest(repeatable(new Option('--on <rule>', 'a rule (repeatable): failed, missed, no-success-for 26h, duration>2h, cpu>80%, mem>2GiB, out<1MiB/s')), RULE_WORDS))
    .addOption(suggest(repeatable(new Option('--notify <target>', 'a target (repeatable): webhook:URL, command:PATH, email:ADDR, ping:URL')), TARGET_WORDS))
    .option('--secret-from <ref>', 'sign webhook bodies with the secret read at each delivery from env:VAR or file:PATH')
    .option('--remark <text>', 'a note')
    .addHelpText(
      'after',
      `${RULES_HELP}
${examplesText(
  'dbs alert create app-failed --plan app --on failed --notify webhook:https://hooks.example.com/dbs --secret-from env:DBS_HOOK_SECRET',
  "dbs alert create stale --all-plans --on 'no-success-for 26h' --on missed --notify email:ops@example.com",
  'dbs alert create hc --plan app --on failed --notify ping:https://hc-ping.com/your-uuid',
  "dbs alert create slow --plan app --on 'duration>2h' --on 'mem>2GiB' --notify command:/usr/local/bin/page-oncall",
)}`,
    )
    .action((name: string, o: CreateOpts, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { createAlert } = await import('../core/alerts.js');
        const a = createAlert({ name, plan: o.plan, allPlans: Boolean(o.allPlans), rules: o.on ?? [], targets: o.notify ?? [], secretFrom: o.secretFrom, remark: o.remark }, ctx);
        ctx.out.result(a, (x) => `created alert ${x.name} (${x.id}) on ${x.allPlans ? 'every plan' : `plan ${x.plan}`}: ${x.rules.join(', ')} -> ${x.targets.length} target(s)`);
      }),
    );

  alert
    .command('list')
    .description('list alerts and whether they fire')
    .addHelpText('after', examplesText('dbs alert list', 'dbs alert list --json'))
    .action((_o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { listAlerts } = await import('../core/alerts.js');
        ctx.out.result(listAlerts(ctx), (as) =>
          as.length === 0
            ? 'no alerts; create one with: dbs alert create NAME --plan PLAN --on failed --notify webhook:URL'
            : table(
                ['NAME', 'PLAN', 'STATE', 'RULES', 'TARGETS'],
                as.map((a) => {
                  const firing = a.states.filter((s) => s.state === 'firing');
                  return [a.name, a.allPlans ? '(all)' : a.plan, firing.length ? `firing (${firing.map((s) => s.plan).join(', ')})` : 'ok', a.rules.join(', '), a.targets.map((t) => t.split(':')[0]).join(', ')];
                }),
              ),
        );
      }),
    );

  alert
    .command('show')
    .description('show an alert: rules, targets, and its state per plan')
    .argument('<alert>', 'alert name or id')
    .addHelpText('after', examplesText('dbs alert show app-failed', 'dbs alert show app-failed --json'))
    .action((name: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { showAlert } = await import('../core/alerts.js');
        ctx.out.result(showAlert(name, ctx), show);
      }),
    );

  alert
    .command('update')
    .description('change an alert: --on and --notify replace its rules and targets')
    .argument('<alert>', 'alert name or id')
    .option('--rename <name>', 'a new name')
    .option('--plan <plan>', 'watch this plan instead')
    .option('--all-plans', 'watch every plan instead')
    .addOption(suggest(repeatable(new Option('--on <rule>', 'the new rules (repeatable; replaces all)')), RULE_WORDS))
    .addOption(suggest(repeatable(new Option('--notify <target>', 'the new targets (repeatable; replaces all)')), TARGET_WORDS))
    .option('--secret-from <ref>', 'a new signing secret reference: env:VAR or file:PATH')
    .option('--no-secret', 'stop signing webhook bodies')
    .option('--remark <text>', 'a new note')
    .addHelpText(
      'after',
      examplesText(
        "dbs alert update app-failed --on failed --on 'duration>3h'",
        'dbs alert update app-failed --notify webhook:https://hooks.example.com/new --secret-from file:/run/secrets/hook',
        'dbs alert update app-failed --no-secret',
        'dbs alert update stale --plan app',
      ),
    )
    .action((name: string, o: CreateOpts & { rename?: string; secret?: boolean }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { updateAlert } = await import('../core/alerts.js');
        const a = updateAlert(
          name,
          {
            name: o.rename,
            plan: o.plan,
            allPlans: o.allPlans,
            rules: o.on,
            targets: o.notify,
            secretFrom: o.secret === false ? null : o.secretFrom,
            remark: o.remark,
          },
          ctx,
        );
        ctx.out.result(a, (x) => `updated alert ${x.name}: ${x.rules.join(', ')} -> ${x.targets.length} target(s)`);
      }),
    );

  alert
    .command('delete')
    .description('delete an alert (a firing alert sends no "resolved")')
    .argument('<alert>', 'alert name or id')
    .addHelpText('after', examplesText('dbs alert delete app-failed', 'dbs alert delete app-failed --json'))
    .action((name: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { deleteAlert } = await import('../core/alerts.js');
        ctx.out.result(deleteAlert(name, ctx), (x) => `deleted alert ${x.name}`);
      }),
    );

  alert
    .command('test')
    .description('send a test notification to every target of an alert now')
    .argument('<alert>', 'alert name or id')
    .addHelpText('after', examplesText('dbs alert test app-failed', 'dbs alert test app-failed --json'))
    .action((name: string, _o: object, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { testAlert } = await import('../core/alerts.js');
        const r = await testAlert(name, ctx);
        ctx.out.result(r, (x) => x.deliveries.map((d) => `${d.ok ? 'delivered' : 'NOT delivered'}: ${d.target}${d.ok ? '' : ` (${d.error}; ${d.tries} tries)`}`).join('\n') || 'the alert has no targets');
        // A test that reached no target is a failure (exit 1): scripts can check a setup.
        if (r.deliveries.some((d) => !d.ok)) ctx.exitCode = 1;
      }),
    );
}
