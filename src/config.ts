// Settings: flags > environment > config file > defaults, validated once, every problem
// reported at once with its path. Config files are found by cosmiconfig: dbs.config.*,
// .dbsrc*, package.json "dbs", from the working directory up to $HOME, then ~/.config/dbs/.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import bytes from 'bytes';
import { DbsError } from './errors.js';
import { COMPRESSIONS, EXECUTIONS, type Compression, type Execution } from './pipeline/names.js';

/** The home folder, as os.homedir() gives it ($HOME first), without loading node:os (its facade is start-up of every command). */
function homedir(): string {
  return process.env.HOME || process.getBuiltinModule('node:os').homedir();
}

export interface Settings {
  home: string;
  compression: Compression;
  compressionLevel?: number;
  /** First multipart part size for S3 pools, bytes. */
  partSize: number;
  /** Parts in flight per S3 upload. */
  concurrency: number;
  /** Seconds a lock's lease lasts without a heartbeat (the holder renews it every quarter of that). */
  lockLease: number;
  /** Seconds an S3 request may go without any answer before it fails (connect: at most 5 s of it). */
  s3Timeout: number;
  /**
   * How the data path runs (pipeline/plan.ts): node, programs or file; unset, dbs chooses per
   * artifact. A knob for tests and for working around a broken program, not for speed.
   */
  execution?: Execution;
  /** Seconds between two monitoring samples of a task or restore (src/core/samples.ts). */
  sampleSeconds: number;
  /** The SMTP server of `email:` alert targets (config file key `smtp`). */
  smtp?: SmtpSettings;
  /** Where the values came from (for `dbs doctor`). */
  configFile?: string;
}

/** SMTP settings (config file only): the password is a reference (env:VAR or file:PATH), never a value. */
export interface SmtpSettings {
  host: string;
  port: number;
  from: string;
  /** none: plain; starttls: upgrade after EHLO (required when offered... and when a user is set); tls: TLS from the start. */
  security: 'none' | 'starttls' | 'tls';
  user?: string;
  passwordFrom?: string;
}

export interface SettingsInput {
  home?: string;
  compression?: unknown;
  compressionLevel?: unknown;
  partSize?: unknown;
  concurrency?: unknown;
  lockLease?: unknown;
  s3Timeout?: unknown;
  execution?: unknown;
  sampleSeconds?: unknown;
  smtp?: unknown;
}

export const DEFAULTS = {
  compression: 'zstd' as Compression,
  partSize: 8 * 1024 * 1024,
  concurrency: 4,
  lockLease: 60,
  s3Timeout: 30,
  sampleSeconds: 5,
};

export function defaultHome(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'dbs');
}

/** Parses "8MiB", "64mb", "1048576" into bytes; undefined when invalid. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim().replace(/ib$/i, 'b');
  if (/^\d+$/.test(s)) return Number(s);
  if (!/^\d+(\.\d+)?\s*(b|kb|mb|gb|tb)$/i.test(s)) return undefined;
  const n = bytes.parse(s);
  return n && n > 0 ? Math.floor(n) : undefined;
}

function layer(target: SettingsInput, source: SettingsInput): void {
  for (const [k, v] of Object.entries(source)) if (v !== undefined && v !== '') (target as Record<string, unknown>)[k] = v;
}

export interface LoadSettingsOptions {
  flags: SettingsInput;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Explicit config file (--config or DBS_CONFIG). */
  configPath?: string;
}

const PLACES = ['json', 'yaml', 'yml', 'js', 'mjs', 'cjs', 'ts'];
const SEARCH_PLACES = ['package.json', '.dbsrc', ...PLACES.map((e) => `.dbsrc.${e}`), ...PLACES.map((e) => `dbs.config.${e}`), ...PLACES.map((e) => `.config/dbsrc.${e}`)];
/** What cosmiconfig's global search also reads: its meta config in the start folder, the global config folder. */
const META_PLACES = ['package.json', ...PLACES.map((e) => `.config/config.${e}`)];
const GLOBAL_PLACES = ['config', ...PLACES.map((e) => `config.${e}`)];

/**
 * True when some file cosmiconfig's search would read exists. Most runs have none, and then
 * dbs neither loads cosmiconfig (and its YAML and TypeScript loaders) nor searches: a few
 * stat calls instead (start-up of short commands). Any candidate at all means a real search.
 */
function mayHaveConfigFile(cwd: string, env: NodeJS.ProcessEnv): boolean {
  const stop = resolve(homedir());
  const dirs: string[] = [];
  for (let d = resolve(cwd); ; d = dirname(d)) {
    dirs.push(d);
    if (d === stop || dirname(d) === d) break;
  }
  const globalDir = join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'dbs');
  const candidates = [...dirs.flatMap((d) => SEARCH_PLACES.map((p) => join(d, p))), ...META_PLACES.map((p) => join(resolve(cwd), p)), ...GLOBAL_PLACES.map((p) => join(globalDir, p))];
  return candidates.some((f) => existsSync(f));
}

export async function loadSettings(o: LoadSettingsOptions): Promise<Settings> {
  let file: { config: unknown; filepath: string } | null = null;
  const configPath = o.configPath ?? o.env.DBS_CONFIG;
  try {
    if (configPath || mayHaveConfigFile(o.cwd, o.env)) {
      const { cosmiconfig } = await import('cosmiconfig');
      const explorer = cosmiconfig('dbs', { searchStrategy: 'global', searchPlaces: SEARCH_PLACES });
      file = configPath ? await explorer.load(resolve(o.cwd, configPath)) : await explorer.search(o.cwd);
    }
  } catch (cause) {
    throw new DbsError('INVALID_CONFIG', `cannot read the config file${configPath ? ` ${configPath}` : ''}: ${(cause as Error).message}`, {
      cause,
      hint: 'fix the file or point --config / DBS_CONFIG at another one',
    });
  }
  const merged: SettingsInput = {};
  const problems: string[] = [];
  if (file && file.config !== undefined && file.config !== null) {
    if (typeof file.config !== 'object' || Array.isArray(file.config)) {
      problems.push(`${file.filepath}: the config must be an object`);
    } else {
      const known = new Set(['home', 'compression', 'compressionLevel', 'partSize', 'concurrency', 'lockLease', 's3Timeout', 'execution', 'sampleSeconds', 'smtp']);
      for (const k of Object.keys(file.config)) if (!known.has(k)) problems.push(`${file.filepath}: ${k}: unknown setting`);
      layer(merged, file.config as SettingsInput);
    }
  }
  layer(merged, {
    home: o.env.DBS_HOME,
    compression: o.env.DBS_COMPRESSION,
    compressionLevel: o.env.DBS_COMPRESSION_LEVEL,
    partSize: o.env.DBS_PART_SIZE,
    concurrency: o.env.DBS_CONCURRENCY,
    lockLease: o.env.DBS_LOCK_LEASE,
    s3Timeout: o.env.DBS_S3_TIMEOUT,
    execution: o.env.DBS_EXECUTION,
    sampleSeconds: o.env.DBS_SAMPLE_SECONDS,
  });
  layer(merged, o.flags);
  const where = (k: string) => (o.flags[k as keyof SettingsInput] !== undefined ? `--${k}` : file ? `${file.filepath}: ${k}` : k);

  const out: Settings = { home: '', compression: DEFAULTS.compression, partSize: DEFAULTS.partSize, concurrency: DEFAULTS.concurrency, lockLease: DEFAULTS.lockLease, s3Timeout: DEFAULTS.s3Timeout, sampleSeconds: DEFAULTS.sampleSeconds, configFile: file?.filepath };
  if (merged.home !== undefined) {
    if (typeof merged.home !== 'string' || merged.home.trim() === '') problems.push(`${where('home')}: must be a folder path`);
    else out.home = resolve(o.cwd, merged.home);
  }
  if (!out.home) out.home = defaultHome(o.env);
  if (merged.compression !== undefined) {
    if (!COMPRESSIONS.includes(merged.compression as Compression)) problems.push(`${where('compression')}: must be one of ${COMPRESSIONS.join(', ')} (got ${JSON.stringify(merged.compression)})`);
    else out.compression = merged.compression as Compression;
  }
  if (merged.execution !== undefined && merged.execution !== 'auto') {
    if (!EXECUTIONS.includes(merged.execution as Execution)) problems.push(`${where('execution')}: must be one of auto, ${EXECUTIONS.join(', ')} (got ${JSON.stringify(merged.execution)})`);
    else out.execution = merged.execution as Execution;
  }
  if (merged.compressionLevel !== undefined) {
    const n = Number(merged.compressionLevel);
    if (!Number.isInteger(n) || n < 1 || n > 19) problems.push(`${where('compressionLevel')}: must be an integer from 1 to 19`);
    else out.compressionLevel = n;
  }
  if (merged.partSize !== undefined) {
    const n = parseSize(merged.partSize);
    if (n === undefined || n < 5 * 1024 * 1024 || n > 5 * 1024 ** 3) problems.push(`${where('partSize')}: must be a size from 5MiB to 5GiB (got ${JSON.stringify(merged.partSize)})`);
    else out.partSize = n;
  }
  if (merged.concurrency !== undefined) {
    const n = Number(merged.concurrency);
    if (!Number.isInteger(n) || n < 1 || n > 64) problems.push(`${where('concurrency')}: must be an integer from 1 to 64 (got ${JSON.stringify(merged.concurrency)})`);
    else out.concurrency = n;
  }
  const seconds = (k: 'lockLease' | 's3Timeout' | 'sampleSeconds', min: number, max: number): void => {
    if (merged[k] === undefined) return;
    const n = Number(merged[k]);
    if (!Number.isFinite(n) || n < min || n > max) problems.push(`${where(k)}: must be a number of seconds from ${min} to ${max} (got ${JSON.stringify(merged[k])})`);
    else out[k] = n;
  };
  seconds('lockLease', 2, 3600);
  seconds('s3Timeout', 1, 3600);
  seconds('sampleSeconds', 0.1, 3600);
  if (merged.smtp !== undefined) {
    const v = merged.smtp as Record<string, unknown>;
    const at = (k: string) => `${where('smtp')}.${k}`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) problems.push(`${where('smtp')}: must be an object { host, port, from, security, user, passwordFrom }`);
    else {
      for (const k of Object.keys(v)) if (!['host', 'port', 'from', 'security', 'user', 'passwordFrom'].includes(k)) problems.push(`${at(k)}: unknown setting`);
      const security = v.security ?? 'starttls';
      const port = v.port ?? (security === 'tls' ? 465 : 587);
      if (typeof v.host !== 'string' || !v.host) problems.push(`${at('host')}: must be a host name`);
      if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) problems.push(`${at('port')}: must be a port from 1 to 65535`);
      if (typeof v.from !== 'string' || !/^[^\s@<>]+@[^\s@<>]+$/.test(v.from)) problems.push(`${at('from')}: must be a mail address`);
      if (!['none', 'starttls', 'tls'].includes(security as string)) problems.push(`${at('security')}: must be none, starttls or tls`);
      if (v.user !== undefined && typeof v.user !== 'string') problems.push(`${at('user')}: must be a string`);
      if (v.passwordFrom !== undefined && (typeof v.passwordFrom !== 'string' || !/^(env|file):.+$/.test(v.passwordFrom))) problems.push(`${at('passwordFrom')}: must be env:VAR or file:PATH (never the password itself)`);
      if ((v.user === undefined) !== (v.passwordFrom === undefined)) problems.push(`${where('smtp')}: user and passwordFrom go together`);
      out.smtp = { host: String(v.host), port: port as number, from: String(v.from), security: security as SmtpSettings['security'], ...(typeof v.user === 'string' ? { user: v.user } : {}), ...(typeof v.passwordFrom === 'string' ? { passwordFrom: v.passwordFrom } : {}) };
    }
  }
  if (problems.length) {
    throw new DbsError('INVALID_CONFIG', `invalid configuration:\n  ${problems.join('\n  ')}`, {
      hint: 'fix the settings listed above',
      details: { problems },
    });
  }
  return out;
}
