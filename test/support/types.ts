// Connection info for the shared test-bed servers started once by global-setup.ts and
// handed to test files with vitest's provide/inject. Plain, serializable data only.

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
  region: string;
  accessKey: string;
  secretKey: string;
}

export interface TestbedInfo {
  mariadb: MariaDBInfo;
  redis: RedisInfo;
  s3: S3Info;
  /** Start-up time of each server in ms, as measured by global-setup. */
  startupMs: { mariadb: number; redis: number; s3: number };
}

declare module 'vitest' {
  export interface ProvidedContext {
    testbed: TestbedInfo;
  }
}
