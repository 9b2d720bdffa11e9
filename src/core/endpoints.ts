// Source and target URLs: mysql://user@host:port, redis://host:port/db, sqlite:///path... The
// schemes, default ports and users and the engine's own URL rules come from the engine
// descriptors (src/engines/<kind>/descriptor.ts). A password in the URL is refused: it would
// sit in argv and shell history.
import { isAbsolute } from 'node:path';
import { DbsError } from '../errors.js';
import type { AnyEngineDescriptor } from '../engines/descriptor.js';
import { DESCRIPTORS, descriptorOfScheme } from '../engines/registry.js';
import type { Endpoint } from '../engines/types.js';

/** The engine of a source URL by its scheme, before the URL is parsed (for prompts); undefined if none. */
export function descriptorOfUrl(raw: string): AnyEngineDescriptor | undefined {
  return descriptorOfScheme(raw.split(':')[0]);
}

export function parseEndpoint(raw: string, flag = '--source'): Endpoint {
  const bare = DESCRIPTORS.find((d) => d.catalogSource === raw);
  if (bare) return { kind: bare.kind, url: raw, params: {} };
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} is not a URL`, {
      hint: 'e.g. mysql://backup@db1:3306, redis://127.0.0.1:6379/0, sqlite:///var/lib/app.db',
    });
  }
  const scheme = u.protocol.replace(/:$/, '');
  const d = descriptorOfScheme(scheme);
  if (!d) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: unknown scheme ${JSON.stringify(scheme)}`, {
      hint: `use one of ${DESCRIPTORS.flatMap((x) => x.endpoint.schemes).join(', ')}`,
    });
  }
  const kind = d.kind;
  if (u.password) {
    throw new DbsError('INVALID_ARGUMENT', `${flag} must not contain a password`, {
      hint: 'pass it with --password-env VAR or --password-file F (or at the prompt)',
    });
  }
  const params: Record<string, string> = {};
  u.searchParams.forEach((v, k) => (params[k] = v));
  if (d.endpoint.form === 'file') {
    const path = decodeURIComponent(u.pathname);
    if (u.host || !isAbsolute(path) || path === '/') {
      throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} needs an absolute path`, { hint: `e.g. ${kind}:///var/lib/app.db` });
    }
    const ep: Endpoint = { kind, url: `${kind}://${path}`, path, params };
    d.endpoint.check?.(ep, flag);
    return ep;
  }
  if (!u.hostname) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} has no host`, { hint: `e.g. ${kind}://127.0.0.1` });
  // WHATWG URL refuses ports above 65535 and non-numeric ones ("is not a URL" above); port 0
  // parses, and the clients would then silently connect to their default port.
  if (u.port !== '' && !(Number(u.port) >= 1 && Number(u.port) <= 65535)) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: port ${u.port} is out of range (1-65535)`, { hint: `e.g. ${kind}://127.0.0.1:${d.endpoint.defaultPort ?? 1}` });
  }
  if (u.hostname.length > 253) throw new DbsError('INVALID_ARGUMENT', `${flag}: the host name is longer than 253 characters`, { hint: 'give a host name or an IP address' });
  const port = u.port ? Number(u.port) : d.endpoint.defaultPort;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const user = u.username ? decodeURIComponent(u.username) : d.endpoint.defaultUser;
  const path = u.pathname && u.pathname !== '/' ? decodeURIComponent(u.pathname.slice(1)) : undefined;
  // Stored URLs use the engine's first scheme (its kind, except where the kind is no scheme:
  // s3:// buckets); a server without a default port (a bucket) is named without one.
  const stored = d.endpoint.schemes[0] ?? kind;
  const hostPort = u.host.includes(':') || port === undefined ? u.host : `${u.hostname}:${port}`;
  const url = `${stored}://${user ? `${encodeURIComponent(user)}@` : ''}${hostPort}${path !== undefined ? `/${path}` : ''}${u.search}`;
  const ep: Endpoint = { kind, url, host, port, user, path, params };
  d.endpoint.check?.(ep, flag);
  return ep;
}
