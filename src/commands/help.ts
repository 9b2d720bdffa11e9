// Help for every command: an "Examples:" section on each leaf, required options marked, and the
// global options listed under each command (commander's "Global Options:").
import { Help, type Command, type Option } from 'commander';

/**
 * The "Examples:" section of a command's --help (for addHelpText('after', ...)). Each example
 * starts with "dbs <the command>", may go on after a trailing "\\" on an indented line, and may
 * end in "  # why". They are documentation: test/cli/help.test.ts checks every leaf has them and
 * that they name only options the command has.
 */
export function examplesText(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

const notes = new WeakMap<Option, string>();

/** Marks an option required in --help that commander cannot enforce (it may be asked on a terminal). */
export function markRequired(cmd: Command, flag: string, note: string): void {
  const o = cmd.options.find((x) => x.long === flag);
  if (!o) throw new Error(`markRequired: ${cmd.name()} has no ${flag}`);
  notes.set(o, note);
}

/** The mark --help shows for a required option ("required", "required; asked on a terminal"), if any. */
export function requiredNote(o: Option): string | undefined {
  return notes.get(o) ?? (o.mandatory ? 'required' : undefined);
}

/** Install on the program before any command is added (commands copy the help settings). */
export function configureHelp(program: Command): void {
  const base = new Help();
  program.configureHelp({
    showGlobalOptions: true,
    optionDescription: (o: Option) => {
      const d = base.optionDescription(o);
      const note = requiredNote(o);
      return note ? `${d} (${note})` : d;
    },
  });
}
