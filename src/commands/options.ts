// Option helpers shared by every command: one parser for numeric options, and one rule for
// options given more than once.
//
// Repeated options: commander keeps the last value of an option given twice, so
// `--database a:x --database b:y` silently restored only b. dbs has no repeatable option
// (lists are comma-separated: --databases a,b, --tables db.t1,db.t2, --days mon,thu), so an
// option given twice (or a flag given together with its --no- form) is a usage error naming
// it. An option that should accumulate gets `repeatable()`: its values collect into an array.
import { Option, type Command } from 'commander';
import { DbsError } from '../errors.js';
import { parseNumber, type NumberSpec } from './values.js';

export { parseNumber, type NumberSpec } from './values.js';

const numeric = new WeakMap<Option, NumberSpec>();

/** An option whose value is a number within a range, parsed (and refused) while argv is parsed. */
export function numberOption(flags: string, description: string, spec: NumberSpec, defaultValue?: number): Option {
  const o = new Option(flags, description);
  const flag = o.long ?? o.short ?? flags;
  o.argParser((v: string) => parseNumber(v, flag, spec));
  if (defaultValue !== undefined) o.default(defaultValue);
  numeric.set(o, spec);
  return o;
}

/** The range of a numeric option made by numberOption (for tests and help). */
export function numberSpec(o: Option): NumberSpec | undefined {
  return numeric.get(o);
}

const repeatables = new WeakSet<Option>();

/** Marks an option repeatable: each occurrence adds its value to an array. */
export function repeatable(o: Option): Option {
  repeatables.add(o);
  o.argParser((v: string, prev: unknown) => [...(Array.isArray(prev) ? prev : []), v]);
  return o;
}

export function isRepeatable(o: Option): boolean {
  return repeatables.has(o);
}

function* commands(c: Command): Iterable<Command> {
  yield c;
  for (const s of c.commands) yield* commands(s);
}

/**
 * Counts every occurrence of every option of every command and, before any action runs,
 * refuses an option given twice (exit 2, naming it). Install once, after all commands exist.
 */
export function refuseRepeatedOptions(program: Command): void {
  const seen = new Map<Command, Map<string, string[]>>();
  for (const cmd of commands(program)) {
    for (const opt of cmd.options) {
      if (isRepeatable(opt)) continue;
      const key = opt.attributeName();
      cmd.on(`option:${opt.name()}`, () => {
        const m = seen.get(cmd) ?? new Map<string, string[]>();
        seen.set(cmd, m);
        m.set(key, [...(m.get(key) ?? []), opt.long ?? opt.short ?? opt.flags]);
      });
    }
  }
  program.hook('preAction', (_hooked, action) => {
    for (let c: Command | null = action; c; c = c.parent) {
      for (const given of seen.get(c)?.values() ?? []) {
        if (given.length < 2) continue;
        const names = [...new Set(given)];
        const message = names.length === 1 ? `${names[0]} was given ${given.length} times` : `${names.join(' and ')} were both given`;
        throw new DbsError('USAGE', `${message}; an option may be given once`, {
          hint: names.length === 1 ? `keep one ${names[0]} (where an option takes a list, it is comma-separated, e.g. --databases a,b)` : 'choose one of them',
          details: { options: names },
        });
      }
    }
  });
}
