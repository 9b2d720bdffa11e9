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
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[kind];
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const user = u.username ? decodeURIComponent(u.username) : kind === 'mysql' ? 'root' : undefined;
  const path = u.pathname && u.pathname !== '/' ? decodeURIComponent(u.pathname.slice(1)) : undefined;
  if (kind === 'redis' && path !== undefined && !/^\d+$/.test(path)) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: the redis database ${JSON.stringify(path)} must be a number`, { hint: 'e.g. redis://127.0.0.1:6379/0' });
  }
  const url = `${kind}://${user ? `${encodeURIComponent(user)}@` : ''}${u.host.includes(':') ? u.host : `${u.hostname}:${port}`}${path !== undefined ? `/${path}` : ''}${u.search}`;
  return { kind, url, host, port, user, path, params };
}
