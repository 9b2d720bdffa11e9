// Redis database indexes checked before anything connects (exit 2 instead of a server error).
import { DbsError } from '../../errors.js';

/** Redis `databases` is an int: a database index is 0 to 2^31-1 (the server's own limit is usually 16). */
const REDIS_DB_MAX = 2 ** 31 - 1;

/** A redis database index from a URL path or a list: a whole number in range; exit 2 otherwise. */
export function redisDbIndex(v: string, flag: string): number {
  if (!/^\d{1,10}$/.test(v) || Number(v) > REDIS_DB_MAX) {
    throw new DbsError('INVALID_ARGUMENT', `${flag}: the redis database ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)} must be a number from 0 to ${REDIS_DB_MAX}`, { hint: 'e.g. redis://127.0.0.1:6379/0 or --databases 0,3' });
  }
  return Number(v);
}
