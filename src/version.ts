import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Set by the executable's build (scripts/build-exe.mjs, esbuild `define`); absent in a checkout. */
declare const DBS_BUILD: { version: string; commit: string } | undefined;

const build = typeof DBS_BUILD === 'object' ? DBS_BUILD : undefined;

/** The package version: baked into the executable, else read once from package.json next to dist/. */
export const VERSION: string = build?.version ?? (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

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
  /** How SQLite is reached: the better-sqlite3 binding (embedded in the executable or from node_modules). */
  sqliteBinding: string;
  executable: boolean;
}

/** What `dbs --version` prints. `sqliteVersion` opens an in-memory database (loads the binding). */
export function versionInfo(sqliteVersion: () => string): VersionInfo {
  return {
    version: VERSION,
    commit: buildCommit(),
    node: process.versions.node,
    sqlite: sqliteVersion(),
    sqliteBinding: build ? 'better-sqlite3, embedded' : 'better-sqlite3',
    executable: build !== undefined,
  };
}
