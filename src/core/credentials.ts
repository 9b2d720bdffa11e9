// Secrets come from a named environment variable or a file, never argv; a prompt for one is the
// command's (commands/secrets.ts), which hands core the secret.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { Secret } from '../secret.js';

export interface SecretFlags {
  env?: string;
  file?: string;
}

/** Reads a secret from `--<flag>-env VAR` or `--<flag>-file F`; undefined when neither was given. */
export function secretFromFlags(ctx: Pick<Context, 'env' | 'cwd'>, flags: SecretFlags, o: { flag: string; what: string }): Secret | undefined {
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
  return undefined;
}
