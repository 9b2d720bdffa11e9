// The one place that lists pool driver kinds (no registration as an import side effect): one
// line per kind. A kind's module is light; the S3 driver, and with it the AWS SDK, is loaded
// only when an S3 pool is opened.
import { DbsError } from '../errors.js';
import type { Secret } from '../secret.js';
import { localKind } from './local.js';
import { s3Kind } from './s3-kind.js';
import type { DriverKind, DriverSettings, PoolDriver } from './types.js';

export type { DriverSettings } from './types.js';

const KINDS: readonly DriverKind[] = [localKind, s3Kind];

/** Every kind, in the order `--type` lists them. */
export function driverKinds(): readonly DriverKind[] {
  return KINDS;
}

/** The kind of a pool type; undefined when no driver has that name. */
export function findDriverKind(type: string): DriverKind | undefined {
  return KINDS.find((k) => k.type === type);
}

/** The kind of a pool type, or a DbsError naming it and the types there are. */
export function driverKind(type: string): DriverKind {
  const k = findDriverKind(type);
  if (!k) {
    throw new DbsError('INVALID_ARGUMENT', `unknown pool type ${JSON.stringify(type)}`, { hint: `use ${KINDS.map((x) => `--type ${x.type}`).join(' or ')}` });
  }
  return k;
}

/** The driver settings out of dbs's settings. */
export function driverSettings(s: { partSize: number; concurrency: number; s3Timeout: number }): DriverSettings {
  return { partSize: s.partSize, concurrency: s.concurrency, timeoutMs: s.s3Timeout * 1000 };
}

/** A pool's type and its config as stored (opaque JSON, decoded by the kind). */
export interface PoolSpec {
  type: string;
  config: unknown;
}

/** Opens the (unwrapped) driver of a pool; `what` names the pool in a decode error. */
export async function openDriver(pool: PoolSpec, secretKey: Secret | undefined, settings: DriverSettings = {}, what = 'pool config'): Promise<PoolDriver> {
  const kind = driverKind(pool.type);
  return kind.open(kind.decode(pool.config, what), secretKey, settings);
}
