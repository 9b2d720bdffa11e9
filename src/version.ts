import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set by the executable's build (scripts/build-exe.mjs, esbuild `define`); absent in a checkout. */
declare const DBS_BUILD: { version: string; commit: string } | undefined;

const build = typeof DBS_BUILD === 'object' ? DBS_BUILD : undefined;

/** The package.json of the checkout: beside dist/ (this module is dist/version.js or in dist/bundle/). */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (p.name === 'dbs') return p.version;
    } catch {
      // not there: the next candidate
    }
  }
  return 'unknown';
}

/** The package version: baked into the executable, else read once from the checkout's package.json. */
export const VERSION: string = build?.version ?? packageVersion();

/** The commit dbs was built from: baked into the executable, else asked of git in the checkout. */
export function buildCommit(): string {
  if (build) return build.commit;
  try {
    // node:child_process only here (--version in a checkout), not at every start-up.
    const { execFileSync } = process.getBuiltinModule('node:child_process');
    const root = dirname(dirname(fileURLToPath(import.meta.url)));
    const sha = execFileSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

export interface VersionInfo {
  version: string;
  commit: string;
  node: string;
  sqlite: string;
  /** Which SQLite the catalog uses: Node's built-in node:sqlite (the SQLite engine uses better-sqlite3's). */
  sqliteBinding: string;
  executable: boolean;
}

/** What `dbs --version` prints. `sqliteVersion` opens an in-memory database. */
export function versionInfo(sqliteVersion: () => string): VersionInfo {
  return {
    version: VERSION,
    commit: buildCommit(),
    node: process.versions.node,
    sqlite: sqliteVersion(),
    sqliteBinding: 'node:sqlite',
    executable: build !== undefined,
  };
}
