// The one place that builds pool drivers (no registration as an import side effect).
// The S3 driver, and with it the AWS SDK, is loaded only when an S3 pool is opened.
import type { LocalPoolConfig, PoolRecord, S3PoolConfig } from '../store/catalog.js';
import type { Secret } from '../secret.js';
import type { PoolDriver } from './types.js';
import { LocalDriver } from './local.js';

export interface DriverSettings {
  partSize?: number;
  concurrency?: number;
  /** S3: ms a request may go without an answer (per attempt). */
  timeoutMs?: number;
}

/** The driver settings out of dbs's settings. */
export function driverSettings(s: { partSize: number; concurrency: number; s3Timeout: number }): DriverSettings {
  return { partSize: s.partSize, concurrency: s.concurrency, timeoutMs: s.s3Timeout * 1000 };
}

export interface PoolSpec {
  type: PoolRecord['type'];
  config: PoolRecord['config'];
}

export async function openDriver(pool: PoolSpec, secretKey: Secret | undefined, settings: DriverSettings = {}): Promise<PoolDriver> {
  switch (pool.type) {
    case 'local':
      return new LocalDriver((pool.config as LocalPoolConfig).path);
    case 's3': {
      const { S3Driver } = await import('./s3.js');
      const c = pool.config as S3PoolConfig;
      return new S3Driver({ ...c, secretKey, partSize: settings.partSize, concurrency: settings.concurrency, timeoutMs: settings.timeoutMs });
    }
  }
}
