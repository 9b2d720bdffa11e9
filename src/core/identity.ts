// The key side of encrypted backups: the age identities a read of backup data needs (restore,
// verify --prepare), from --identity-file F or the file the environment variable
// DBS_IDENTITY_FILE names. Checked before anything connects or is written: a backup encrypted
// to recipients the identities do not match is refused up front (the stream check in
// pipeline/stages/encrypt.ts stays as the backstop).
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import type { ArtifactEncryption } from '../engines/types.js';
import { parseIdentities, type AgeIdentities } from '../pipeline/stages/encrypt.js';
import type { BackupRecord } from '../store/catalog.js';
import { backupManifest } from './manifest.js';

export const IDENTITY_ENV = 'DBS_IDENTITY_FILE';

/** The recipients a backup's artifacts were encrypted to (empty: not encrypted). */
export function backupRecipients(b: Pick<BackupRecord, 'id' | 'manifest'>): string[] {
  const m = backupManifest(b);
  const all = [m.encryption, ...m.artifacts.map((a) => a.encryption)].flatMap((e: ArtifactEncryption | undefined) => (e && e !== 'none' ? e.recipients : []));
  return [...new Set(all)];
}

/**
 * The identities to read `backups` (a backup and its chain) with, or undefined when none of
 * them is encrypted. `identityFile` is the flag's value; without it the file DBS_IDENTITY_FILE
 * names. Errors: IDENTITY_REQUIRED (exit 2: encrypted, no identity given; names the
 * recipients), IDENTITY_MISMATCH (exit 7: no identity of one of the recipients), INVALID_PATH /
 * INVALID_ARGUMENT for a file that cannot be read or is not an age identity file.
 */
export async function identitiesFor(ctx: Pick<Context, 'env' | 'cwd'>, o: { identityFile?: string; flag: string; action: string }, backups: BackupRecord[]): Promise<AgeIdentities | undefined> {
  const encrypted = backups.map((b) => ({ b, recipients: backupRecipients(b) })).filter((x) => x.recipients.length > 0);
  if (encrypted.length === 0) {
    if (o.identityFile !== undefined) {
      throw new DbsError('USAGE', `--identity-file applies to encrypted backups; ${backups.at(-1)!.id} is not encrypted`, { hint: 'drop --identity-file' });
    }
    return undefined;
  }
  const fromEnv = o.identityFile === undefined ? ctx.env[IDENTITY_ENV] : undefined;
  const file = o.identityFile ?? (fromEnv || undefined);
  const first = encrypted[0]!;
  const which = first.b.id === backups.at(-1)!.id ? `backup ${first.b.id}` : `backup ${first.b.id} (of the chain of ${backups.at(-1)!.id})`;
  if (file === undefined) {
    throw new DbsError('IDENTITY_REQUIRED', `${which} is encrypted (age) to ${first.recipients.join(', ')}; ${o.action} needs the identity (private key) of one of them`, {
      hint: `pass ${o.flag} FILE (an age identity file, as age-keygen writes it) or set ${IDENTITY_ENV}=FILE`,
      details: { recipients: first.recipients },
    });
  }
  const path = resolve(ctx.cwd, file);
  const from = o.identityFile !== undefined ? o.flag : IDENTITY_ENV;
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new DbsError('INVALID_PATH', `cannot read the identity file ${path} (from ${from})`, { cause, hint: 'check the path and its permissions' });
  }
  const ids = await parseIdentities(text, `the identity file ${path} (from ${from})`);
  for (const { b, recipients } of encrypted) {
    if (!recipients.some((r) => ids.recipients.includes(r))) {
      throw new DbsError('IDENTITY_MISMATCH', `the identity file ${path} holds the key of ${ids.recipients.join(', ')}, but backup ${b.id} is encrypted to ${recipients.join(', ')}; nothing was read`, {
        hint: 'pass the identity of one of the recipients the backup was encrypted to',
        details: { recipients, identities: ids.recipients },
      });
    }
  }
  return ids;
}
