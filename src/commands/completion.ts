// `dbs completion SHELL`, the hidden `dbs __complete WORDS...` its scripts call back, and
// `dbs help COMMAND...` (any depth: `dbs help plan create`).
import { resolve } from 'node:path';
import { Argument, type Command } from 'commander';
import type { CliIO, CommandRunner } from '../cli.js';
import type { NameKind } from '../core/completion.js';
import { DbsError } from '../errors.js';
import { complete, suggest, visibleSubcommands } from './complete.js';
import { SHELLS, completionScript, type Shell } from './completion-scripts.js';
import { examplesText } from './help.js';

/** The value of a global option among the typed words (`--home X` or `--home=X`). */
function typedValue(words: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < words.length; i++) {
    if (words[i] === '--') break;
    if (words[i] === flag) return words[i + 1] === '=' ? words[i + 2] : words[i + 1];
    if (words[i].startsWith(`${flag}=`)) return words[i].slice(flag.length + 1);
  }
  return undefined;
}

/** The catalog folder the completed command line would use; undefined when it cannot be told (then: no names). */
async function homeOf(words: readonly string[], io: CliIO): Promise<string | undefined> {
  const home = typedValue(words, '--home');
  try {
    const { loadSettings } = await import('../config.js');
    return (await loadSettings({ flags: { home }, env: io.env, cwd: io.cwd, configPath: typedValue(words, '--config') })).home;
  } catch {
    return home ? resolve(io.cwd, home) : undefined;
  }
}

export function registerCompletion(program: Command, run: CommandRunner, io: CliIO): void {
  program
      .command('completion')
      .description('print a shell completion script (commands, options, and plan, pool and backup names)')
      .addArgument(suggest(new Argument('<shell>', `${SHELLS.join(', ')}`), SHELLS))
      .addHelpText(
        'after',
        examplesText(
          'dbs completion bash > ~/.local/share/bash-completion/completions/dbs',
          'dbs completion zsh > "${fpath[1]}/_dbs"   # then: autoload -U compinit && compinit',
          'dbs completion fish > ~/.config/fish/completions/dbs.fish',
        ),
      )
      .action((shell: string, _o: object, cmd: Command) =>
        run(cmd, async (ctx) => {
          if (!(SHELLS as readonly string[]).includes(shell)) {
            throw new DbsError('USAGE', `no completion for the shell ${JSON.stringify(shell)}`, { hint: `choose one of: ${SHELLS.join(', ')} (e.g. source <(dbs completion bash))` });
          }
          const script = completionScript(shell as Shell);
          ctx.out.result({ shell, script }, (x) => x.script.trimEnd());
        }),
      );

  // Called by the scripts on every Tab: prints the mode and candidates, never an error, never
  // migrates or locks the catalog (read-only), never touches a pool.
  program
    .command('__complete', { hidden: true })
    .description('print completion candidates for the words of a dbs command line (used by the completion scripts)')
    .argument('[words...]', 'the words after "dbs", the last one being the word under the cursor')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (words: string[]) => {
      let out = 'words\n';
      try {
        const typed = words.length ? words : [''];
        // First without the catalog: most Tabs (commands, options) need no names, nor settings.
        const asked = new Set<NameKind>();
        let c = complete(program, typed, (k) => (asked.add(k), []));
        if (asked.size) {
          const home = await homeOf(words, io);
          const { completionNames } = await import('../core/completion.js');
          c = complete(program, typed, (k) => completionNames(home, k));
        }
        out = `${c.mode}\n${c.words.map((w) => `${w}\n`).join('')}`;
      } catch {
        // Nothing to offer rather than an error in the user's shell.
      }
      io.stdout.write(out);
    });

  program
      .command('help')
      .description('show the help of a command: dbs help plan create')
      .argument('[command...]', 'the command, e.g. plan create')
      .addHelpText('after', examplesText('dbs help plan create', 'dbs help backup'))
      .action((words: string[]) => {
        let cmd = program;
        for (const [i, w] of words.entries()) {
          const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
          if (!sub) {
            const known = visibleSubcommands(cmd).map((c) => c.name());
            throw new DbsError('USAGE', `unknown command "${['dbs', ...words.slice(0, i + 1)].join(' ')}"`, {
              hint: known.length ? `${cmd === program ? 'dbs' : `dbs ${words.slice(0, i).join(' ')}`} has: ${known.join(', ')}` : `${['dbs', ...words.slice(0, i)].join(' ')} has no subcommands`,
            });
          }
          cmd = sub;
        }
        cmd.help();
      });
}
