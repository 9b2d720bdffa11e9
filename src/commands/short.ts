// The short read-only commands (`plan list`, `backup list`, `task list`): their actions, and the
// fast path that runs them without commander. Start-up is all such a command costs, and loading
// commander and building its command tree was a third of it (issue 17: bench/results/startup.md).
//
// The fast path takes only argv it understands completely: the two command words, the global
// flags (--home, --config, --json, -q/--quiet, --no-color, -y/--yes, -v/--verbose) and the
// command's own options, each at most once, every value well-formed. Anything else (--help, an
// unknown or repeated option, a missing or bad value, `--`, an extra word) goes to commander,
// which gives its usual answer or error. So the fast path changes how fast a command starts,
// never what it does: test/cli/short.test.ts runs each argv both ways and compares.
// This module imports no commander (test/cli/short.test.ts checks what a short command loads).
import type { CommandContext } from '../context.js';
import type { GlobalOptions } from '../cli.js';
import type { PlanView } from '../core/plans.js';
import type { ListFilterInput, ListPage } from '../core/inventory.js';
import type { BackupGroup } from '../store/catalog.js';
import { fmtBytes, fmtDuration, fmtTime, table } from '../output/format.js';
import { parseNumber, type NumberSpec } from './values.js';

// ---- paging, shared with the other lists (commands/lists.ts) ---------------------------------

/** The filter and paging flags of every list: what core's lists take (core/inventory.ts). */
export type ListFlags = ListFilterInput;

/** Human lists show this many rows unless --limit; --json lists every match unless --limit. */
export const DEFAULT_PAGE = 50;

/** The ranges of the paging flags of every list (commands/lists.ts makes them commander options). */
export const PAGE_NUMBERS: Record<'offset' | 'limit', NumberSpec> = {
  offset: { min: 0, max: Number.MAX_SAFE_INTEGER, example: '--offset 50' },
  limit: { min: 1, max: Number.MAX_SAFE_INTEGER, example: '--limit 20' },
};

/** The limit a list runs with: the flag, else a page for people and everything for --json. */
export function pageLimit(ctx: CommandContext, o: ListFlags): number | undefined {
  return o.limit ?? (ctx.out.json ? undefined : DEFAULT_PAGE);
}

/** After a human page that is not the last: how to page on (stderr). */
export function pageFooter(ctx: CommandContext, shown: number, more: boolean, lastId: string | undefined): void {
  if (ctx.out.json || !more || !lastId) return;
  ctx.out.info(`${shown} shown; more match: the same command with --before ${lastId} shows the next page`);
}

type Cell = string | number | null | undefined;

/** Prints a page of a list (a table, or JSON lines that stream), then how to page on. */
export async function printPage<T>(ctx: CommandContext, page: ListPage<T>, o: { empty: string; head: string[]; cells: (r: T) => Cell[]; id: (r: T) => string }): Promise<void> {
  let last: string | undefined;
  let shown = 0;
  await ctx.out.resultList(page.rows, (x) => {
    shown = x.length;
    last = x.length ? o.id(x[x.length - 1]!) : undefined;
    return x.length === 0 ? o.empty : table(o.head, x.map(o.cells));
  });
  pageFooter(ctx, shown, page.more(), last);
}

/** Prints the counts and sizes of a --group-by of backups or tasks (`noun`: BACKUPS, TASKS). */
function printGroups(ctx: CommandContext, g: { groupBy: string; groups: BackupGroup[] }, noun: string, empty: string): void {
  ctx.out.result(g, (x) =>
    x.groups.length === 0
      ? empty
      : table(
          [x.groupBy.toUpperCase(), noun, 'RAW', 'STORED', 'NEWEST', 'OLDEST'],
          x.groups.map((r) => [r.key, r.count, fmtBytes(r.rawBytes), fmtBytes(r.storedBytes), fmtTime(r.newest), fmtTime(r.oldest)]),
        ),
  );
}

// ---- the actions (commander's registration calls them too) -----------------------------------

/** A plan's state with why: "paused (reason)", "unavailable (pool p offline)", "failed". */
export function stateText(p: Pick<PlanView, 'state' | 'pauseReason' | 'unavailableReason'>): string {
  if (p.state === 'paused') return p.pauseReason ? `paused (${p.pauseReason})` : 'paused';
  if (p.state === 'unavailable') return `unavailable (${p.unavailableReason})`;
  return p.state;
}

export async function planList(o: { pool?: string }, ctx: CommandContext): Promise<void> {
  const { runPlanList } = await import('../core/plan-view.js');
  const plans = runPlanList({ pool: o.pool }, ctx);
  ctx.out.result(plans, (ps) =>
    ps.length === 0
      ? 'no plans; create one with: dbs plan create NAME --source URL --pool POOL'
      : table(
          ['NAME', 'STATUS', 'LAST RUN', 'NEXT RUN', 'POOL', 'BACKUP TYPE', 'LAST RESULT', 'SOURCE TYPE', 'SOURCE', 'STRATEGY', 'TIMER', 'ASSOCIATED PLAN', 'RETENTION', 'ID', 'CREATED', 'UPDATED'],
          ps.map((p) => [p.name, stateText(p), fmtTime(p.lastRun?.at), fmtTime(p.nextRun), p.poolName, p.backupType, p.lastRun?.result ?? '-', p.sourceKind, p.source.url, p.strategy, p.timer, p.associatedPlans.join(', ') || '-', p.retentionText, p.id, fmtTime(p.createdAt), fmtTime(p.updatedAt)]),
        ),
  );
}

export async function backupList(o: ListFlags & { groupBy?: string }, ctx: CommandContext): Promise<void> {
  const { runBackupPage, runBackupGroups } = await import('../core/inventory.js');
  if (o.groupBy !== undefined) return printGroups(ctx, runBackupGroups({ ...o, groupBy: o.groupBy }, ctx), 'BACKUPS', 'no backups');
  await printPage(ctx, runBackupPage({ ...o, limit: pageLimit(ctx, o) }, ctx), {
    empty: 'no backups',
    head: ['BACKUP', 'PLAN', 'ENDED', 'STORED', 'STATUS', 'TYPE', 'POOLS', 'RAW', 'RATIO'],
    cells: (b) => [b.id, b.planName, fmtTime(b.endedAt), fmtBytes(b.storedBytes), b.status, `${b.sourceKind} ${b.backupType}`, b.copies.map((c) => (c.status === 'ready' ? c.pool : `${c.pool} (${c.status})`)).join(', ') || b.poolName, fmtBytes(b.rawBytes), b.ratio ?? '-'],
    id: (b) => b.id,
  });
}

export async function taskList(o: ListFlags & { groupBy?: string }, ctx: CommandContext): Promise<void> {
  const { runTaskPage, runTaskGroups } = await import('../core/inventory.js');
  if (o.groupBy !== undefined) return printGroups(ctx, runTaskGroups({ ...o, groupBy: o.groupBy }, ctx), 'TASKS', 'no tasks');
  await printPage(ctx, runTaskPage({ ...o, limit: pageLimit(ctx, o) }, ctx), {
    empty: 'no tasks',
    head: ['TASK', 'PLAN', 'STATUS', 'RESULT', 'STARTED', 'ENDED', 'DURATION', 'TRIGGER', 'STORED', 'RAW'],
    cells: (t) => [t.id, t.planName, t.status, t.result, fmtTime(t.startedAt), fmtTime(t.endedAt), fmtDuration(t.durationMs), t.trigger, fmtBytes(t.storedBytes), fmtBytes(t.rawBytes)],
    id: (t) => t.id,
  });
}

// ---- the fast path -------------------------------------------------------------------------

/** An option the fast path knows: the attribute commander gives it, and what its value is. */
export interface FastOption {
  key: string;
  /** none: a flag (true; --no-color: false); string; number: parsed with its range. */
  value: 'none' | 'string' | 'number';
  number?: NumberSpec;
  /** The value a flag sets (default true). */
  flagValue?: boolean;
}

type Action = (o: Record<string, unknown>, ctx: CommandContext) => Promise<void>;

/** The global flags the fast path takes (the rest of cli.ts's globals send argv to commander). */
export const FAST_GLOBALS: Record<string, FastOption> = {
  '--home': { key: 'home', value: 'string' },
  '--config': { key: 'config', value: 'string' },
  '--json': { key: 'json', value: 'none' },
  '--quiet': { key: 'quiet', value: 'none' },
  '-q': { key: 'quiet', value: 'none' },
  '--no-color': { key: 'color', value: 'none', flagValue: false },
  '--yes': { key: 'yes', value: 'none' },
  '-y': { key: 'yes', value: 'none' },
  '--verbose': { key: 'verbose', value: 'none' },
  '-v': { key: 'verbose', value: 'none' },
};

const LIST_FLAGS: Record<string, FastOption> = {
  '--plan': { key: 'plan', value: 'string' },
  '--pool': { key: 'pool', value: 'string' },
  '--type': { key: 'type', value: 'string' },
  '--status': { key: 'status', value: 'string' },
  '--since': { key: 'since', value: 'string' },
  '--until': { key: 'until', value: 'string' },
  '--before': { key: 'before', value: 'string' },
  '--offset': { key: 'offset', value: 'number', number: PAGE_NUMBERS.offset },
  '--limit': { key: 'limit', value: 'number', number: PAGE_NUMBERS.limit },
  '--group-by': { key: 'groupBy', value: 'string' },
};

/** The commands with a fast path: their own options (each is checked against commander's in test/cli/short.test.ts). */
export const FAST_COMMANDS: Record<string, { options: Record<string, FastOption>; action: Action }> = {
  'plan list': { options: { '--pool': { key: 'pool', value: 'string' } }, action: planList as Action },
  'backup list': { options: LIST_FLAGS, action: backupList as Action },
  'task list': { options: LIST_FLAGS, action: taskList as Action },
};

export interface FastRun {
  globals: GlobalOptions;
  options: Record<string, unknown>;
  action: Action;
}

/** argv as a fast-path run, or undefined: commander takes it (see the top of this file). */
export function fastRun(argv: readonly string[]): FastRun | undefined {
  const words: string[] = [];
  const given = new Set<string>();
  const globals: Record<string, unknown> = {};
  const options: Record<string, unknown> = {};
  let spec: (typeof FAST_COMMANDS)[string] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      words.push(a);
      if (words.length > 2) return undefined;
      if (words.length === 2) {
        spec = FAST_COMMANDS[words.join(' ')];
        if (!spec) return undefined;
      }
      continue;
    }
    if (a === '-' || a === '--') return undefined;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    // Commander takes a command's own options after its words only, and the global ones anywhere.
    const own = spec?.options[flag];
    const opt = own ?? FAST_GLOBALS[flag];
    if (!opt || given.has(opt.key)) return undefined;
    given.add(opt.key);
    const into = own ? options : globals;
    if (opt.value === 'none') {
      if (eq > 0) return undefined;
      into[opt.key] = opt.flagValue ?? true;
      continue;
    }
    let v: string | undefined;
    if (eq > 0) v = a.slice(eq + 1);
    else {
      v = argv[++i];
      if (v === undefined || v.startsWith('-')) return undefined;
    }
    if (opt.value === 'number') {
      try {
        into[opt.key] = parseNumber(v, flag, opt.number!);
      } catch {
        return undefined; // commander says what is wrong with it
      }
    } else into[opt.key] = v;
  }
  if (!spec || words.length !== 2) return undefined;
  return { globals: globals as GlobalOptions, options, action: spec.action };
}
