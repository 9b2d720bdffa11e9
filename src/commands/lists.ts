// The filter and paging flags shared by `backup list`, `task list` and `restore list`, and
// the page footer. The lists themselves are core/inventory.ts.
import { Option, type Command } from 'commander';
import { suggest } from './complete.js';
import type { CommandContext } from '../context.js';
import { numberOption } from './options.js';

export interface ListFlags {
  plan?: string;
  pool?: string;
  type?: string;
  status?: string;
  since?: string;
  until?: string;
  before?: string;
  offset?: number;
  limit?: number;
}

/** Human lists show this many rows unless --limit; --json lists every match unless --limit. */
export const DEFAULT_PAGE = 50;

export function addListOptions(cmd: Command, what: string, statuses: readonly string[], o: { perPlan?: boolean } = {}): Command {
  if (!o.perPlan) cmd.option('--plan <plan>', `only ${what} of this plan (id or name)`).option('--pool <pool>', `only ${what} in this pool`);
  return cmd
    .addOption(suggest(new Option('--type <type>', `only ${what} of this backup type (logical, physical, incremental, snapshot)`), ['logical', 'physical', 'incremental', 'snapshot']))
    .addOption(suggest(new Option('--status <status>', `only ${what} with this status (${statuses.join(', ')})`), statuses))
    .option('--since <when>', 'only from this time on: an age (24h, 7d) or a time (2026-12-01, "2026-12-01 02:30")')
    .option('--until <when>', 'only up to this time (same forms as --since)')
    .option('--before <id>', `page on: only ${what} older than this one (the last id of the previous page)`)
    .addOption(numberOption('--offset <n>', `skip the first N ${what}`, { min: 0, max: Number.MAX_SAFE_INTEGER, example: '--offset 50' }))
    .addOption(numberOption('--limit <n>', `at most N ${what} (default ${DEFAULT_PAGE}; with --json every one)`, { min: 1, max: Number.MAX_SAFE_INTEGER, example: '--limit 20' }));
}

/** The limit a list runs with: the flag, else a page for people and everything for --json. */
export function pageLimit(ctx: CommandContext, o: ListFlags): number | undefined {
  return o.limit ?? (ctx.out.json ? undefined : DEFAULT_PAGE);
}

/** After a human page that is not the last: how to page on (stderr). */
export function pageFooter(ctx: CommandContext, shown: number, more: boolean, lastId: string | undefined): void {
  if (ctx.out.json || !more || !lastId) return;
  ctx.out.info(`${shown} shown; more match: the same command with --before ${lastId} shows the next page`);
}
