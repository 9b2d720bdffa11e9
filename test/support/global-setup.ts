// vitest globalSetup: starts ONE MariaDB, ONE Redis and ONE S3 (Ceph RGW) for the whole run,
// in parallel, and provides their connection info to the test files as inject('testbed').
// If any of them cannot start, setup throws and the run fails (never skipped).

import type { TestProject } from 'vitest/node';
import { startMariaDB, type MariaDBServer } from './mariadb.js';
import { startRedis, type RedisServer } from './redis.js';
import { startS3, type S3Server } from './s3.js';
import type { TestbedInfo } from './types.js';

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - t0) };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const results = await Promise.allSettled([
    timed(() => startMariaDB()),
    timed(() => startRedis()),
    timed(() => startS3()),
  ]);
  const [m, r, s] = results;

  const started: Array<{ stop(): Promise<void> }> = [];
  for (const res of results) if (res.status === 'fulfilled') started.push(res.value.value);

  const teardown = async (): Promise<void> => {
    const errors: unknown[] = [];
    await Promise.all(
      started.map((srv) => srv.stop().catch((err: unknown) => void errors.push(err))),
    );
    if (errors.length > 0) throw new AggregateError(errors, 'test bed: stopping servers failed');
  };

  if (m.status === 'rejected' || r.status === 'rejected' || s.status === 'rejected') {
    await teardown().catch(() => undefined);
    const failures = results
      .map((res, i) => (res.status === 'rejected' ? `${['MariaDB', 'Redis', 'S3'][i]}: ${(res.reason as Error)?.message ?? String(res.reason)}` : ''))
      .filter(Boolean);
    throw new Error(`test bed could not start:\n${failures.join('\n\n')}`);
  }

  const mariadb: MariaDBServer = m.value.value;
  const redis: RedisServer = r.value.value;
  const s3: S3Server = s.value.value;

  const info: TestbedInfo = {
    mariadb: {
      host: mariadb.host,
      port: mariadb.port,
      socket: mariadb.socket,
      datadir: mariadb.datadir,
      user: mariadb.user,
      password: mariadb.password,
      version: mariadb.version,
    },
    redis: {
      host: redis.host,
      port: redis.port,
      ...(redis.password !== undefined ? { password: redis.password } : {}),
      version: redis.version,
    },
    s3: {
      endpoint: s3.endpoint,
      region: s3.region,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
    },
    startupMs: { mariadb: m.value.ms, redis: r.value.ms, s3: s.value.ms },
  };
  project.provide('testbed', info);

  return teardown;
}
