// Connection info for the run's shared test-bed servers (shared-servers.ts), started on
// demand when a test file asks for them (testbed.ts `servers()`). Plain, serializable data.

export interface MariaDBInfo {
  host: string;
  port: number;
  /** Unix socket of the test server (not the system one). */
  socket: string;
  /** The server's datadir (mariabackup needs --datadir with --no-defaults). */
  datadir: string;
  user: string;
  password: string;
  version: string;
}

export interface RedisInfo {
  host: string;
  port: number;
  /** Undefined: no password. */
  password?: string;
  version: string;
}

export interface S3Info {
  endpoint: string;
  /** The same gateway over TLS (https://127.0.0.1:PORT); trust caFile to reach it. */
  tlsEndpoint: string;
  /** PEM of the TLS endpoint's self-signed certificate (NODE_EXTRA_CA_CERTS, AWS_CA_BUNDLE). */
  caFile: string;
  region: string;
  accessKey: string;
  secretKey: string;
}

export interface TestbedInfo {
  mariadb: MariaDBInfo;
  redis: RedisInfo;
  s3: S3Info;
}

/** A shared server a test file can ask for. */
export type ServerName = keyof TestbedInfo;

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the run's server coordinator (global-setup.ts), with its token. */
    testbedUrl: string;
  }
}
