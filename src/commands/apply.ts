// `dbs apply -f FILE` and `dbs export [-o FILE]`: configuration as code (core/apply.ts).
import type { Command } from 'commander';
import type { CommandRunner } from '../cli.js';
import type { ApplyResult, FieldChange } from '../core/apply.js';
import { examplesText, markRequired } from './help.js';

function value(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function fieldText(f: FieldChange, action: string): string {
  if (action === 'create') return `${f.field}=${value(f.to)}`;
  return `${f.field}: ${f.from === undefined ? '(none)' : value(f.from)} -> ${f.to === undefined ? '(none)' : value(f.to)}`;
}

function render(r: ApplyResult): string {
  const verb = (a: string) => (r.dryRun ? { create: 'would create', update: 'would update', unchanged: 'unchanged', delete: 'would delete' } : { create: 'created', update: 'updated', unchanged: 'unchanged', delete: 'deleted' })[a as 'create'];
  const lines = r.changes.map((c) => `${c.kind === 'pool' && c.action === 'delete' ? (r.dryRun ? 'would unbind' : 'unbound') : verb(c.action)} ${c.kind} ${c.name}${c.fields.length ? (c.action === 'create' ? ` (${c.fields.map((f) => fieldText(f, c.action)).join(', ')})` : `\n    ${c.fields.map((f) => fieldText(f, c.action)).join('\n    ')}`) : ''}`);
  const changed = r.changes.filter((c) => c.action !== 'unchanged').length;
  lines.push(changed === 0 ? 'no changes' : `${changed} change(s)${r.dryRun ? ' planned (--dry-run: nothing written)' : ''}`);
  if (r.untouched.length) lines.push(`left alone (not in the file): ${r.untouched.map((u) => `${u.kind} ${u.name}`).join(', ')}`);
  return lines.join('\n');
}

export function registerApply(program: Command, run: CommandRunner): void {
  const apply = program
    .command('apply')
    .description('create or update the gateway, pools and plans from one YAML file; prints what changed (objects not in the file are left alone, unless --prune)')
    .option('-f, --file <file.yaml>', 'the configuration file (see README "Configuration as code")')
    .option('--dry-run', 'only show the changes; write nothing')
    .option('--prune', 'also delete the plans and unbind the pools the file does not name (refused while they hold backups; pool data stays)')
    .addHelpText(
      'after',
      `
The whole file is checked first (every problem at once, exit 2, nothing written); each object
then goes through the checks of plan create/update, pool bind/update and gateway create/update.
Secrets are references only: password: {from: "env:VAR"} or {from: "file:PATH"}.
${examplesText('dbs apply -f examples/dbs.yaml --dry-run', 'dbs apply -f /etc/dbs/dbs.yaml', 'dbs apply -f dbs.yaml --json', 'dbs apply -f dbs.yaml --prune --dry-run   # what --prune would remove').trimEnd()}`,
    );
  markRequired(apply, '--file', 'required');
  apply.action((o: { file?: string; dryRun?: boolean; prune?: boolean }, cmd: Command) =>
    run(cmd, async (ctx) => {
      const { DbsError } = await import('../errors.js');
      if (!o.file) throw new DbsError('USAGE', 'missing -f FILE', { hint: 'e.g. dbs apply -f dbs.yaml' });
      const { runApply } = await import('../core/apply.js');
      const r = await runApply({ file: o.file, dryRun: Boolean(o.dryRun), prune: Boolean(o.prune) }, ctx);
      for (const w of r.warnings) ctx.out.warn(w);
      ctx.out.result(r, render);
    }),
  );

  program
    .command('export')
    .description('write the catalog\'s gateway, pools and plans as a dbs apply file (secrets as references only)')
    .option('-o, --output <file.yaml>', 'write to this file instead of stdout')
    .addHelpText('after', examplesText('dbs export', 'dbs export -o dbs.yaml', 'dbs export --json'))
    .action((o: { output?: string }, cmd: Command) =>
      run(cmd, async (ctx) => {
        const { runExport } = await import('../core/apply.js');
        const r = await runExport({}, ctx);
        for (const p of r.problems) ctx.out.warn(p);
        if (o.output) {
          const { writeFileSync } = await import('node:fs');
          const { resolve } = await import('node:path');
          const path = resolve(ctx.cwd, o.output);
          writeFileSync(path, r.text);
          ctx.out.result({ file: path, config: r.config, problems: r.problems }, (x) => `wrote ${x.file}`);
        } else ctx.out.result({ config: r.config, problems: r.problems }, () => r.text.trimEnd());
      }),
    );
}
