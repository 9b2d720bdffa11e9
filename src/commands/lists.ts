// The filter and paging flags shared by `backup list`, `task list`, `restore list` and `plan
// history` (the paging itself is in commands/short.ts, which commander does not load). The
// lists themselves are core/inventory.ts.
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import { DEFAULT_PAGE, PAGE_NUMBERS } from './short.js';
import { numberOption } from './options.js';

export { DEFAULT_PAGE, pageFooter, pageLimit, type ListFlags } from './short.js';

export function addListOptions(cmd: Command, what: string, statuses: readonly string[], o: { perPlan?: boolean } = {}): Command {
  if (!o.perPlan) cmd.option('--plan <plan>', `only ${what} of this plan (id or name)`).option('--pool <pool>', `only ${what} in this pool`);
  return cmd
    .addOption(suggest(new Option('--type <type>', `only ${what} of this backup type (logical, physical, incremental, snapshot)`), ['logical', 'physical', 'incremental', 'snapshot']))
    .addOption(suggest(new Option('--status <status>', `only ${what} with this status (${statuses.join(', ')})`), statuses))
    .option('--since <when>', 'only from this time on: an age (24h, 7d) or a time (2026-12-01, "2026-12-01 02:30")')
    .option('--until <when>', 'only up to this time (same forms as --since)')
    .option('--before <id>', `page on: only ${what} older than this one (the last id of the previous page)`)
    .addOption(numberOption('--offset <n>', `skip the first N ${what}`, PAGE_NUMBERS.offset))
    .addOption(numberOption('--limit <n>', `at most N ${what} (default ${DEFAULT_PAGE}; with --json every one)`, PAGE_NUMBERS.limit));
}
