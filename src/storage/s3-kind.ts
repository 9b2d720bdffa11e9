// The S3 pool kind: its config, how `pool bind` flags become one, how the catalog's copy
// decodes, how it shows. Apart from s3.ts so that listing pools does not load the AWS SDK:
// open() and prepare() import the driver lazily.
import { DbsError } from '../errors.js';
import { boolean, invalid, object, optString, string } from '../decode.js';
import type { DriverKind } from './types.js';

export const DEFAULT_BUCKET = 'dbs';
export const DEFAULT_REGION = 'us-east-1';

export interface S3PoolConfig {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  pathStyle: boolean;
  /** Absent: the AWS credential chain. The secret key is a catalog secret, never here. */
  accessKey?: string;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function normalizePrefix(p: string | undefined): string {
  const s = (p ?? '').replace(/^\/+|\/+$/g, '');
  if (s.split('/').some((seg) => seg === '..' || seg === '.') || /[\x00-\x1f\\]/.test(s)) {
    throw new DbsError('INVALID_ARGUMENT', `invalid --prefix ${JSON.stringify(p)}`, { hint: 'use a key prefix such as backups/prod' });
  }
  return s;
}

function validateEndpoint(endpoint: string | undefined): string {
  if (!endpoint) throw new DbsError('USAGE', 'an S3 pool needs --endpoint URL', { hint: 'e.g. --endpoint https://s3.us-east-1.amazonaws.com' });
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `--endpoint ${JSON.stringify(endpoint)} is not a URL`, { hint: 'e.g. --endpoint http://127.0.0.1:9000' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DbsError('INVALID_ARGUMENT', `--endpoint must be an http or https URL, got ${u.protocol}`, { hint: 'e.g. --endpoint https://s3.example.com' });
  }
  if (u.username || u.password) {
    throw new DbsError('INVALID_ARGUMENT', '--endpoint must not contain credentials', { hint: 'pass --access-key and --secret-key-env VAR instead' });
  }
  return u.toString().replace(/\/$/, '');
}

export const s3Kind: DriverKind<S3PoolConfig> = {
  type: 's3',
  flags: ['endpoint', 'bucket', 'prefix', 'region', 'accessKey'],
  misfitHints: { path: 'use --bucket and --prefix for s3 pools' },
  credentials: true,
  network: true,
  fromBind(f) {
    const bucket = f.bucket ?? DEFAULT_BUCKET;
    if (!BUCKET_RE.test(bucket)) {
      throw new DbsError('INVALID_ARGUMENT', `--bucket ${JSON.stringify(bucket)} is not a valid bucket name`, { hint: '3-63 lowercase letters, digits, dots and dashes' });
    }
    const config: S3PoolConfig = {
      endpoint: validateEndpoint(f.endpoint),
      bucket,
      prefix: normalizePrefix(f.prefix),
      region: f.region || DEFAULT_REGION,
      pathStyle: f.pathStyle ?? true,
      ...(f.accessKey ? { accessKey: f.accessKey } : {}),
    };
    if (f.secretKey && !f.accessKey) throw new DbsError('USAGE', 'a secret key was given without --access-key', { hint: 'pass --access-key AK too' });
    return config;
  },
  decode(data, what) {
    const o = object(data, what);
    const bucket = string(o, 'bucket', what);
    if (!BUCKET_RE.test(bucket)) throw invalid(what, `bucket: ${JSON.stringify(bucket)} is not a bucket name`);
    const endpoint = string(o, 'endpoint', what);
    if (!/^https?:\/\//.test(endpoint)) throw invalid(what, `endpoint: ${JSON.stringify(endpoint)} is not an http(s) URL`);
    const accessKey = optString(o, 'accessKey', what);
    return {
      endpoint,
      bucket,
      prefix: string(o, 'prefix', what),
      region: string(o, 'region', what),
      pathStyle: boolean(o, 'pathStyle', what),
      ...(accessKey !== undefined ? { accessKey } : {}),
    };
  },
  location: (c) => `s3://${c.bucket}${c.prefix ? `/${c.prefix}` : ''} @ ${c.endpoint}`,
  fields: (c) => [
    ['Endpoint', c.endpoint],
    ['Bucket', c.bucket],
    ['Prefix', c.prefix || '-'],
    ['Region', c.region],
    ['Access key', c.accessKey ?? '(AWS credential chain)'],
  ],
  withAccessKey: (c, accessKey) => ({ ...c, accessKey }),
  async open(c, secretKey, settings) {
    const { S3Driver } = await import('./s3.js');
    return new S3Driver({ ...c, secretKey, partSize: settings.partSize, concurrency: settings.concurrency, timeoutMs: settings.timeoutMs, localAddress: settings.localAddress });
  },
  /** Without --bucket the default bucket is created when missing; a named bucket must exist. */
  async prepare(driver, c, f, options) {
    const { S3Driver } = await import('./s3.js');
    if (!(driver instanceof S3Driver)) return undefined;
    return (await driver.ensureBucket(f.bucket === undefined, options)) === 'created' ? `bucket ${c.bucket}` : undefined;
  },
};
