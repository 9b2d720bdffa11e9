// An S3 pool over https, as an operator with a private CA runs it: the real program (bin/dbs.js)
// against the test RGW's TLS endpoint. Without the CA the bind is refused with a hint and writes
// nothing; with NODE_EXTRA_CA_CERTS a backup, a copy to the https pool (multipart, UNSIGNED-PAYLOAD
// with CRC32 parts) and a restore from it give the same data.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tableDigests } from '../../src/core/quickstart.js';
import { dbsBin } from '../support/cli.js';
import { bigSqlite } from '../support/fixtures.js';
import { servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3'));

describe('S3 pool over https', () => {
  it('an untrusted certificate: the bind fails with exit 6 (unreachable), names the endpoint, hints NODE_EXTRA_CA_CERTS, writes nothing', async () => {
    const s3 = testbed().s3;
    const home = tempDir('home');
    const r = await dbsBin(['pool', 'bind', 'tls', '--type', 's3', '--endpoint', s3.tlsEndpoint, '--prefix', `tls-${process.pid}-untrusted`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env: { S3_SECRET: s3.secretKey } });
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/cannot trust the TLS certificate of s3:\/\/dbs\/tls-\d+-untrusted @ https:\/\/127\.0\.0\.1:\d+ \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    expect(r.stderr).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(r.stderr).not.toContain(s3.secretKey);
    const list = await dbsBin(['--json', 'pool', 'list'], { home });
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('an untrusted certificate of a bucket source: plan create fails with exit 6 and the hint, creates nothing', async () => {
    const s3 = testbed().s3;
    const home = tempDir('home');
    expect((await dbsBin(['pool', 'bind', 'local', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
    const r = await dbsBin(['plan', 'create', 'media', '--source', 's3://tls-untrusted-src/photos', '--endpoint', s3.tlsEndpoint, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET', '--pool', 'local'], { home, env: { S3_SECRET: s3.secretKey } });
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/cannot trust the TLS certificate of s3:\/\/tls-untrusted-src\/photos\/ @ https:\/\/127\.0\.0\.1:\d+ \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    expect(r.stderr).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(r.stderr).not.toContain(s3.secretKey);
    expect(JSON.parse((await dbsBin(['--json', 'plan', 'list'], { home })).stdout)).toEqual([]);
  });

  it('with NODE_EXTRA_CA_CERTS: backup to a local pool, replicated to the https pool, restored from it with the same rows', async () => {
    const s3 = testbed().s3;
    const home = tempDir('home');
    const env = { S3_SECRET: s3.secretKey, NODE_EXTRA_CA_CERTS: s3.caFile };
    const ok = async (args: string[]) => {
      const r = await dbsBin(args, { home, env });
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
      return r;
    };
    await ok(['pool', 'bind', 'local', '--type', 'local', '--path', tempDir('pool')]);
    await ok(['pool', 'bind', 'tls', '--type', 's3', '--endpoint', s3.tlsEndpoint, '--prefix', `tls-${process.pid}-trusted`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
    const src = bigSqlite(24); // ~24 MB of random rows: a multipart copy (8 MiB parts)
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src}`, '--pool', 'local', '--replicate-to', 'tls', '--compress', 'none']);
    const run = JSON.parse((await ok(['--json', 'plan', 'run', 'app'])).stdout);
    const id = run.backup.id as string;
    const shown = JSON.parse((await ok(['--json', 'backup', 'show', id])).stdout);
    expect(shown.copies.map((c: { poolName: string; role: string; status: string }) => [c.poolName, c.role, c.status])).toEqual([
      ['local', 'primary', 'ready'],
      ['tls', 'replica', 'ready'],
    ]);
    expect(shown.copies[1].storedBytes).toBeGreaterThan(16 * 1024 * 1024);
    await ok(['backup', 'verify', id, '--from-pool', 'tls']);
    const out = join(tempDir('restore'), 'app.db');
    await ok(['backup', 'restore', id, '--from-pool', 'tls', '--to', `sqlite://${out}`]);
    expect(tableDigests(out)).toEqual(tableDigests(src));
    expect(tableDigests(out).length).toBeGreaterThan(0);
  });
});
