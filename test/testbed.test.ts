// Smoke test of the test bed itself: the shared servers from global-setup answer, and a
// private server can be started and stopped by PID.

import { existsSync } from 'node:fs';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  CreateMultipartUploadCommand,
  AbortMultipartUploadCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type mysql from 'mysql2/promise';
import { beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from './support/ports.js';
import { startMariaDB } from './support/mariadb.js';
import { startRedis } from './support/redis.js';
import { mysqlConn, redisClient, s3Client, servers, tempDir, testbed } from './support/testbed.js';

beforeAll(() => servers('mariadb', 'redis', 's3'));

describe('test bed', () => {
  const tb = testbed();

  it('MariaDB answers and can create a database and table', async () => {
    const conn = await mysqlConn(tb.mariadb);
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
      expect(String(rows[0]?.['v'])).toMatch(/MariaDB/);
      expect(tb.mariadb.version).toMatch(/MariaDB/);
      expect(tb.mariadb.port).not.toBe(3306);
      await conn.query('CREATE DATABASE IF NOT EXISTS smoke');
      await conn.query('CREATE TABLE smoke.t (id INT PRIMARY KEY, v VARCHAR(20))');
      await conn.query("INSERT INTO smoke.t VALUES (1, 'one'), (2, 'two')");
      const [cnt] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM smoke.t');
      expect(Number(cnt[0]?.['n'])).toBe(2);
      const [bin] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
      expect(bin.length).toBe(1); // binlog on by default
      await conn.query('DROP DATABASE smoke');
    } finally {
      await conn.end();
    }
  });

  it('Redis answers PING and SET/GET', async () => {
    const client = redisClient(tb.redis);
    try {
      expect(tb.redis.port).not.toBe(6379);
      expect(await client.ping()).toBe('PONG');
      await client.set('smoke:key', 'value');
      expect(await client.get('smoke:key')).toBe('value');
      await client.del('smoke:key');
    } finally {
      client.disconnect();
    }
  });

  it('S3: bucket, put/get, multipart listing, If-None-Match', async () => {
    const s3 = s3Client(tb.s3);
    try {
      const Bucket = `smoke-${Date.now()}`;
      await s3.send(new CreateBucketCommand({ Bucket }));
      await s3.send(new PutObjectCommand({ Bucket, Key: 'a/b.txt', Body: 'hello' }));
      const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'a/b.txt' }));
      expect(await got.Body?.transformToString()).toBe('hello');

      const mpu = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'big' }));
      const list = await s3.send(new ListMultipartUploadsCommand({ Bucket }));
      expect(list.Uploads?.map((u) => u.UploadId)).toContain(mpu.UploadId);
      await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'big', UploadId: mpu.UploadId }));
      const after = await s3.send(new ListMultipartUploadsCommand({ Bucket }));
      expect(after.Uploads ?? []).toHaveLength(0);

      // Conditional create: a new key succeeds, an existing key fails with 412.
      await s3.send(new PutObjectCommand({ Bucket, Key: 'lock', Body: '1', IfNoneMatch: '*' }));
      const err = await s3
        .send(new PutObjectCommand({ Bucket, Key: 'lock', Body: '2', IfNoneMatch: '*' }))
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(S3ServiceException);
      expect((err as S3ServiceException).$metadata.httpStatusCode).toBe(412);
    } finally {
      s3.destroy();
    }
  });

  it('starts and stops a private Redis by PID', async () => {
    const srv = await startRedis({ password: 'sekret' });
    expect(srv.port).not.toBe(tb.redis.port);
    expect(pidAlive(srv.pid)).toBe(true);
    const client = redisClient(srv);
    try {
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
    await srv.stop();
    expect(pidAlive(srv.pid)).toBe(false);
    expect(existsSync(srv.dir)).toBe(false);
  });

  it('starts a private MariaDB with a root password, restarts and stops it', async () => {
    const srv = await startMariaDB({ rootPassword: 'pw-123', logBin: false });
    expect(srv.port).not.toBe(tb.mariadb.port);
    expect(srv.password).toBe('pw-123');
    const firstPid = srv.pid;
    let conn = await mysqlConn(srv);
    await conn.query('CREATE TABLE mysql.smoke_t (id INT PRIMARY KEY)');
    await conn.query('INSERT INTO mysql.smoke_t VALUES (1)');
    const [bin] = await conn.query<mysql.RowDataPacket[]>("SHOW VARIABLES LIKE 'log_bin'");
    expect(bin[0]?.['Value']).toBe('OFF');
    await conn.end();
    await expect(mysqlConn({ ...srv, password: '' })).rejects.toThrow(/Access denied/);

    await srv.restart(); // same port and datadir: data survives
    expect(srv.pid).not.toBe(firstPid);
    expect(pidAlive(firstPid)).toBe(false);
    conn = await mysqlConn(srv);
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM mysql.smoke_t');
    expect(Number(rows[0]?.['n'])).toBe(1);
    await conn.end();

    await srv.stop();
    expect(pidAlive(srv.pid)).toBe(false);
    expect(existsSync(srv.baseDir)).toBe(false);
  });

  it('tempDir makes a fresh directory each call', () => {
    const a = tempDir('smoke');
    const b = tempDir('smoke');
    expect(a).not.toBe(b);
    expect(existsSync(a) && existsSync(b)).toBe(true);
    expect(a).toMatch(/dbs-test-files-.*\/smoke-/);
  });
});
