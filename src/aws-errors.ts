// How errors of the AWS SDK (and the sockets under it) are told apart, for every S3 client of
// dbs: the S3 pool driver (storage/s3.ts) and the S3 bucket source (engines/bucket/client.ts).
// A leaf: imports nothing of dbs.

/** Socket errors that mean "the endpoint does not answer" (EADDRNOTAVAIL/EINVAL: a gateway address of the wrong family). */
export const NETWORK_CODES = new Set(['EADDRNOTAVAIL', 'EINVAL', 'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);

/** TLS errors that mean "the endpoint's certificate is not trusted" (node:tls / OpenSSL codes). */
export const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REVOKED', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What to do about an untrusted certificate: the same words for pools and bucket sources. */
export const TLS_CERT_HINT =
  'if the server\'s certificate comes from a private CA, give dbs that CA: NODE_EXTRA_CA_CERTS=/path/ca.pem in the environment of dbs (and of its systemd unit or cron job); check that the endpoint\'s host name is in the certificate';

/** The certificate error code somewhere in an error's cause chain, or undefined. */
export function tlsCertCode(e: unknown): string | undefined {
  for (let cur = e as AwsLikeError | undefined, i = 0; cur && i < 6; i++, cur = cur.cause as AwsLikeError | undefined) {
    if (cur.code && TLS_CERT_CODES.has(cur.code)) return cur.code;
  }
  return undefined;
}

/** Error names that mean "these credentials are refused". */
export const AUTH_NAMES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'CredentialsProviderError', 'AuthorizationHeaderMalformed']);

/** The fields of an SDK error (or a socket error under it) that dbs reads. */
export interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** The socket error code somewhere in an error's cause chain, or undefined. */
export function networkCode(e: unknown): string | undefined {
  for (let cur = e as AwsLikeError | undefined, i = 0; cur && i < 6; i++, cur = cur.cause as AwsLikeError | undefined) {
    if (cur.code && NETWORK_CODES.has(cur.code)) return cur.code;
    if (cur.name === 'TimeoutError') return 'ETIMEDOUT';
  }
  return undefined;
}
