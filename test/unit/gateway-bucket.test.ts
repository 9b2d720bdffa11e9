// The gateway's cap is one TokenBucket per process (core/gateway.ts): every network pool a
// task opens, from any task context of a daemon, is wrapped around the same bucket, and a
// gateway update changes that bucket's rate (the tasks running already follow it) instead of
// making a second one. The on-the-wire proof is test/cli/daemon-cap.test.ts.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { poolEgress } from '../../src/core/gateway.js';
import { LocalDriver } from '../../src/storage/local.js';
import { ThrottledDriver } from '../../src/storage/throttle.js';
import { Catalog } from '../../src/store/catalog.js';
import { tempDir } from '../support/testbed.js';

const MiB = 1024 * 1024;

/** The bucket of the cap wrapper poolEgress gives an S3 pool (undefined: no cap). */
function bucketOf(catalog: Catalog) {
  const wrappers = poolEgress(catalog, 's3').wrappers;
  if (!wrappers.length) return undefined;
  expect(wrappers).toHaveLength(1);
  const d = wrappers[0]!(new LocalDriver(tempDir('pool')));
  expect(d).toBeInstanceOf(ThrottledDriver);
  return (d as ThrottledDriver).bucket;
}

describe('the gateway bandwidth bucket', () => {
  it('is one per process: pools opened for two tasks share it, and an update changes its rate', () => {
    const home = join(tempDir('h'), 'home');
    // Two catalog handles, as two tasks of a daemon (or two dbs commands in one process) hold.
    const a = Catalog.open(home);
    const b = Catalog.open(home);
    try {
      a.insertGateway({ address: '127.0.0.2', bandwidth: 8 * MiB, bandwidthText: '8MiB/s' });
      const first = bucketOf(a);
      const second = bucketOf(b);
      expect(first).toBeDefined();
      expect(second).toBe(first);
      expect(first!.rate).toBe(8 * MiB);

      a.updateGateway({ bandwidth: 2 * MiB, bandwidthText: '2MiB/s' });
      const third = bucketOf(b);
      expect(third).toBe(first);
      expect(first!.rate).toBe(2 * MiB);

      // No cap: no wrapper (running transfers keep the bucket until they end); a local pool never goes through it.
      a.updateGateway({ bandwidth: null, bandwidthText: null });
      expect(bucketOf(a)).toBeUndefined();
      a.updateGateway({ bandwidth: 4 * MiB, bandwidthText: '4MiB/s' });
      expect(bucketOf(a)).toBe(first);
      expect(first!.rate).toBe(4 * MiB);
      expect(poolEgress(a, 'local').wrappers).toHaveLength(0);
    } finally {
      a.close();
      b.close();
    }
  });
});
