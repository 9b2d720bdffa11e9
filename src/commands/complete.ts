// The candidates of shell completion, from the commander tree itself: the words typed so far
// (after "dbs") and the word under the cursor -> commands, options, option values and
// arguments. Names of plans, pools, backups, tasks and restores come from a lookup the caller
// gives (the catalog, read-only). Pure: no output, no catalog of its own.
import { Help, type Argument, type Command, type Option } from 'commander';
import type { NameKind } from '../core/completion.js';
import { isRepeatable } from './options.js';

/** What the shell should offer: these words, or the shell's own file or directory completion. */
export interface Completion {
  mode: 'words' | 'files' | 'dirs';
  words: string[];
}

export type NameLookup = (kind: NameKind) => string[];

const suggested = new WeakMap<Option | Argument, readonly string[]>();

/** Values completion offers for an option or argument that is not a commander choice (--type, --every, SHELL). */
export function suggest<T extends Option | Argument>(x: T, values: readonly string[]): T {
  suggested.set(x, values);
  return x;
}

const NAME_KINDS: readonly NameKind[] = ['plan', 'pool', 'backup', 'task', 'restore', 'alert'];

/** What a value placeholder (<pool>, [plan], <file>, <dir>) asks for. */
function valueKind(placeholder: string): NameKind | 'files' | 'dirs' | undefined {
  const p = placeholder.toLowerCase();
  if ((NAME_KINDS as readonly string[]).includes(p)) return p as NameKind;
  if (p === 'file') return 'files';
  if (p === 'dir') return 'dirs';
  return undefined;
}

function placeholderOf(o: Option): string {
  return /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? '';
}

function values(x: Option | Argument, placeholder: string, names: NameLookup): Completion {
  const fixed = suggested.get(x) ?? x.argChoices;
  if (fixed) return { mode: 'words', words: [...fixed] };
  // `restore list --backup <id>`: the option's name says which ids.
  const kind = valueKind(placeholder) ?? ('long' in x && x.long === '--backup' ? 'backup' : undefined);
  if (kind === 'files' || kind === 'dirs') return { mode: kind, words: [] };
  return { mode: 'words', words: kind ? names(kind) : [] };
}

function chain(cmd: Command): Command[] {
  const out: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) out.push(c);
  return out;
}

const hidden = (o: Option) => o.hidden;
const takesValue = (o: Option) => o.required || o.optional;

function findOption(cmd: Command, flag: string): Option | undefined {
  for (const c of chain(cmd)) {
    const o = c.options.find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

const help = new Help();

/** The subcommands --help lists (not the hidden ones, nor a group's implicit "help"). */
export function visibleSubcommands(cmd: Command): Command[] {
  return help.visibleCommands(cmd).filter((c) => cmd.commands.includes(c));
}

const visibleCommands = (cmd: Command) => visibleSubcommands(cmd).map((c) => c.name());

/**
 * The candidates for the last of `words` (the word under the cursor, possibly ""), given the
 * words before it.
 */
export function complete(program: Command, typed: readonly string[], names: NameLookup): Completion {
  const words = [...typed];
  let cur = words.pop() ?? '';
  // bash splits "--pool=ba" into "--pool" "=" "ba" (the cursor after "=": "--pool" "="). The
  // value is completed as after "--pool ba"; right after "=", candidates keep the "=" bash replaces.
  let prefix = '';
  if (cur === '=' && words.at(-1)?.startsWith('--')) {
    cur = '';
    prefix = '=';
  } else if (words.at(-1) === '=' && words.at(-2)?.startsWith('--')) words.pop();
  for (let i = words.length - 2; i > 0; i--) {
    if (words[i] === '=' && words[i - 1].startsWith('--')) words.splice(i - 1, 3, `${words[i - 1]}=${words[i + 1]}`);
  }
  let cmd = program;
  let helpWords = false;
  let dashdash = false;
  let pending: Option | undefined;
  const positional: string[] = [];
  const given = new Set<Option>();
  for (const w of words) {
    if (pending) {
      pending = undefined;
      continue;
    }
    if (!dashdash && w === '--') {
      dashdash = true;
      continue;
    }
    if (!dashdash && w.startsWith('-') && w.length > 1) {
      const eq = w.indexOf('=');
      const o = findOption(cmd, eq > 0 ? w.slice(0, eq) : w);
      if (o) {
        given.add(o);
        if (o.required && eq < 0) pending = o;
      }
      continue;
    }
    if (cmd === program && !helpWords && w === 'help') {
      helpWords = true;
      continue;
    }
    const sub = positional.length === 0 ? cmd.commands.find((c) => c.name() === w || c.aliases().includes(w)) : undefined;
    if (sub) cmd = sub;
    else positional.push(w);
  }

  const filtered = (c: Completion): Completion => ({ mode: c.mode, words: c.words.filter((x) => x.startsWith(cur)).map((x) => prefix + x) });
  if (pending) return filtered(values(pending, placeholderOf(pending), names));
  if (prefix) return { mode: 'words', words: [] };
  if (!dashdash && cur.startsWith('-')) {
    const eq = cur.indexOf('=');
    if (eq > 0) {
      // zsh and fish keep "--pool=ba" as one word: complete the value, keep the prefix.
      const o = findOption(cmd, cur.slice(0, eq));
      if (!o || !takesValue(o)) return { mode: 'words', words: [] };
      const v = values(o, placeholderOf(o), names);
      const prefix = cur.slice(0, eq + 1);
      return v.mode === 'words' ? filtered({ mode: 'words', words: v.words.map((x) => prefix + x) }) : v;
    }
    const flags = chain(cmd).flatMap((c) => c.options.filter((o) => !hidden(o) && !(given.has(o) && !isRepeatable(o))));
    const longs = flags.map((o) => o.long ?? o.short ?? '').filter(Boolean);
    return filtered({ mode: 'words', words: [...new Set([...longs, ...(helpWords ? [] : ['--help'])])] });
  }
  if (helpWords || cmd.commands.length) return filtered({ mode: 'words', words: visibleCommands(cmd) });
  const args = cmd.registeredArguments;
  const last = args.at(-1);
  const arg = args[positional.length] ?? (last?.variadic ? last : undefined);
  if (!arg) return { mode: 'words', words: [] };
  return filtered(values(arg, arg.name(), names));
}
