// The executable's better-sqlite3 binding: the .node file travels inside dist/dbs as a SEA asset
// and is extracted to a content-addressed cache directory, checked against the sha256 the build
// recorded before it is loaded. Only the executable's bundle uses this module (scripts/build-exe.mjs
// substitutes it for better-sqlite3's own lib/binding.js); a checkout loads node_modules' binding.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getAsset } from 'node:sea';
import { DbsError } from '../errors.js';

/** Set by the build: the asset's name and its sha256. */
declare const DBS_ADDON: { asset: string; sha256: string };

const FILE = 'better_sqlite3.node';

/**
 * Where extracted native code lives (never /tmp, which may be mounted noexec): $DBS_CACHE_DIR,
 * else systemd's $CACHE_DIRECTORY (CacheDirectory=), else $XDG_CACHE_HOME/dbs, else ~/.cache/dbs.
 */
export function cacheRoot(env: NodeJS.ProcessEnv): string {
  if (env.DBS_CACHE_DIR) return env.DBS_CACHE_DIR;
  if (env.CACHE_DIRECTORY) return env.CACHE_DIRECTORY.split(':')[0] ?? env.CACHE_DIRECTORY;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'dbs');
  return join(homedir(), '.cache', 'dbs');
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function readIfValid(path: string, want: string): boolean {
  try {
    return sha256(readFileSync(path)) === want;
  } catch {
    return false;
  }
}

/** Extracts (once) and loads the embedded binding; the file is verified before every load. */
export function loadEmbeddedAddon(env: NodeJS.ProcessEnv = process.env): unknown {
  const want = DBS_ADDON.sha256;
  const dir = join(cacheRoot(env), 'native', want.slice(0, 32));
  const path = join(dir, FILE);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A directory others can write to could swap the file between the check and the load.
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o022) !== 0) chmodSync(dir, mode & ~0o022);
  } catch (e) {
    throw new DbsError('INVALID_CONFIG', `cannot create the cache directory ${dir}: ${(e as Error).message}`, {
      hint: 'set DBS_CACHE_DIR (or XDG_CACHE_HOME) to a writable directory on a filesystem that allows executing code',
      cause: e,
    });
  }
  if (!readIfValid(path, want)) {
    const bytes = new Uint8Array(getAsset(DBS_ADDON.asset));
    if (sha256(bytes) !== want) {
      throw new DbsError('INTERNAL', `the SQLite binding inside this executable is damaged (sha256 ${sha256(bytes)}, built as ${want})`, { hint: 'download or build dbs again' });
    }
    try {
      const tmp = join(dir, `.${FILE}.${process.pid}.tmp`);
      writeFileSync(tmp, bytes, { mode: 0o700 });
      renameSync(tmp, path);
    } catch (e) {
      throw new DbsError('INVALID_CONFIG', `cannot extract the SQLite binding to ${dir}: ${(e as Error).message}`, {
        hint: 'set DBS_CACHE_DIR (or XDG_CACHE_HOME) to a writable directory on a filesystem that allows executing code',
        cause: e,
      });
    }
    if (!readIfValid(path, want)) {
      rmSync(path, { force: true });
      throw new DbsError('INTERNAL', `the extracted SQLite binding ${path} does not match its sha256`, { hint: 'check the disk; set DBS_CACHE_DIR to another directory' });
    }
  }
  const module = { exports: {} as unknown };
  try {
    process.dlopen(module, path);
  } catch (e) {
    throw new DbsError('INVALID_CONFIG', `cannot load the SQLite binding ${path}: ${(e as Error).message}`, {
      hint: 'the cache directory may be on a noexec filesystem: set DBS_CACHE_DIR to one that allows executing code',
      cause: e,
    });
  }
  return module.exports;
}
