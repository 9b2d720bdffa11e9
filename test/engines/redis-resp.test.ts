// The RESP writer and the incremental command parser of the Redis engine (no server needed).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { argIs, encodeCommand, printableKey, pushRestoreCommand, RespCommandParser, RespFormatError } from '../../src/engines/redis/resp.js';
import { classifyRedisError, parseKeyspace, parseServerInfo } from '../../src/engines/redis/conn.js';
import { databaseProblems, maxRdbVersion, selectedDatabases } from '../../src/engines/redis/engine.js';
import { parseRedisToolVersion, rdbHeaderVersion, redisCliArgs, redisToolEnv } from '../../src/engines/redis/rdb.js';
import { Secret } from '../../src/secret.js';
import type { Endpoint } from '../../src/engines/types.js';

function sampleCommands(): Buffer[][] {
  const every = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) every[i] = i;
  const cmds: Buffer[][] = [[Buffer.from('SELECT'), Buffer.from('3')]];
  for (let i = 0; i < 20; i++) {
    const parts: Buffer[] = [];
    pushRestoreCommand(parts, Buffer.concat([Buffer.from('k\r\n$*'), Buffer.from([i])]), i % 3 === 0 ? 0 : 1_700_000_000_000 + i, Buffer.concat([every, randomBytes(i * 37)]));
    const parsed = new RespCommandParser().push(Buffer.concat(parts));
    expect(parsed).toHaveLength(1);
    cmds.push(parsed[0]);
  }
  cmds.push([Buffer.from('RESTORE'), Buffer.alloc(0), Buffer.from('0'), randomBytes(70_000), Buffer.from('REPLACE'), Buffer.from('ABSTTL')]);
  return cmds;
}

describe('RESP commands', () => {
  it('writes RESTORE key abs-ttl payload REPLACE ABSTTL in standard framing', () => {
    const parts: Buffer[] = [];
    pushRestoreCommand(parts, Buffer.from('a\r\nb'), 1234, Buffer.from([0, 255]));
    expect(Buffer.concat(parts).toString('latin1')).toBe('*6\r\n$7\r\nRESTORE\r\n$4\r\na\r\nb\r\n$4\r\n1234\r\n$2\r\n\x00\xff\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n');
    expect(encodeCommand(['SELECT', '0']).toString('latin1')).toBe('*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n');
  });

  it('parses commands split at every possible chunk boundary', () => {
    const cmds = sampleCommands().slice(0, 6);
    const stream = Buffer.concat(cmds.map((c) => encodeCommand(c)));
    for (let size = 1; size <= 40; size++) {
      const p = new RespCommandParser();
      const got: Buffer[][] = [];
      for (let i = 0; i < stream.length; i += size) got.push(...p.push(stream.subarray(i, i + size)));
      p.end();
      expect(got.length).toBe(cmds.length);
      got.forEach((c, i) => expect(Buffer.concat(c).equals(Buffer.concat(cmds[i]))).toBe(true));
      expect(p.bytes).toBe(stream.length);
    }
  });

  it('parses a binary stream in random chunks, big values included', () => {
    const cmds = sampleCommands();
    const stream = Buffer.concat(cmds.map((c) => encodeCommand(c)));
    for (let round = 0; round < 20; round++) {
      const p = new RespCommandParser();
      const got: Buffer[][] = [];
      let i = 0;
      while (i < stream.length) {
        const n = 1 + Math.floor(Math.random() * (round % 2 ? 200 : 70_000));
        got.push(...p.push(stream.subarray(i, i + n)));
        i += n;
      }
      p.end();
      expect(got.map((c) => c.length)).toEqual(cmds.map((c) => c.length));
      got.forEach((c, k) => c.forEach((a, j) => expect(a.equals(cmds[k][j])).toBe(true)));
    }
  });

  it('refuses a truncated stream, inline commands and broken framing', () => {
    const stream = encodeCommand(['SELECT', '0']);
    const p = new RespCommandParser();
    expect(p.push(stream.subarray(0, stream.length - 1))).toEqual([]);
    expect(() => p.end()).toThrow(RespFormatError);
    expect(() => new RespCommandParser().push(Buffer.from('PING\r\n'))).toThrow(/expected a RESP array/);
    expect(() => new RespCommandParser().push(Buffer.from('*1\r\n:1\r\n'))).toThrow(/expected a bulk string/);
    expect(() => new RespCommandParser().push(Buffer.from('*1\r\n$2\r\nabc\r\n'))).toThrow(/not followed by CRLF/);
    expect(() => new RespCommandParser().push(Buffer.from('*x\r\n'))).toThrow(/bad array length/);
    const ok = new RespCommandParser();
    ok.push(Buffer.alloc(0));
    ok.end();
  });

  it('helpers: argIs, printableKey', () => {
    expect(argIs(Buffer.from('select'), 'SELECT')).toBe(true);
    expect(argIs(Buffer.from('SELECTX'), 'SELECT')).toBe(false);
    expect(printableKey(Buffer.from([0x61, 0, 0xff, 0x5c]))).toBe('a\\x00\\xff\\x5c');
    expect(printableKey(Buffer.alloc(100, 0x61))).toMatch(/\.\.\.$/);
  });
});

describe('redis engine helpers', () => {
  const ep = (o: Partial<Endpoint> = {}): Endpoint => ({ kind: 'redis', url: 'redis://h:1', host: 'h', port: 1, params: {}, ...o });

  it('chooses databases: the selection, else the URL, else those with keys', () => {
    const ks = { '0': 5, '10': 1, '2': 7 };
    expect(selectedDatabases(ep(), { databases: ['3', '1', '3'], all: false, tables: [] }, ks)).toEqual(['1', '3']);
    expect(selectedDatabases(ep({ path: '4' }), { databases: [], all: false, tables: [] }, ks)).toEqual(['4']);
    expect(selectedDatabases(ep(), { databases: [], all: true, tables: [] }, ks)).toEqual(['0', '2', '10']);
    expect(databaseProblems(['0', '16', 'a'], 16)).toEqual(['database 16 does not exist (the server has 16)', 'database "a" is not a Redis database number (0, 1, 2, ...)']);
    expect(databaseProblems(['99'], undefined)).toEqual([]);
  });

  it('knows which RDB versions a Redis version loads', () => {
    expect(maxRdbVersion('7.0.15')).toBe(10);
    expect(maxRdbVersion('7.2.4')).toBe(11);
    expect(maxRdbVersion('6.2.14')).toBe(9);
    expect(maxRdbVersion('8.0.0')).toBeUndefined();
    expect(maxRdbVersion('')).toBeUndefined();
  });

  it('parses INFO', () => {
    expect(parseServerInfo('# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n')).toMatchObject({ version: '7.0.15', flavor: 'redis' });
    expect(parseServerInfo('redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n')).toMatchObject({ version: '8.0.1', flavor: 'valkey' });
    expect(parseKeyspace('# Keyspace\r\ndb0:keys=12,expires=1,avg_ttl=0\r\ndb3:keys=4,expires=0,avg_ttl=0\r\n')).toEqual({ '0': 12, '3': 4 });
  });

  it('classifies errors without showing the password', () => {
    const e = ep({ password: new Secret('hunter2-secret') });
    expect(classifyRedisError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), e, 'source').code).toBe('SOURCE_UNREACHABLE');
    const auth = classifyRedisError(Object.assign(new Error('WRONGPASS invalid username-password pair'), { command: { name: 'auth', args: ['hunter2-secret'] } }), e, 'source');
    expect(auth.code).toBe('SOURCE_AUTH');
    expect(auth.cause).toBeUndefined();
    expect(JSON.stringify(auth)).not.toContain('hunter2');
    expect(classifyRedisError(new Error('ERR invalid password hunter2-secret'), e, 'target').message).not.toContain('hunter2');
    expect(classifyRedisError(new Error('NOPERM this user has no permissions to run the dump command'), e, 'source').code).toBe('PERMISSION_DENIED');
  });

  it('redis-cli: no secret in argv, password through REDISCLI_AUTH only', () => {
    const e = ep({ host: '10.0.0.1', port: 6380, user: 'bk', password: new Secret('s3cret-value') });
    const args = redisCliArgs(e);
    expect(args).toEqual(['-h', '10.0.0.1', '-p', '6380', '--user', 'bk']);
    expect(args.join(' ')).not.toContain('s3cret');
    expect(redisToolEnv(e)['REDISCLI_AUTH']).toBe('s3cret-value');
    process.env['REDISCLI_AUTH'] = 'inherited';
    try {
      expect(redisToolEnv(ep())['REDISCLI_AUTH']).toBeUndefined();
    } finally {
      delete process.env['REDISCLI_AUTH'];
    }
    expect(redisCliArgs(ep({ params: { socket: '/run/redis.sock' } }))).toEqual(['-s', '/run/redis.sock']);
    expect(parseRedisToolVersion('redis-cli 7.0.15')).toBe('7.0.15');
    expect(parseRedisToolVersion('Redis server v=7.2.4 sha=0')).toBe('7.2.4');
    expect(rdbHeaderVersion(Buffer.from('REDIS0010\xfa', 'latin1'))).toBe(10);
  });
});
