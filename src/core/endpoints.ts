// Source and target URLs: mysql://user@host:port, redis://host:port/db, sqlite:///path,
// dir:///path, s3://bucket/prefix?endpoint=... A password in the URL is refused: it would
// sit in argv and shell history.
import { isAbsolute } from 'node:path';
import { DbsError } from '../errors.js';
import type { Endpoint, SourceKind } from '../engines/types.js';

const DEFAULT_PORTS: Partial<Record<SourceKind, number>> = { mysql: 3306, redis: 6379 };
const SCHEMES: Record<string, SourceKind> = { 'mysql:': 'mysql', 'mariadb:': 'mysql', 'redis:': 'redis', 'sqlite:': 'sqlite', 'dir:': 'dir', 's3:': 's3' };

export function parseEndpoint(raw: string, flag = '--source'): Endpoint {
  if (raw === 'catalog') return { kind: 'catalog', url: 'catalog', params: {} };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} is not a URL`, {
      hint: 'e.g. mysql://backup@db1:3306, redis://127.0.0.1:6379/0, sqlite:///var/lib/app.db',
    });
  }
  const kind = SCHEMES[u.protocol];
  if (!kind) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: unknown scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))}`, {
      hint: `use one of ${Object.keys(SCHEMES).map((s) => s.replace(/:$/, '')).join(', ')}`,
    });
  }
  if (u.password) {
    throw new DbsError('INVALID_ARGUMENT', `${flag} must not contain a password`, {
      hint: 'pass it with --password-env VAR or --password-file F (or at the prompt)',
    });
  }
  const params: Record<string, string> = {};
  u.searchParams.forEach((v, k) => (params[k] = v));
  const clean = new URL(u.toString());
  clean.password = '';
  if (kind === 'sqlite' || kind === 'dir') {
    const path = decodeURIComponent(u.pathname);
    if (u.host || !isAbsolute(path) || path === '/') {
      throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} needs an absolute path`, { hint: `e.g. ${kind}:///var/lib/app.db` });
    }
    return { kind, url: `${kind}://${path}`, path, params };
  }
  if (!u.hostname) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} has no host`, { hint: `e.g. ${kind}://127.0.0.1` });
  // WHATWG URL refuses ports above 65535 and non-numeric ones ("is not a URL" above); port 0
  // parses, and the clients would then silently connect to their default port.
  if (u.port !== '' && !(Number(u.port) >= 1 && Number(u.port) <= 65535)) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: port ${u.port} is out of range (1-65535)`, { hint: `e.g. ${kind}://127.0.0.1:${DEFAULT_PORTS[kind] ?? 1}` });
  }
  if (u.hostname.length > 253) throw new DbsError('INVALID_ARGUMENT', `${flag}: the host name is longer than 253 characters`, { hint: 'give a host name or an IP address' });
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[kind];
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const user = u.username ? decodeURIComponent(u.username) : kind === 'mysql' ? 'root' : undefined;
  const path = u.pathname && u.pathname !== '/' ? decodeURIComponent(u.pathname.slice(1)) : undefined;
  if (kind === 'redis' && path !== undefined) redisDbIndex(path, flag);
  if (kind === 'mysql' && user !== undefined && user.length > MYSQL_USER_MAX) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: the MySQL user name is longer than ${MYSQL_USER_MAX} characters`, { hint: 'e.g. mysql://backup@127.0.0.1:3306' });
  }
  if (kind === 'mysql' && path !== undefined) mysqlIdentifier(path, 'database', flag);
  const url = `${kind}://${user ? `${encodeURIComponent(user)}@` : ''}${u.host.includes(':') ? u.host : `${u.hostname}:${port}`}${path !== undefined ? `/${path}` : ''}${u.search}`;
  return { kind, url, host, port, user, path, params };
}

/** MariaDB allows user names of up to 80 characters (MySQL 32). */
const MYSQL_USER_MAX = 80;
/** Redis `databases` is an int: a database index is 0 to 2^31-1 (the server's own limit is usually 16). */
const REDIS_DB_MAX = 2 ** 31 - 1;

/** A redis database index from a URL path or a list: a whole number in range; exit 2 otherwise. */
export function redisDbIndex(v: string, flag: string): number {
  if (!/^\d{1,10}$/.test(v) || Number(v) > REDIS_DB_MAX) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: the redis database ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)} must be a number from 0 to ${REDIS_DB_MAX}`, { hint: 'e.g. redis://127.0.0.1:6379/0 or --databases 0,3' });
  }
  return Number(v);
}

/**
 * A MySQL/MariaDB database or table name: 1-64 characters, no NUL, not ending in a space
 * (the server's rules); refused here with exit 2 instead of failing at the server.
 */
export function mysqlIdentifier(name: string, what: 'database' | 'table', flag: string): string {
  const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
  if (name.length === 0 || name.length > 64 || name.includes('\0') || name.endsWith(' ')) {
    throw new DbsError('INVALID_NAME', `${flag}: the MySQL ${what} name ${shown} is not valid (${name.length} characters)`, {
      hint: `a ${what} name has 1-64 characters and does not end with a space`,
    });
  }
  return name;
}
