// S3 over TLS (the test RGW's https endpoint, a certificate made for the run): how the driver
// protects each part on the way, checked on the requests themselves, and a round trip.
//  - https: UNSIGNED-PAYLOAD plus x-amz-checksum-crc32 (the part's CRC32), declared at
//    CreateMultipartUpload and repeated at Complete; the server checks it.
//  - http: the part is signed (x-amz-content-sha256 is its SHA-256) and carries no CRC.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { buffer } from 'node:stream/consumers';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/secret.js';
import { crc32Base64, partIntegrityFor, partSizeFor, S3Driver } from '../../src/storage/s3.js';
import { s3Client, servers, testbed } from '../support/testbed.js';

beforeAll(async () => {
  await servers('s3');
  // This process trusts the run's certificate (dbs itself: NODE_EXTRA_CA_CERTS, see README).
  setDefaultCACertificates([...getCACertificates('default'), readFileSync(testbed().s3.caFile, 'utf8')]);
});

interface Sent {
  command: string;
  headers: Record<string, string>;
  body?: string;
}

/** A driver whose every request is recorded (command name, headers, and the XML of Complete). */
async function recordingDriver(endpoint: string) {
  const s3 = testbed().s3;
  const bucket = `tls-${randomBytes(4).toString('hex')}`;
  const driver = new S3Driver({ endpoint, region: s3.region, bucket, prefix: 'p', pathStyle: true, accessKey: s3.accessKey, secretKey: new Secret(s3.secretKey) });
  const sent: Sent[] = [];
  driver.client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers: Record<string, string>; body?: unknown };
      sent.push({ command: String(context.commandName), headers: { ...req.headers }, body: typeof req.body === 'string' ? req.body : undefined });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordForTest', priority: 'low' },
  );
  expect(await driver.ensureBucket(true)).toBe('created');
  return { driver, sent, bucket };
}

/** The source's slices as the driver cuts them into parts (base 8 MiB). */
function partsOf(src: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let n = 1, at = 0; at < src.length; n++) {
    const len = Math.min(partSizeFor(n, 8 * 1024 * 1024), src.length - at);
    out.push(src.subarray(at, at + len));
    at += len;
  }
  return out;
}

describe('S3 driver over TLS', () => {
  const drivers: S3Driver[] = [];
  afterAll(async () => {
    for (const d of drivers) await d.close();
  });

  it('says which endpoints get which protection', () => {
    expect(partIntegrityFor('https://s3.example.com')).toBe('tls-crc32');
    expect(partIntegrityFor('HTTPS://minio:9000')).toBe('tls-crc32');
    expect(partIntegrityFor(undefined)).toBe('tls-crc32'); // AWS, reached over https
    expect(partIntegrityFor('http://127.0.0.1:9000')).toBe('signed-sha256');
  });

  it('https: parts go as UNSIGNED-PAYLOAD with their CRC32, and the object comes back byte for byte', async () => {
    const { driver, sent, bucket } = await recordingDriver(testbed().s3.tlsEndpoint);
    drivers.push(driver);
    expect(driver.partIntegrity).toBe('tls-crc32');
    const src = randomBytes(20 * 1024 * 1024 + 123);
    await driver.put('a/big.bin', (async function* () {
      for (let at = 0; at < src.length; at += 1 << 20) yield src.subarray(at, Math.min(src.length, at + (1 << 20)));
    })());
    const parts = sent.filter((s) => s.command === 'UploadPartCommand');
    const want = partsOf(src);
    expect(parts).toHaveLength(want.length);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) {
      expect(p.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    }
    expect(parts.map((p) => p.headers['x-amz-checksum-crc32']).sort()).toEqual(want.map((b) => crc32Base64(b)).sort());
    const create = sent.find((s) => s.command === 'CreateMultipartUploadCommand')!;
    expect(create.headers['x-amz-checksum-algorithm']).toBe('CRC32');
    const complete = sent.find((s) => s.command === 'CompleteMultipartUploadCommand')!;
    for (const b of want) expect(complete.body).toContain(`<ChecksumCRC32>${crc32Base64(b)}</ChecksumCRC32>`);
    const back = await buffer(await driver.get('a/big.bin'));
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(src).digest('hex'));
    const raw = s3Client(testbed().s3);
    try {
      expect((await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toHaveLength(0);
    } finally {
      raw.destroy();
    }
  });

  it('http: parts are signed with their SHA-256 and carry no CRC', async () => {
    const { driver, sent } = await recordingDriver(testbed().s3.endpoint);
    drivers.push(driver);
    expect(driver.partIntegrity).toBe('signed-sha256');
    const src = randomBytes(17 * 1024 * 1024);
    await driver.put('a/big.bin', (async function* () {
      yield src;
    })());
    const parts = sent.filter((s) => s.command === 'UploadPartCommand');
    const want = partsOf(src);
    expect(parts).toHaveLength(want.length);
    expect(parts.map((p) => p.headers['x-amz-content-sha256']).sort()).toEqual(want.map((b) => createHash('sha256').update(b).digest('hex')).sort());
    for (const p of parts) expect(p.headers['x-amz-checksum-crc32']).toBeUndefined();
    expect(sent.find((s) => s.command === 'CreateMultipartUploadCommand')!.headers['x-amz-checksum-algorithm']).toBeUndefined();
    expect((await buffer(await driver.get('a/big.bin'))).equals(src)).toBe(true);
  });
});
