// The bucket engine as core sees it, without loading it (see ../descriptor.ts): object storage
// sources `s3://BUCKET/PREFIX` with `--endpoint URL`, `--region`, `--access-key` and the secret
// key from `--secret-key-env VAR` / `--secret-key-file F` (the names of `pool bind`'s flags;
// without keys, the AWS credential chain). The secret key is the plan's password.
import { DbsError } from '../../errors.js';
import { invalid, object, optNumber, optString, string, stringArray, boolean, number } from '../../decode.js';
import { S3_FLAGS, wholeSelection, type EngineDescriptor, type RestoreSpec } from '../descriptor.js';
import type { BucketFacts, BucketRestoreOptions, BucketSelection } from './types.js';

export const DEFAULT_REGION = 'us-east-1';
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** An http(s) endpoint URL without credentials, normalised (no trailing slash). */
export function checkEndpointUrl(raw: string | undefined, flag = '--endpoint'): string {
  if (!raw) throw new DbsError('USAGE', `an s3:// bucket needs ${flag} URL`, { hint: 'e.g. --endpoint https://s3.us-east-1.amazonaws.com' });
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(raw)} is not a URL`, { hint: 'e.g. --endpoint http://127.0.0.1:9000' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DbsError('INVALID_ARGUMENT', `${flag} must be an http or https URL, got ${u.protocol}`, { hint: 'e.g. --endpoint https://s3.example.com' });
  if (u.username || u.password) throw new DbsError('INVALID_ARGUMENT', `${flag} must not contain credentials`, { hint: 'pass --access-key and --secret-key-env VAR instead' });
  return u.toString().replace(/\/$/, '');
}

const restore: RestoreSpec = {
  targets: ['--to'],
  options: ['--replace', '--path', ...S3_FLAGS],
  // Objects are written as the tar is read: the engine checks the target's keys first, and
  // core proves a lone snapshot's artifacts whole before the first PUT.
  streamsIntoTarget: true,
  targetHint: '--to s3://BUCKET/PREFIX [--endpoint URL --access-key AK --secret-key-env VAR]',
};

export const bucketDescriptor: EngineDescriptor<BucketSelection, BucketFacts, BucketRestoreOptions> = {
  kind: 'bucket',
  title: 'S3 bucket',
  endpoint: {
    schemes: ['s3'],
    form: 'server',
    check(ep, flag) {
      const bucket = ep.host ?? '';
      if (!BUCKET_RE.test(bucket)) throw new DbsError('INVALID_ARGUMENT', `${flag}: ${JSON.stringify(bucket)} is not a valid bucket name`, { hint: 'e.g. s3://my-bucket/photos (3-63 lowercase letters, digits, dots and dashes)' });
      if (ep.port !== undefined || ep.user !== undefined) throw new DbsError('INVALID_ARGUMENT', `${flag}: an s3:// URL names a bucket and a prefix only`, { hint: 'give the server with --endpoint URL and the key with --access-key' });
      if (Object.keys(ep.params).length) throw new DbsError('INVALID_ARGUMENT', `${flag}: an s3:// URL takes no query parameters`, { hint: 'use --endpoint, --region and --access-key' });
      if ((ep.path ?? '').split('/').some((s) => s === '.' || s === '..')) throw new DbsError('INVALID_ARGUMENT', `${flag}: the prefix ${JSON.stringify(ep.path)} has . or .. segments`, { hint: 'e.g. s3://my-bucket/photos/2026' });
    },
  },
  doctor: true,
  defaultType: 'snapshot',
  types: {
    snapshot: { planOptions: [...S3_FLAGS], chain: { role: 'full' }, restore },
    incremental: { planOptions: [...S3_FLAGS, '--base-plan', '--auto-full'], chain: { role: 'increment', full: 'snapshot' }, readsParent: true, restore },
  },
  tools: [],
  parseSelection(i) {
    wholeSelection('s3 bucket', { databases: i.databases, allDatabases: i.allDatabases, tables: i.tables });
    if (i.match !== undefined) throw new DbsError('USAGE', '--match does not apply to s3 bucket sources', { hint: 'the URL s3://BUCKET/PREFIX selects the objects' });
    if (i.region !== undefined && !/^[a-z0-9-]{2,40}$/.test(i.region)) throw new DbsError('INVALID_ARGUMENT', `--region ${JSON.stringify(i.region)} is not a region name`, { hint: 'e.g. --region us-east-1' });
    if (i.accessKey !== undefined && !i.accessKey) throw new DbsError('INVALID_ARGUMENT', '--access-key is empty', { hint: 'give the access key id, or leave the flag out to use the AWS credential chain' });
    return { endpoint: checkEndpointUrl(i.endpoint), region: i.region ?? DEFAULT_REGION, pathStyle: true, ...(i.accessKey ? { accessKey: i.accessKey } : {}) };
  },
  decodeSelection(json, where) {
    const o = object(json, where);
    const endpoint = string(o, 'endpoint', where);
    if (!/^https?:\/\//.test(endpoint)) throw invalid(where, `endpoint: ${JSON.stringify(endpoint)} is not an http(s) URL`);
    const accessKey = optString(o, 'accessKey', where);
    return { endpoint, region: string(o, 'region', where), pathStyle: boolean(o, 'pathStyle', where), ...(accessKey !== undefined ? { accessKey } : {}) };
  },
  decodeFacts(json, where) {
    const o = object(json, where);
    const n = (k: string) => optNumber(o, k, where, { min: 0, integer: true }) ?? 0;
    return {
      format: number(o, 'format', where, { min: 1, integer: true }),
      bucket: string(o, 'bucket', where),
      prefix: string(o, 'prefix', where),
      objects: n('objects'),
      bytes: n('bytes'),
      stored: n('stored'),
      unchanged: n('unchanged'),
      deleted: n('deleted'),
      vanished: n('vanished'),
      ...(o.splits !== undefined ? { splits: stringArray(o, 'splits', where) } : {}),
    };
  },
  parseRestore(f, backup) {
    const paths = (f.paths ?? []).map((p) => p.replace(/^\/+/, ''));
    if (paths.some((p) => !p || p.split('/').some((s) => s === '..'))) {
      throw new DbsError('INVALID_ARGUMENT', `--path ${JSON.stringify(f.paths)}: each path is a key or a folder of keys relative to the backed-up prefix`, { hint: 'e.g. --path photos/2026 (see the keys with: zstd -dc index.ndjson.zst)' });
    }
    if (f.region !== undefined && !/^[a-z0-9-]{2,40}$/.test(f.region)) throw new DbsError('INVALID_ARGUMENT', `--region ${JSON.stringify(f.region)} is not a region name`, { hint: 'e.g. --region us-east-1' });
    return {
      options: {
        // The target server defaults to the source bucket's.
        endpoint: f.endpoint !== undefined ? checkEndpointUrl(f.endpoint) : backup.selection.endpoint,
        region: f.region ?? backup.selection.region,
        pathStyle: backup.selection.pathStyle,
        ...(f.accessKey ? { accessKey: f.accessKey } : {}),
        replace: Boolean(f.replace),
        paths,
      },
      renames: false,
    };
  },
  async load() {
    const { BucketEngine } = await import('./engine.js');
    return new BucketEngine();
  },
};
