// The bucket engine's S3 client (the engine talks to the source and target buckets itself:
// engines never use the pool drivers) and the mapping of SDK errors to DbsErrors that name
// the bucket and never carry a secret.
import { S3Client } from '@aws-sdk/client-s3';
import { DbsError, isAbort } from '../../errors.js';
import { redactText, type Secret } from '../../secret.js';
import { AUTH_NAMES, networkCode, TLS_CERT_HINT, tlsCertCode, type AwsLikeError } from '../../aws-errors.js';

// node:http(s) through getBuiltinModule, not an ESM import: the ESM facade of node:http reads
// every export, and its WebSocket getter loads undici (~20-30 ms of start-up for nothing).
const { Agent: HttpAgent } = process.getBuiltinModule('node:http');
const { Agent: HttpsAgent } = process.getBuiltinModule('node:https');

export interface BucketServer {
  endpoint: string;
  region: string;
  pathStyle: boolean;
  /** Absent: the AWS credential chain (environment, profile, instance role). */
  accessKey?: string;
  secretKey?: Secret;
}

/** Network settings of the client: the local address to connect from (the gateway's). */
export interface ClientNet {
  localAddress?: string;
}

/** Sockets per client: enough for the engine's concurrent reads and writes. */
export const MAX_SOCKETS = 32;
const TIMEOUT_MS = 30_000;

/** The one place the engine makes an S3 client. */
export function createBucketClient(server: BucketServer, net: ClientNet = {}): S3Client {
  if (server.accessKey && !server.secretKey) {
    throw new DbsError('USAGE', `--access-key ${server.accessKey} was given without its secret key`, { hint: 'pass --secret-key-env VAR or --secret-key-file F too' });
  }
  const agent = { keepAlive: true, maxSockets: MAX_SOCKETS, ...(net.localAddress ? { localAddress: net.localAddress } : {}) };
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: server.pathStyle,
    credentials: server.accessKey && server.secretKey ? { accessKeyId: server.accessKey, secretAccessKey: server.secretKey.reveal() } : undefined,
    maxAttempts: 3,
    // S3-compatible servers (RGW 16, MinIO) lag behind AWS's default CRC trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5000, socketTimeout: TIMEOUT_MS, httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent) },
  });
}

export function isNotFound(e: unknown): boolean {
  const err = e as AwsLikeError;
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || (err?.$metadata?.httpStatusCode === 404 && err?.name !== 'NoSuchBucket');
}

/**
 * An SDK error as a DbsError naming the bucket (`where`: s3://BUCKET/PREFIX @ ENDPOINT) and
 * what was done; `role` says whether it is the backup's source or a restore's target.
 */
export function mapS3Error(e: unknown, what: string, where: string, secret: Secret | undefined, signal?: AbortSignal): unknown {
  if (signal?.aborted || isAbort(e)) return signal?.reason ?? e;
  if (e instanceof DbsError) return e;
  const err = e as AwsLikeError;
  const status = err.$metadata?.httpStatusCode;
  const name = err.name ?? err.Code ?? '';
  const cert = tlsCertCode(e);
  if (cert) return new DbsError('SOURCE_UNREACHABLE', `${what}: cannot trust the TLS certificate of ${where} (${cert})`, { cause: e, hint: TLS_CERT_HINT });
  const net = networkCode(e);
  if (net) return new DbsError('SOURCE_UNREACHABLE', `${what}: cannot reach ${where} (${net})`, { cause: e, hint: 'check the --endpoint URL, the network and that the S3 server is running' });
  if (AUTH_NAMES.has(name) || status === 403 || status === 401) {
    return new DbsError('SOURCE_AUTH', `${what}: access denied by ${where} (${name || status})`, { cause: e, hint: 'check --access-key and the secret key (or the AWS credential chain) and the bucket policy' });
  }
  if (name === 'NoSuchBucket' || (status === 404 && what.startsWith('checking'))) {
    return new DbsError('SOURCE_NOT_FOUND', `${what}: the bucket of ${where} does not exist`, { cause: e, hint: 'check the bucket name in s3://BUCKET/PREFIX (and --endpoint)' });
  }
  const msg = redactText(err.message ?? String(e), [secret]);
  return new DbsError('IO_ERROR', `${what} (${where}): ${name ? `${name}: ` : ''}${msg}`, { cause: e });
}
