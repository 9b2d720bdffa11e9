// Secrets come from a named environment variable, a file, or a prompt on a TTY; never argv.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from '../context.js';
import { DbsError } from '../errors.js';
import { Secret } from '../secret.js';

export interface SecretFlags {
  env?: string;
  file?: string;
}

/**
 * Resolves a secret from `--<name>-env VAR` or `--<name>-file F`, else prompts when allowed.
 * Returns undefined when nothing was given and `required` is false.
 */
export async function resolveSecret(
  ctx: Context,
  flags: SecretFlags,
  o: { flag: string; what: string; required: boolean; promptMessage?: string },
): Promise<Secret | undefined> {
  if (flags.env && flags.file) {
    throw new DbsError('USAGE', `--${o.flag}-env and --${o.flag}-file are exclusive`, { hint: 'give the secret one way' });
  }
  if (flags.env !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(flags.env)) {
      throw new DbsError('INVALID_ARGUMENT', `--${o.flag}-env expects the NAME of an environment variable, got an invalid name`, {
        hint: `export the secret in a variable, e.g. DBS_SECRET, and pass --${o.flag}-env DBS_SECRET`,
      });
    }
    const v = ctx.env[flags.env];
    if (v === undefined || v === '') {
      throw new DbsError('INVALID_ARGUMENT', `the environment variable ${flags.env} (from --${o.flag}-env) is not set or empty`, {
        hint: `export ${flags.env} before running dbs`,
      });
    }
    return new Secret(v);
  }
  if (flags.file !== undefined) {
    const path = resolve(ctx.cwd, flags.file);
    let text: string;
    try {
      if (!statSync(path).isFile()) throw new Error('not a file');
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new DbsError('INVALID_PATH', `cannot read the ${o.what} file ${path} (from --${o.flag}-file)`, { cause, hint: 'check the path and its permissions' });
    }
    const v = text.replace(/\r?\n$/, '');
    if (!v) throw new DbsError('INVALID_ARGUMENT', `the ${o.what} file ${path} is empty`, { hint: `write the ${o.what} into the file` });
    return new Secret(v);
  }
  if (ctx.prompt.enabled) {
    const v = await ctx.prompt.password(o.promptMessage ?? `${o.what}:`);
    if (!v && o.required) throw new DbsError('USAGE', `no ${o.what} given`, { hint: `pass --${o.flag}-env VAR or --${o.flag}-file F` });
    return v ? new Secret(v) : undefined;
  }
  if (o.required) {
    throw new DbsError('USAGE', `the ${o.what} is missing`, {
      hint: `pass --${o.flag}-env VAR or --${o.flag}-file F (prompting needs a terminal)`,
    });
  }
  return undefined;
}
