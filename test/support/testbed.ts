// What test files import: the shared servers' connection info plus small client helpers.
//
//   import { testbed, mysqlConn, redisClient, s3Client, tempDir } from './support/testbed.js';
//   const tb = testbed();
//   const conn = await mysqlConn(tb.mariadb, 'mydb');

import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, inject } from 'vitest';
import { makeGuardedDirSync, type Guard } from './ports.js';
import type { MariaDBInfo, RedisInfo, S3Info, TestbedInfo } from './types.js';
import type { EngineRunContext } from '../../src/engines/types.js';

export type { MariaDBInfo, RedisInfo, S3Info, TestbedInfo } from './types.js';

/** Connection info of the servers started by global-setup.ts. */
export function testbed(): TestbedInfo {
  const info = inject('testbed');
  if (!info) throw new Error('test bed not provided: is test/support/global-setup.ts in vitest globalSetup?');
  return info;
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
