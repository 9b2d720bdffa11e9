// What test files import: the shared servers' connection info plus small client helpers.
//
//   import { servers, testbed, mysqlConn, redisClient, s3Client, tempDir } from './support/testbed.js';
//   beforeAll(() => servers('mariadb', 's3'));   // starts them (once per run) or reuses them
//   const conn = await mysqlConn(testbed().mariadb, 'mydb');
//
// A file that asks for no server starts none (`npx vitest run test/cli/sqlite.test.ts`
// starts no MariaDB). A server that cannot start rejects servers(), so the hook and the file fail.

import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, inject } from 'vitest';
import { makeGuardedDirSync, type Guard } from './ports.js';
import type { StartReply } from './shared-servers.js';
import type { MariaDBInfo, RedisInfo, S3Info, ServerName, TestbedInfo } from './types.js';
import type { EngineRunContext } from '../../src/engines/types.js';

export type { MariaDBInfo, RedisInfo, S3Info, ServerName, TestbedInfo } from './types.js';

// The servers this test file asked for (each test file imports this module afresh).
const asked: Partial<TestbedInfo> = {};

async function askFor<N extends ServerName>(name: N): Promise<TestbedInfo[N]> {
  const have = asked[name];
  if (have) return have;
  const base = inject('testbedUrl');
  if (!base) throw new Error('test bed not provided: is test/support/global-setup.ts in vitest globalSetup?');
  let reply: StartReply<N>;
  try {
    // No client timeout: the coordinator answers when the server is up or has failed
    // (each start has its own timeout); the hook timeout bounds the wait.
    const res = await fetch(`${base}/start/${name}`);
    reply = (await res.json()) as StartReply<N>;
  } catch (err) {
    throw new Error(`test bed: asking for ${name} failed: ${(err as Error).message}`);
  }
  if (!reply.ok) throw new Error(reply.error);
  asked[name] = reply.info;
  return reply.info;
}

/**
 * Start (or reuse) the run's shared servers this test file needs, in parallel; call it in
 * a `beforeAll`. Resolves to their connection info; afterwards testbed() has them too.
 */
export async function servers<N extends ServerName>(...names: N[]): Promise<Pick<TestbedInfo, N>> {
  const infos = await Promise.all(names.map((n) => askFor(n)));
  const out = {} as Pick<TestbedInfo, N>;
  names.forEach((n, i) => {
    out[n] = infos[i] as TestbedInfo[N];
  });
  return out;
}

/**
 * Connection info of the shared servers this file asked for with servers(). Reading a
 * server the file did not ask for throws (say which one to add).
 */
export function testbed(): TestbedInfo {
  const get = <N extends ServerName>(n: N): TestbedInfo[N] => {
    const info = asked[n];
    if (!info) throw new Error(`test bed: this test file did not ask for ${n}: add \`beforeAll(() => servers('${n}'))\``);
    return info;
  };
  return {
    get mariadb() {
      return get('mariadb');
    },
    get redis() {
      return get('redis');
    },
    get s3() {
      return get('s3');
    },
  };
}

/** A mysql2/promise connection over TCP; call `await conn.end()` when done. */
export async function mysqlConn(info: MariaDBInfo, database?: string): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: info.host,
    port: info.port,
    user: info.user,
    password: info.password,
    ...(database !== undefined ? { database } : {}),
    multipleStatements: true,
  });
}

/** The rows of a query, in the shape the test selects (mysql2 types rows as loose packets). */
export async function queryRows<T>(conn: mysql.Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(sql, params);
  return rows as T[];
}

/** An ioredis client (connects right away); call `client.disconnect()` or `quit()` when done. */
export function redisClient(info: RedisInfo, db = 0): Redis {
  return new Redis({
    host: info.host,
    port: info.port,
    db,
    ...(info.password !== undefined ? { password: info.password } : {}),
    maxRetriesPerRequest: 1,
  });
}

/** An S3Client for the test RGW (path-style, us-east-1, 127.0.0.1). Call `destroy()` when done. */
export function s3Client(info: S3Info): S3Client {
  return new S3Client({
    endpoint: info.endpoint,
    region: info.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKey, secretAccessKey: info.secretKey },
  });
}

// Temp dirs made by tempDir() live in one parent dir per test file (os.tmpdir()/
// dbs-test-files-XXXXXX), removed after the file (one afterAll per file: with vitest's
// default isolation every test file imports this module afresh), at worker exit, and by the
// parent's guard process if the worker is killed (Ctrl-C).
let parent: Guard | undefined;
function cleanupDirs(): void {
  if (!parent) return;
  try {
    rmSync(parent.dir, { recursive: true, force: true, maxRetries: 3 });
    parent.disarm();
  } catch {
    // the guard removes it when this process ends
  }
  parent = undefined;
}
afterAll(cleanupDirs);
process.once('exit', cleanupDirs);

/** Make a fresh empty directory now; it is removed after the test file. */
export function tempDir(prefix = 'tmp'): string {
  parent ??= makeGuardedDirSync('files');
  return mkdtempSync(join(parent.dir, `${prefix}-`));
}

export { startMariaDB, type MariaDBServer, type StartMariaDBOptions } from './mariadb.js';
export { startRedis, type RedisServer, type StartRedisOptions } from './redis.js';
export { startS3, type S3Server } from './s3.js';

/** An engine run context whose log lines are kept in `logs`, with its own scratch folder. */
export interface EngineTestCtx extends EngineRunContext {
  logs: string[];
}
export function engineCtx(prefix: string, signal: AbortSignal = new AbortController().signal): EngineTestCtx {
  const logs: string[] = [];
  return { signal, log: (l) => logs.push(l), tmpDir: tempDir(prefix), logs };
}
