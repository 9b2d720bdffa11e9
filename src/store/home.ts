// The catalog folder: created level by level (never mkdir -p: Node's recursive mkdir spins
// forever at full CPU under /proc, where mkdir answers ENOENT for a parent that exists), and
// kept private: the catalog holds the passwords and keys of plans and pools.
import { chmodSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { DbsError } from '../errors.js';

export interface HomeState {
  /** Set when an existing folder was readable by others and was changed to 0700. */
  tightened?: { from: number; to: number };
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new DbsError('INVALID_PATH', `cannot use the dbs home: ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      cause: e,
      hint: 'choose a writable folder with --home DIR or DBS_HOME',
    });
  }
}

/** Creates `home` (0700) with its missing parents, or checks and tightens an existing one. */
export function ensureHome(home: string): HomeState {
  const missing: string[] = [];
  let cur = home;
  let st = statOrUndefined(cur);
  while (!st) {
    missing.unshift(cur);
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
    st = statOrUndefined(cur);
  }
  if (st && !st.isDirectory()) {
    throw new DbsError('INVALID_PATH', `the dbs home ${home} cannot be created: ${cur} is not a folder`, { hint: 'choose a folder with --home DIR or DBS_HOME' });
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EEXIST' && statOrUndefined(dir)?.isDirectory()) continue; // made by another dbs meanwhile
      throw new DbsError('INVALID_PATH', `cannot create the dbs home ${home}: mkdir ${dir}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, {
        cause,
        hint: 'choose a writable folder with --home DIR or DBS_HOME',
      });
    }
  }
  const mode = statSync(home).mode & 0o7777;
  if ((mode & 0o077) === 0) return {};
  const to = mode & ~0o077;
  try {
    chmodSync(home, to);
  } catch (cause) {
    throw new DbsError('PERMISSION_DENIED', `the dbs home ${home} is readable by others (mode ${mode.toString(8).padStart(4, '0')}) and dbs cannot change it`, {
      cause,
      hint: `it holds passwords and keys: chmod 700 ${home}, or choose another folder with --home DIR`,
    });
  }
  return { tightened: { from: mode, to } };
}
