import { DbsError } from '../errors.js';
import type { Catalog, PoolRecord } from '../store/catalog.js';

/** Resource names: 1-64 characters, no control characters, no '/', not starting with '-'. */
export function validateName(name: unknown, what: string, flag = 'NAME'): string {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new DbsError('INVALID_NAME', `the ${what} name is empty`, { hint: `give a name as ${flag}` });
  }
  if (/[\x00-\x1f\x7f]/.test(name)) {
    throw new DbsError('INVALID_NAME', `the ${what} name ${JSON.stringify(name)} contains control characters`, {
      hint: 'use letters, digits, spaces, dots, dashes and underscores',
    });
  }
  if (name !== name.trim() || name.length > 64 || name.startsWith('-') || name.includes('/')) {
    throw new DbsError('INVALID_NAME', `the ${what} name ${JSON.stringify(name)} is not allowed`, {
      hint: 'use 1-64 characters without "/", not starting with "-" and without surrounding spaces',
    });
  }
  return name;
}

/**
 * The column ("plans.name") of a SQLite UNIQUE/PRIMARY KEY violation, else undefined. Two dbs
 * processes creating one name at once both pass the "already exists" check; the catalog's
 * constraint decides, and the loser reports it like the check would have.
 */
export function uniqueViolation(e: unknown): string | undefined {
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err?.code !== 'string' || !/^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test(err.code)) return undefined;
  return /constraint failed: ([\w.]+)/.exec(String(err.message))?.[1];
}

/** The pool a name or id refers to, or POOL_NOT_FOUND (here, not in pools.ts: lists need no drivers). */
export function findPoolOrThrow(catalog: Catalog, ref: string): PoolRecord {
  const p = catalog.findPool(ref);
  if (!p) {
    throw new DbsError('POOL_NOT_FOUND', `pool ${JSON.stringify(ref)} not found`, { hint: 'see the bound pools with: dbs pool list' });
  }
  return p;
}
