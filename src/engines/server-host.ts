// The host of a server endpoint. There is no default: a connection to a server nobody named
// (e.g. "localhost:3306" because a target flag was dropped) could write into production.
import { DbsError } from '../errors.js';
import type { Endpoint } from './types.js';

export function serverHost(ep: Endpoint): string {
  if (!ep.host) {
    throw new DbsError('USAGE', `${ep.url} names no server host`, { hint: `give the server in the URL, e.g. ${ep.kind}://127.0.0.1` });
  }
  return ep.host;
}
