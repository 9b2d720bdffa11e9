// Finding the stock MySQL/MariaDB tools on PATH and choosing the one that fits a server.
import { DbsError } from '../../errors.js';
import { findOnPath } from '../../which.js';
import { versionOutput } from '../../pipeline/child.js';
import type { ToolInfo } from '../types.js';
import { flavorOf, toolEnv, type MysqlFlavor } from './conn.js';

export interface ResolvedTool {
  /** The name it was found under, e.g. "mariadb-dump". */
  name: string;
  path: string;
  /** The server version the tool belongs to, e.g. "10.11.19-MariaDB" or "8.0.36". */
  version: string;
  /** The full first line of `--version`. */
  versionLine: string;
  flavor: MysqlFlavor;
}

export type ToolRole = 'dump' | 'client';

/** Candidate names per role, best first for each server flavor. */
const NAMES: Record<ToolRole, Record<MysqlFlavor, string[]>> = {
  dump: { mariadb: ['mariadb-dump', 'mysqldump'], mysql: ['mysqldump', 'mariadb-dump'] },
  client: { mariadb: ['mariadb', 'mysql'], mysql: ['mysql', 'mariadb'] },
};

const PURPOSE: Record<string, string> = {
  'mariadb-dump': 'mysql logical backups of MariaDB servers',
  mysqldump: 'mysql logical backups of MySQL servers (MariaDB: mariadb-dump)',
  mariadb: 'mysql logical restores into MariaDB servers',
  mysql: 'mysql logical restores into MySQL servers (MariaDB: mariadb)',
};

/**
 * Parses `--version` output:
 *   "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"
 *   "mariadb-dump from 11.4.2-MariaDB, client 10.19 for Linux (x86_64)"
 *   "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"
 */
export function parseToolVersion(out: string): { version: string; flavor: MysqlFlavor; line: string } {
  const line = (out.split('\n').find((l) => l.trim() !== '') ?? '').trim();
  const m = /Distrib\s+([^\s,]+)/.exec(line) ?? /\bfrom\s+(\d[^\s,]*)/.exec(line) ?? /\bVer\s+(\d[^\s,]*)/.exec(line);
  return { version: m?.[1] ?? '', flavor: flavorOf(line), line };
}

/** [major, minor, patch] of a version string ("8.0.36", "10.11.19-MariaDB"). */
export function versionTuple(v: string): [number, number, number] {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

export function versionAtLeast(v: string, major: number, minor: number, patch = 0): boolean {
  const [a, b, c] = versionTuple(v);
  if (a !== major) return a > major;
  if (b !== minor) return b > minor;
  return c >= patch;
}

async function describeTool(name: string): Promise<ResolvedTool | undefined> {
  const path = findOnPath(name);
  if (!path) return undefined;
  const parsed = parseToolVersion(await versionOutput(path, toolEnv()));
  return { name, path, version: parsed.version, versionLine: parsed.line, flavor: parsed.flavor };
}

/** The four stock tools, found or not (for `dbs doctor`). */
export async function listTools(): Promise<ToolInfo[]> {
  const names = ['mariadb-dump', 'mysqldump', 'mariadb', 'mysql'];
  const found = await Promise.all(names.map((n) => describeTool(n)));
  return names.map((name, i) => {
    const t = found[i];
    return {
      name,
      found: t !== undefined,
      ...(t ? { path: t.path } : {}),
      ...(t?.version ? { version: t.version } : {}),
      purpose: PURPOSE[name] ?? 'mysql',
    };
  });
}

/**
 * The tool for a server: one of the server's own flavor when there is one (mariadb-dump for
 * MariaDB, MySQL's mysqldump for MySQL); a tool of the other flavor only as a fallback, with a
 * warning for the log. Throws TOOL_MISSING when none is on PATH.
 */
export async function chooseTool(
  role: ToolRole,
  server: MysqlFlavor,
): Promise<{ tool: ResolvedTool; warning?: string }> {
  const candidates = (await Promise.all(NAMES[role][server].map((n) => describeTool(n)))).filter(
    (t): t is ResolvedTool => t !== undefined,
  );
  const same = candidates.find((t) => t.flavor === server);
  if (same) return { tool: same };
  const other = candidates[0];
  if (other) {
    return {
      tool: other,
      warning: `no ${server === 'mariadb' ? 'MariaDB' : 'MySQL'} ${role === 'dump' ? 'dump tool' : 'client'} on PATH; using ${other.name} ${other.version} (${other.flavor})`,
    };
  }
  const names = NAMES[role][server].join(' or ');
  throw new DbsError('TOOL_MISSING', `${names} was not found on PATH`, {
    hint:
      server === 'mariadb'
        ? 'install the MariaDB client tools (Debian/Ubuntu: apt-get install mariadb-client)'
        : 'install the MySQL client tools (Debian/Ubuntu: apt-get install mysql-client, or MariaDB\'s mariadb-client)',
  });
}
