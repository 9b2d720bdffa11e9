// Every key dbs writes into a pool comes from here (DESIGN.md "Pool layout").
import { DbsError } from '../errors.js';

export const ROOT = 'dbs';
export const POOL_MARKER_KEY = `${ROOT}/pool.json`;
export const POOL_FORMAT_VERSION = 1;

export function probeKey(token: string): string {
  return `${ROOT}/probe/${token}`;
}
export function planKey(planId: string): string {
  return `${ROOT}/plans/${planId}.json`;
}
export function plansPrefix(): string {
  return `${ROOT}/plans/`;
}
export function backupsPrefix(planId?: string): string {
  return planId ? `${ROOT}/backups/${planId}/` : `${ROOT}/backups/`;
}
export function backupPrefix(planId: string, backupId: string): string {
  return `${ROOT}/backups/${planId}/${backupId}/`;
}
export function manifestKey(planId: string, backupId: string): string {
  return `${backupPrefix(planId, backupId)}manifest.json`;
}
export function artifactKey(planId: string, backupId: string, artifact: string): string {
  checkSegment(artifact, 'artifact name');
  return `${backupPrefix(planId, backupId)}${artifact}`;
}

function checkSegment(s: string, what: string): void {
  if (!s || s === '.' || s === '..' || s.includes('/') || s.includes('\\') || /[\x00-\x1f]/.test(s)) {
    throw new DbsError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(s)}`);
  }
}

/** Rejects keys that could escape the pool root or that no driver can store. */
export function validateKey(key: string): string {
  if (!key || key.startsWith('/') || key.endsWith('/')) {
    throw new DbsError('INVALID_ARGUMENT', `invalid pool key ${JSON.stringify(key)}`);
  }
  for (const seg of key.split('/')) checkSegment(seg, 'pool key segment');
  return key;
}

/** A prefix may be empty or end in a partial segment; it must not climb out of the root. */
export function validatePrefix(prefix: string): string {
  if (prefix.startsWith('/') || prefix.split('/').some((s) => s === '..' || s === '.') || /[\x00-\x1f\\]/.test(prefix)) {
    throw new DbsError('INVALID_ARGUMENT', `invalid pool prefix ${JSON.stringify(prefix)}`);
  }
  return prefix;
}
