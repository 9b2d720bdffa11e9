// What an engine declares about itself, loaded without loading the engine: its URL schemes,
// default port and user, backup types (and which of them chain), the plan and restore options
// of each type, and how its selection, facts and restore options are parsed and decoded. Each
// engine folder has one (src/engines/<kind>/descriptor.ts); src/engines/registry.ts lists them.
// Core reads only this: it has no branch on an engine kind or a backup type.
//
// A descriptor module imports nothing heavy (no client library, no engine module): `dbs plan
// list` loads every descriptor at start-up, and `load()` imports the engine when it is needed.
import { DbsError } from '../errors.js';
import type { BackupType, Endpoint, Engine, Json } from './types.js';

/** Plan options that select what a backup holds or how it is taken. */
export type PlanOptionFlag = '--databases' | '--all-databases' | '--tables' | '--match' | '--base-plan' | '--auto-full' | '--verify-prepare' | '--password-env' | '--password-file' | '--password-from' | '--include' | '--exclude' | '--one-file-system' | '--skip-unreadable' | S3OptionFlag;

/** Where an S3 bucket source or target is served and as whom (the names of `pool bind`'s flags). */
export type S3OptionFlag = '--endpoint' | '--region' | '--access-key' | '--secret-key-env' | '--secret-key-file' | '--secret-key-from';

/** Where a restore writes. Exactly one is given. */
export type RestoreTargetFlag = '--to' | '--to-dir' | '--to-datadir';

/** Restore options besides the target. */
export type RestoreOptionFlag = '--database' | '--tables' | '--replace' | '--flush' | '--start' | '--port' | '--password-env' | '--password-file' | '--password-from' | '--path' | S3OptionFlag;

export interface RestoreSpec {
  /** The target flags this type accepts (exactly one must be given). */
  targets: readonly RestoreTargetFlag[];
  options: readonly RestoreOptionFlag[];
  /**
   * True when the engine sends data into the live target as it reads the artifact (a client
   * pipe, RESTORE commands). Core then proves every artifact whole (size + sha256) before the
   * first byte is sent. False when the engine builds the result aside (a temp file, a scratch
   * datadir) and puts it in place only after the stream checked out.
   */
  streamsIntoTarget: boolean;
  /** What the target is, for messages: "--to mysql://USER@HOST:PORT". */
  targetHint: string;
}

/**
 * How backups of a type form chains. A `full` backup starts a chain (restores and verifies
 * open the chain: the backup alone). An `increment` extends the newest backup of its chain
 * (the newest backup of its base plan, a plan of type `full`, or of its own plan): retention
 * keeps every backup a kept backup builds on (`parentId`), and `--auto-full` takes a backup of
 * type `full` when the chain is missing or broken.
 */
export type ChainRole = { role: 'full' } | { role: 'increment'; full: BackupType };

export interface TypeSpec {
  planOptions: readonly PlanOptionFlag[];
  /** Absent: backups of this type stand alone. */
  chain?: ChainRole;
  /**
   * The engine reads the parent backup's artifacts while it backs up (a tree's index, to find
   * what changed). An encrypted plan of such a type is refused: the backup host holds no key.
   */
  readsParent?: boolean;
  restore: RestoreSpec;
  /** What `dbs backup verify --prepare` proves for this type; absent: the type has no such check. */
  prepareCheck?: string;
}

export interface EndpointSpec {
  /** URL schemes without the colon, e.g. mysql and mariadb; stored URLs use the engine kind. */
  schemes: readonly string[];
  /** `server`: scheme://[user@]host[:port][/path]; `file`: scheme:///absolute/path. */
  form: 'server' | 'file';
  defaultPort?: number;
  defaultUser?: string;
  /** The engine's own rules for a parsed URL (name lengths, database index): a DbsError, exit 2. */
  check?(ep: Endpoint, flag: string): void;
}

/** The selection flags of `dbs plan create/update`, as typed. */
export interface SelectionFlags {
  databases?: string;
  allDatabases?: boolean;
  tables?: string;
  match?: string;
  /** Directory and bucket sources: globs of paths to take (--include) and to leave out (--exclude). */
  include?: string[];
  exclude?: string[];
  /** Directory sources: do not descend into other file systems. */
  oneFileSystem?: boolean;
  /** Directory sources: an unreadable file is a warning, not a failed backup. */
  skipUnreadable?: boolean;
  /** S3 bucket sources: the endpoint URL, region and access key id (the secret is the plan's password). */
  endpoint?: string;
  region?: string;
  accessKey?: string;
}

/** The restore flags besides the target URL, as typed (only those the type takes are given). */
export interface RestoreFlags {
  toDir?: string;
  toDatadir?: string;
  startPort?: number;
  database?: string;
  tables?: string;
  replace?: boolean;
  flush?: boolean;
  /** --path (repeatable): restore only these entries. */
  paths?: string[];
  /** S3 bucket targets: the endpoint URL, region and access key id (the secret is the target password). */
  endpoint?: string;
  region?: string;
  accessKey?: string;
  /** --yes: for file targets the consent to replace an existing file. */
  yes: boolean;
}

/** The restore options an engine made of the flags, and whether they rename what is restored. */
export interface ParsedRestore<Opts> {
  options: Opts;
  /** Restores under another name: restoring over the source is then no overwrite. */
  renames: boolean;
}

/** What a restore's options are checked against: the backup, as the catalog holds it. */
export interface BackupFacts<Sel, Facts> {
  id: string;
  type: BackupType;
  selection: Sel;
  facts: Facts;
}

export interface EngineDescriptor<Sel extends Json = Json, Facts extends Json = Json, Opts = unknown> {
  kind: string;
  /** The engine's name in messages, e.g. "MySQL/MariaDB". */
  title: string;
  endpoint: EndpointSpec;
  /** A source named by this bare word instead of a URL; its path is dbs's own catalog. */
  catalogSource?: string;
  /** Restores may also go into targets of this kind (the catalog's backups into sqlite:// files). */
  restoresInto?: string;
  /** False for a descriptor that shares another one's engine: `dbs doctor` lists that one. */
  doctor: boolean;
  defaultType: BackupType;
  types: Partial<Record<BackupType, TypeSpec>>;
  /** An interactive `dbs plan create` asks for the selection (plans of this engine need one). */
  asksSelection?: boolean;
  /** The programs the engine runs (`dbs doctor` asks the engine for their versions). */
  tools: readonly string[];
  /** The plan's selection from its flags, checked (exit 2 on a bad one). */
  parseSelection(flags: SelectionFlags, type: BackupType): Sel;
  /** A selection read from the catalog or a manifest, validated. */
  decodeSelection(json: unknown, where: string): Sel;
  /** A backup's facts read from the catalog or a manifest, validated. */
  decodeFacts(json: unknown, where: string): Facts;
  /** The restore options from the flags, checked against the backup (exit 2/3 on bad ones). */
  parseRestore(flags: RestoreFlags, backup: BackupFacts<Sel, Facts>): ParsedRestore<Opts>;
  /** The engine itself, imported on first use. */
  load(): Promise<Engine<Sel, Facts, Opts>>;
}

/** A descriptor as core sees it: selection, facts and options are the engine's business. */
export type AnyEngineDescriptor = EngineDescriptor<Json, Json, unknown>;

// Helpers for descriptors.

function corrupt(where: string, what: string): DbsError {
  return new DbsError('INTERNAL', `${where} is not valid: ${what}`, { hint: 'the catalog or the manifest was changed outside dbs; restore the catalog from a backup (dbs plan create --source catalog)' });
}

/** A JSON object (not an array, not null), or a DbsError naming where it came from. */
export function jsonObject(json: unknown, where: string): Json {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corrupt(where, 'not an object');
  return json as Json;
}

export function stringList(v: unknown, where: string, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw corrupt(where, `${field} is not a list of names`);
  return v;
}

/** The selection every engine stores: databases, all, tables (the JSON shape of plan.selection). */
export type ListSelection = {
  databases: string[];
  all: boolean;
  tables: string[];
};

export function decodeListSelection(json: unknown, where: string): ListSelection {
  const o = jsonObject(json, where);
  if (typeof o.all !== 'boolean') throw corrupt(where, 'all is not true or false');
  return { databases: stringList(o.databases, where, 'databases'), all: o.all, tables: stringList(o.tables, where, 'tables') };
}

export function splitList(v: string | undefined): string[] {
  return v === undefined ? [] : v.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Selection flags of a source that backs up everything (no selection). */
export function wholeSelection(kind: string, i: SelectionFlags): ListSelection {
  const databases = splitList(i.databases);
  const tables = splitList(i.tables);
  if (i.databases !== undefined && databases.length === 0) throw new DbsError('INVALID_ARGUMENT', '--databases is empty', { hint: 'e.g. --databases shop,crm' });
  if (i.allDatabases && (databases.length || tables.length)) throw new DbsError('USAGE', '--all-databases cannot be combined with --databases or --tables', { hint: 'choose one' });
  if (databases.length || tables.length || i.allDatabases) throw new DbsError('USAGE', `--databases/--tables do not apply to ${kind} sources`, { hint: 'drop them' });
  return { databases: [], all: true, tables: [] };
}

export const PW: readonly RestoreOptionFlag[] = ['--password-env', '--password-file', '--password-from'];
export const PLAN_PW: readonly PlanOptionFlag[] = ['--password-env', '--password-file', '--password-from'];
export const S3_FLAGS: readonly S3OptionFlag[] = ['--endpoint', '--region', '--access-key', '--secret-key-env', '--secret-key-file', '--secret-key-from'];
