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

// ---- references: secrets read when they are used ----------------------------------------
//
// `--password-from env:VAR|file:PATH` (and `--secret-key-from`) store a REFERENCE in the
// catalog's secrets table (name "<secret>:ref", value "env:VAR" or "file:/abs/path"), never the
// value; `--password-env/-file` copy the value (name "<secret>"). A secret has one mode at a time:
// storing one removes the other. `storedSecret` is the one place a stored secret is read for
// use (each run, probe, restore, pool open): a reference is resolved there, every time, so a
// rotated file or a re-injected variable takes effect at the next use.

/** Where a referenced secret is read at each use. A file path is absolute. */
export type SecretRef = { from: 'env'; name: string } | { from: 'file'; path: string };

/** A secret as a command gives it to core: a value to copy into the catalog, or a reference. */
export type GivenSecret = { value: Secret } | { ref: SecretRef };

/** How a stored secret is kept, for `show` (never the value). */
export type SecretMode = { mode: 'copy' } | { mode: 'reference'; from: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** "env:DB_PW" or "file:/run/secrets/db". */
export function refText(ref: SecretRef): string {
  return ref.from === 'env' ? `env:${ref.name}` : `file:${ref.path}`;
}

/** Parses `--<flag>-from env:VAR|file:PATH` (a relative PATH is taken from cwd); exit 2 on bad syntax. */
export function parseSecretRef(text: string, o: { flag: string; cwd: string }): SecretRef {
  const m = /^(env|file):(.*)$/s.exec(text);
  const hint = `e.g. --${o.flag}-from env:DB_PW or --${o.flag}-from file:/run/secrets/db-password`;
  if (!m) {
    throw new DbsError('INVALID_ARGUMENT', `--${o.flag}-from must be env:VAR or file:PATH`, { hint });
  }
  if (m[1] === 'env') {
    if (!ENV_NAME.test(m[2])) throw new DbsError('INVALID_ARGUMENT', `--${o.flag}-from env: needs the NAME of an environment variable (letters, digits, _), got an invalid name`, { hint });
    return { from: 'env', name: m[2] };
  }
  if (!m[2] || /[\0\r\n]/.test(m[2])) throw new DbsError('INVALID_ARGUMENT', `--${o.flag}-from file: needs a path`, { hint });
  return { from: 'file', path: resolve(o.cwd, m[2]) };
}

/** Decodes a stored reference (the catalog's "env:VAR" / "file:/path"). */
function decodeRef(text: string, what: string): SecretRef {
  const m = /^(env|file):(.+)$/s.exec(text);
  if (!m || (m[1] === 'env' && !ENV_NAME.test(m[2]))) {
    throw new DbsError('INVALID_RECORD', `the stored reference of the ${what} is not env:VAR or file:PATH`, { hint: 'give it again with --password-from or --secret-key-from' });
  }
  return m[1] === 'env' ? { from: 'env', name: m[2] } : { from: 'file', path: m[2] };
}

/**
 * Reads a referenced secret NOW: the variable from the context's environment, the file afresh
 * (one trailing newline stripped). A missing variable, an unreadable file or an empty value is
 * SECRET_UNAVAILABLE (exit 1), naming the variable or file, never its content.
 */
export function resolveSecretRef(ctx: Pick<Context, 'env'>, ref: SecretRef, what: string): Secret {
  if (ref.from === 'env') {
    const v = ctx.env[ref.name];
    if (v === undefined) {
      throw new DbsError('SECRET_UNAVAILABLE', `the ${what} is read from the environment variable ${ref.name}, which is not set`, {
        hint: `export ${ref.name} in the environment dbs runs in (systemd: Environment=/EnvironmentFile=; Kubernetes: env from a Secret)`,
        details: { from: refText(ref) },
      });
    }
    if (v === '') throw new DbsError('SECRET_UNAVAILABLE', `the ${what} is read from the environment variable ${ref.name}, which is empty`, { hint: `set ${ref.name} to the secret`, details: { from: refText(ref) } });
    return new Secret(v);
  }
  let text: string;
  try {
    if (!statSync(ref.path).isFile()) throw new Error('not a regular file');
    text = readFileSync(ref.path, 'utf8');
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new DbsError('SECRET_UNAVAILABLE', `the ${what} is read from the file ${ref.path}, which cannot be read (${why})`, {
      cause,
      hint: 'check that the file exists and that the user dbs runs as can read it',
      details: { from: refText(ref) },
    });
  }
  const v = text.replace(/\r?\n$/, '');
  if (!v) throw new DbsError('SECRET_UNAVAILABLE', `the ${what} is read from the file ${ref.path}, which is empty`, { hint: `write the ${what} into the file`, details: { from: refText(ref) } });
  return new Secret(v);
}

/** The same as resolveSecretRef when a command gives a reference: a missing value is bad input (exit 2). */
export function resolveGivenRef(ctx: Pick<Context, 'env'>, ref: SecretRef, what: string, flag: string): Secret {
  try {
    return resolveSecretRef(ctx, ref, what);
  } catch (e) {
    if (e instanceof DbsError && e.code === 'SECRET_UNAVAILABLE') {
      throw new DbsError('INVALID_ARGUMENT', `${e.message} (--${flag}-from ${refText(ref)})`, { cause: e, hint: e.hint, details: e.details });
    }
    throw e;
  }
}

/**
 * A referenced file that group or others may read: dbs warns (does not refuse, unlike ssh with
 * keys), because Kubernetes Secret volumes and Vault agent templates write 0644 by default.
 * Returns the mode when it is too open, else undefined.
 */
export function openFileMode(ref: SecretRef): number | undefined {
  if (ref.from !== 'file') return undefined;
  const st = statSync(ref.path, { throwIfNoEntry: false });
  const mode = st ? st.mode & 0o777 : 0;
  return mode & 0o077 ? mode : undefined;
}

interface SecretStore {
  setSecret(ownerKind: string, ownerId: string, name: string, value: string | undefined): void;
  getSecret(ownerKind: string, ownerId: string, name: string): string | undefined;
}

/** Stores a given secret in its mode (the value, or only the reference) and drops the other mode. Call inside the owner's transaction. */
export function storeSecret(store: SecretStore, ownerKind: string, ownerId: string, name: string, given: GivenSecret): void {
  if ('value' in given) {
    store.setSecret(ownerKind, ownerId, name, given.value.reveal());
    store.setSecret(ownerKind, ownerId, `${name}:ref`, undefined);
  } else {
    store.setSecret(ownerKind, ownerId, `${name}:ref`, refText(given.ref));
    store.setSecret(ownerKind, ownerId, name, undefined);
  }
}

/** How a stored secret is kept (for plan show / pool show), or undefined when there is none. */
export function secretMode(store: SecretStore, ownerKind: string, ownerId: string, name: string): SecretMode | undefined {
  const ref = store.getSecret(ownerKind, ownerId, `${name}:ref`);
  if (ref !== undefined) return { mode: 'reference', from: ref };
  return store.getSecret(ownerKind, ownerId, name) !== undefined ? { mode: 'copy' } : undefined;
}

/** The stored secret as it is kept (copied value or reference), to carry it to another owner unresolved. */
export function storedGiven(store: SecretStore, ownerKind: string, ownerId: string, name: string, what: string): GivenSecret | undefined {
  const ref = store.getSecret(ownerKind, ownerId, `${name}:ref`);
  if (ref !== undefined) return { ref: decodeRef(ref, what) };
  const v = store.getSecret(ownerKind, ownerId, name);
  return v === undefined ? undefined : { value: new Secret(v) };
}

/**
 * THE read of a stored secret for use: the copied value, or the reference resolved now (each
 * run, probe, restore, pool open). Undefined when the owner has no such secret.
 */
export function storedSecret(ctx: Pick<Context, 'env' | 'catalog'>, ownerKind: string, ownerId: string, name: string, what: string): Secret | undefined {
  const given = storedGiven(ctx.catalog(), ownerKind, ownerId, name, what);
  if (!given) return undefined;
  return 'value' in given ? given.value : resolveSecretRef(ctx, given.ref, what);
}

/** A given secret's value for a check made now (create/update/bind probe the source or pool with it). */
export function givenValue(ctx: Pick<Context, 'env'>, given: GivenSecret, what: string, flag: string): Secret {
  return 'value' in given ? given.value : resolveGivenRef(ctx, given.ref, what, flag);
}
