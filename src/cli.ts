// Builds the commander program (fresh per call), global options, and maps errors to exit
// codes. Command modules are small and load their core lazily, so start-up stays fast; the short
// read-only commands (plan/backup/task list) run without commander when argv is plain
// (commands/short.ts), so this module loads commander only when it builds the program.
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { loadSettings } from './config.js';
import { makeContext, type CommandContext } from './context.js';
import { DbsError, ExitCode, isAbort } from './errors.js';
import { Output } from './output/output.js';
import { makePrompter } from './output/prompt.js';
import { printable } from './output/sanitize.js';
import { sqliteVersion, systemClock, type Clock } from './store/catalog.js';
import type { PoolWrapper } from './storage/wrap.js';
import { fastRun } from './commands/short.js';

export interface CliIO {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  stdin: Readable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal: AbortSignal;
  clock?: Clock;
  /** Wrappers around every pool driver the run opens (tests: storage/faults.ts). */
  poolWrappers?: readonly PoolWrapper[];
  /** Always through commander, never the fast path of the short commands (tests compare the two). */
  noFastPath?: boolean;
}

export interface GlobalOptions {
  home?: string;
  config?: string;
  json?: boolean;
  quiet?: boolean;
  color?: boolean;
  yes?: boolean;
  verbose?: boolean;
}

/** Runs one command action with a fresh context; errors become exit codes in runCli. */
export type CommandRunner = (cmd: Command, fn: (ctx: CommandContext) => Promise<void>) => Promise<void>;

type RunState = { exitCode: number; out?: Output; json?: boolean };

/** Runs one action with the context the global options give (commander's and the fast path's). */
async function runAction(io: CliIO, state: RunState, g: GlobalOptions & { compress?: string }, fn: (ctx: CommandContext) => Promise<void>): Promise<void> {
  const color = g.color !== false && !io.env.NO_COLOR && Boolean(io.stderr.isTTY);
  const width = io.stdout.isTTY ? (io.stdout.columns ?? 80) : Number(io.env.COLUMNS) || undefined;
  const out = new Output(io, { json: Boolean(g.json), quiet: Boolean(g.quiet), color, verbose: Boolean(g.verbose), width });
  state.out = out;
  const settings = await loadSettings({ flags: { home: g.home, compression: g.compress }, env: io.env, cwd: io.cwd, configPath: g.config });
  const interactive = () => Boolean(io.stderr.isTTY) && !g.yes && !g.json && Boolean(io.stdin.isTTY);
  const ctx = makeContext({
    settings,
    out,
    prompt: makePrompter(interactive, () => io.stdin, io.stderr, io.signal),
    signal: io.signal,
    clock: io.clock ?? systemClock,
    env: io.env,
    cwd: io.cwd,
    yes: Boolean(g.yes),
    poolWrappers: io.poolWrappers,
  });
  try {
    await fn(ctx);
    state.exitCode = ctx.exitCode;
  } finally {
    ctx.close();
  }
}

/**
 * The commander program. With `argv`, only the command module it names is registered (see
 * MODULE_OF); without, every command (help and completion tests).
 */
export async function buildProgram(io: CliIO, state: RunState, argv?: readonly string[]): Promise<Command> {
  const [{ Command, CommanderError, Option }, { configureHelp }, { refuseRepeatedOptions }, { versionInfo }] = await Promise.all([
    import('commander'),
    import('./commands/help.js'),
    import('./commands/options.js'),
    import('./version.js'),
  ]);
  const program = new Command('dbs');
  program
    .description('dbs: backups of databases and storage into local or S3 pools, with a catalog, schedules and tested restores')
    .option('-V, --version', 'print the version, the commit, and the Node and SQLite versions inside')
    .option('--home <dir>', 'where the catalog lives (env DBS_HOME; default ~/.local/share/dbs)')
    .option('--config <file>', 'config file (env DBS_CONFIG; default: search dbs.config.*, .dbsrc*)')
    .option('--json', 'machine-readable output: one JSON document, or JSON lines with a "type"')
    .option('-q, --quiet', 'print results only, no progress or notices')
    .option('--no-color', 'no colours (also NO_COLOR)')
    .option('-y, --yes', 'assume yes; never prompt')
    .option('-v, --verbose', 'more detail on stderr')
    .addOption(new Option('--compress <kind>', 'default compression').choices(['zstd', 'gzip', 'none']).hideHelp())
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(printable(s)),
      // Under --json a usage error is the same JSON error line as every other error.
      outputError: (s, write) =>
        write(state.json ? `${JSON.stringify({ type: 'error', code: 'INVALID_ARGUMENT', message: s.replace(/^error: /, '').trim(), hint: 'see: dbs help COMMAND', exitCode: ExitCode.usage })}\n` : s),
    })
    .addHelpText(
      'after',
      `
Examples:
  dbs quickstart                                     try it end to end on a demo SQLite database
  dbs pool bind local --type local --path /var/backups/dbs
  dbs pool list --json

Exit codes: 0 ok, 1 failure, 2 usage/validation, 3 not found, 4 conflict/refused,
5 locked, 6 unreachable, 7 authentication/permission, 130 interrupted.`,
    );

  program.on('option:version', () => {
    const v = versionInfo(sqliteVersion);
    io.stdout.write(state.json ? `${JSON.stringify({ type: 'version', ...v })}\n`
      : `dbs ${v.version} (commit ${v.commit})\nNode.js ${v.node}, SQLite ${v.sqlite} (${v.sqliteBinding})\n`);
    throw new CommanderError(0, 'commander.version', v.version);
  });

  const run: CommandRunner = (cmd, fn) => runAction(io, state, cmd.optsWithGlobals(), fn);

  // Before any command exists: commands copy the help settings when they are made.
  configureHelp(program);
  // Only the command module the argv names is loaded and registered (start-up is most of what a
  // short command costs: issue 17); help, completion, an unknown or missing command get them all.
  const only = argv === undefined ? undefined : MODULE_OF[commandWord(argv) ?? ''];
  for (const name of only ? [only] : MODULES) (await REGISTRARS[name]())(program, run, io);
  // After every command exists: an option given twice is a usage error, for every command.
  refuseRepeatedOptions(program);
  return program;
}

type Registrar = (program: Command, run: CommandRunner, io: CliIO) => void;

/** Each command module, loaded on demand; the order is the order of `dbs --help`. */
const REGISTRARS = {
  misc: async (): Promise<Registrar> => (await import('./commands/misc.js')).registerMisc,
  pool: async (): Promise<Registrar> => (await import('./commands/pool.js')).registerPool,
  gateway: async (): Promise<Registrar> => (await import('./commands/gateway.js')).registerGateway,
  plan: async (): Promise<Registrar> => (await import('./commands/plan.js')).registerPlan,
  task: async (): Promise<Registrar> => (await import('./commands/task.js')).registerTask,
  backup: async (): Promise<Registrar> => (await import('./commands/backup.js')).registerBackup,
  restore: async (): Promise<Registrar> => (await import('./commands/restore.js')).registerRestore,
  alert: async (): Promise<Registrar> => (await import('./commands/alert.js')).registerAlert,
  daemon: async (): Promise<Registrar> => (await import('./commands/daemon.js')).registerDaemon,
  catalog: async (): Promise<Registrar> => (await import('./commands/catalog.js')).registerCatalog,
  apply: async (): Promise<Registrar> => (await import('./commands/apply.js')).registerApply,
  completion: async (): Promise<Registrar> => (await import('./commands/completion.js')).registerCompletion,
};
type ModuleName = keyof typeof REGISTRARS;
const MODULES = Object.keys(REGISTRARS) as ModuleName[];

/**
 * The module of each top-level command that can run alone. Not here, so they get every
 * command: `help` and `completion`/`__complete` (they walk the whole tree). test/cli/help.test.ts
 * checks this table against the full tree.
 */
export const MODULE_OF: Record<string, ModuleName | undefined> = Object.assign(Object.create(null) as Record<string, ModuleName | undefined>, {
  quickstart: 'misc',
  doctor: 'misc',
  events: 'misc',
  pool: 'pool',
  gateway: 'gateway',
  plan: 'plan',
  task: 'task',
  backup: 'backup',
  restore: 'restore',
  alert: 'alert',
  daemon: 'daemon',
  catalog: 'catalog',
  apply: 'apply',
  export: 'apply',
});

/** Global options that take a value (`--home DIR`): the word after them is not the command. */
const GLOBAL_WITH_VALUE = new Set(['--home', '--config', '--compress']);

/** The first word of argv that is not a global option or its value: the top-level command, if any. */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return a;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
  }
  return undefined;
}

/** Runs dbs with the given argv (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const dashdash = argv.indexOf('--');
  const state: RunState = { exitCode: 0, json: (dashdash < 0 ? argv : argv.slice(0, dashdash)).includes('--json') };
  try {
    const fast = io.noFastPath ? undefined : fastRun(argv);
    if (fast) {
      await runAction(io, state, fast.globals, (ctx) => fast.action(fast.options, ctx));
      return state.exitCode;
    }
    const program = await buildProgram(io, state, argv);
    await program.parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (e) {
    if (isCommanderError(e)) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      // commander already printed its message; usage errors exit 2.
      return e.exitCode === 0 ? 0 : ExitCode.usage;
    }
    const out = state.out ?? new Output(io, { json: argv.includes('--json'), quiet: false, color: false, verbose: argv.includes('--verbose') });
    if (isAbort(e) || io.signal.aborted) {
      out.error(new DbsError('INTERRUPTED', 'interrupted'));
      return ExitCode.interrupted;
    }
    if (e instanceof DbsError) {
      out.error(e);
      return e.exitCode;
    }
    out.error(new DbsError('INTERNAL', `internal error: ${(e as Error)?.message ?? String(e)}`, { hint: 'run again with --verbose and report it' }));
    if (argv.includes('--verbose') || argv.includes('-v')) io.stderr.write(`${printable((e as Error)?.stack ?? '')}\n`);
    return ExitCode.failure;
  }
}

/** A CommanderError (by its code: commander itself is loaded only when the program is built). */
function isCommanderError(e: unknown): e is Error & { code: string; exitCode: number } {
  const x = e as { code?: unknown; exitCode?: unknown } | null;
  return e instanceof Error && typeof x?.code === 'string' && x.code.startsWith('commander.') && typeof x.exitCode === 'number';
}
