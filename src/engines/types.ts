// The interface between core and the source engines. Engines never import storage or the
// catalog: they receive a sink to write artifact streams into, and artifact openers to read
// from when restoring.
import type { Readable, Writable } from 'node:stream';
import type { Inspector } from '../pipeline/edges.js';
import type { ToolStart } from '../pipeline/run.js';
import type { GuardMode } from '../pipeline/plan.js';
import type { Secret } from '../secret.js';

/** The kind of a source: the `kind` of an engine descriptor (src/engines/<kind>/descriptor.ts). */
export type SourceKind = string;
export type BackupType = 'logical' | 'physical' | 'incremental' | 'snapshot';

/** A JSON object: what the catalog and the manifests hold (selections, facts). */
export type Json = Record<string, unknown>;

/** A parsed source or target URL. `password` never appears in `url` or in JSON. */
export interface Endpoint {
  kind: SourceKind;
  /** The URL without password, safe to print and store. */
  url: string;
  host?: string;
  port?: number;
  user?: string;
  /** sqlite/dir path; redis db index as string. */
  path?: string;
  password?: Secret;
  /** Extra URL query parameters (e.g. socket=..., tls=...). */
  params: Record<string, string>;
}

export interface ToolInfo {
  name: string;
  path?: string;
  version?: string;
  found: boolean;
  /** What the tool is needed for, e.g. "mysql logical backups of MariaDB servers". */
  purpose: string;
}

export interface ProbeInfo {
  /** e.g. "mariadb" or "mysql". */
  flavor: string;
  serverVersion: string;
  /** Problems that make a backup impossible (missing database, missing privilege). */
  problems: string[];
  facts: Record<string, unknown>;
}

export type { EdgeInspector, Inspector, StreamEdges } from '../pipeline/edges.js';
export type { GuardMode } from '../pipeline/plan.js';
export type { ToolStart } from '../pipeline/run.js';

export interface ArtifactWriteOptions {
  /** Expected raw size in bytes, if known (lets S3 pick part sizes). */
  sizeHint?: number;
  /**
   * What the engine's guard needs (GuardMode): `stream` (every raw byte is written through
   * the inspector), `edges` (it gets takeEdges() with the first and last bytes and the size,
   * then an empty end: the sink may then compress into independent frames and keep the
   * stream out of Node) or `none` (no inspector). The artifact is stored only when the
   * inspector ends without error. Chosen once by the engine; the sink feeds it that way on
   * every execution.
   */
  guard?: GuardMode;
  /**
   * The source is cheap to produce (a file copy, not a CPU-bound dump tool): compress on every
   * core. Left out, compression takes one core and leaves the others to the source.
   */
  parallelCompression?: boolean;
  /**
   * The stream is small (an index of a few MiB): compressed in Node even where a program could,
   * since starting the program costs more than the work (~20 ms of a bucket incremental's end).
   */
  small?: boolean;
  /**
   * Compress in independent frames at raw offsets the sink records (StoredArtifact.frames), so
   * ArtifactReader.openRange can later read a part without the whole (zstd only; node execution).
   */
  frameTable?: boolean;
  /** A standard file extension of the raw stream, e.g. ".sql", ".xbstream", ".resp", ".rdb". */
  extension: string;
}

export interface StoredArtifact {
  name: string;
  key: string;
  rawBytes: number;
  storedBytes: number;
  sha256: string;
  compression: string;
  /** How the data path ran (plan.ts: node, programs, file) and its stages, in order. */
  execution?: string;
  stages?: string[];
  /** With ArtifactWriteOptions.frameTable: frame starts as [raw, stored] offsets, the last pair the end. */
  frames?: [number, number][];
  /** The stored bytes are encrypted (age, after compression) to these recipients (public keys). */
  encryption?: ArtifactEncryption;
}

export type ArtifactEncryption = 'none' | { format: 'age'; recipients: string[] };

/** Where an engine writes its artifact streams. The sink compresses, hashes and stores. */
export interface ArtifactSink {
  /**
   * The artifacts are encrypted. The manifest is not (a catalog is rebuilt from it), so an
   * engine then keeps its facts to counts and settings: nothing of the data (no key, no path).
   */
  readonly encrypted: boolean;
  /**
   * Stores one artifact that Node produces (`stream`). Resolves when it is durably stored;
   * rejects when the stream errors or storing fails. `inspector` is the guard when
   * options.guard is not none.
   */
  write(name: string, stream: Readable, options: ArtifactWriteOptions & { inspector?: Inspector }): Promise<StoredArtifact>;
  /**
   * Stores the output of a tool. The sink first opens its input (a pipe into a compressor, or
   * Node's own), then calls `spawn(stdout)`: the engine starts the tool with `stdout` as its
   * stdout ('pipe': Node reads it; return the tool's stdout stream) and returns its guard.
   * Nothing the tool writes can be lost: its reader exists before it does.
   */
  writeTool(name: string, options: ArtifactWriteOptions, spawn: (stdout: 'pipe' | Writable) => ToolStart): Promise<StoredArtifact>;
}

/**
 * Where an engine's own network connections leave from: the catalog's gateway (core/gateway.ts).
 * An engine binds every connection it makes itself to `localAddress` (mysql2: `localAddress`;
 * a raw socket: net.connect({ localAddress })), and passes it to a tool that can bind; a tool
 * that cannot is listed in the README ("Gateway"). An S3 client of an engine's own (a bucket
 * source) gives its http/https agents `localAddress`, as storage/s3.ts does. Unix sockets and
 * local files are not network connections: no egress applies to them.
 */
export interface Egress {
  localAddress: string;
}

export interface EngineRunContext {
  signal: AbortSignal;
  /** Present while a gateway exists: the address the engine's source connections leave from. */
  egress?: Egress;
  /** A line of the tool's log (stderr); the runner keeps a tail for the task record. */
  log(line: string): void;
  /** A scratch directory that the runner removes afterwards (0700). */
  tmpDir: string;
  /** A problem that does not fail the task (a file changed while read): a warning event of the task's plan. */
  warn?(message: string): void;
}

// Sel, Facts and Opts are each engine's own types (its selection, its manifest facts, its
// restore options); its descriptor decodes them from the catalog and parses them from flags.

export interface BackupRequest<Sel = Json, Facts = Json> {
  source: Endpoint;
  type: BackupType;
  selection: Sel;
  sink: ArtifactSink;
  /**
   * The parent backup (incrementals): its engine facts, and readers of its artifacts for an
   * engine that compares with what the parent holds (a bucket's object list).
   */
  parent?: { id: string; facts: Facts; artifacts?: ArtifactReader[] };
}

export interface BackupOutcome<Facts = Json> {
  serverVersion?: string;
  toolName?: string;
  toolVersion?: string;
  /** Engine facts for the manifest: binlog coordinates, LSN range, key counts... */
  facts: Facts;
}

export interface ArtifactReader {
  name: string;
  rawBytes: number;
  /** Opens the artifact, decompressed and checked against its sha256 at the end. */
  open(): Promise<Readable>;
  /**
   * Reads the stored bytes [storedStart, storedEnd) (whole zstd frames of a framed artifact,
   * see StoredArtifact.frames) by one ranged read, decompressed. Not checked against the
   * artifact's sha256 (the caller checks what it reads). Absent when the pool has no ranged
   * reads or the artifact is not zstd.
   */
  openRange?(storedStart: number, storedEnd: number): Promise<Readable>;
}

export interface ChainLink<Facts = Json> {
  backupId: string;
  type: BackupType;
  facts: Facts;
  artifacts: ArtifactReader[];
}

export interface RestoreRequest<Sel = Json, Facts = Json, Opts = unknown> {
  target: Endpoint;
  type: BackupType;
  /** The backup's selection, from its manifest. */
  selection: Sel;
  facts: Facts;
  artifacts: ArtifactReader[];
  /**
   * Physical/incremental backups: the whole chain, oldest (the full backup) first; the last
   * link is the backup being restored. Absent for self-contained backups.
   */
  chain?: ChainLink<Facts>[];
  /** The engine's restore options (its descriptor's parseRestore made them of the flags). */
  options: Opts;
}

/** A restore without a target: what verifyPrepare reads. */
export type VerifyRequest<Sel = Json, Facts = Json> = Omit<RestoreRequest<Sel, Facts>, 'target' | 'options'>;

export interface RestoreOutcome {
  /** Raw bytes read from the artifacts. */
  bytes: number;
  facts: Record<string, unknown>;
}

/** An entry of a backed-up tree (`dbs backup ls`). */
export interface TreeEntry {
  path: string;
  type: string;
  size: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: string;
  link?: string;
}

export interface Engine<Sel = Json, Facts = Json, Opts = unknown> {
  readonly kind: SourceKind;
  readonly types: readonly BackupType[];
  /** Tools this engine runs, with versions where found (for `dbs doctor`). */
  tools(): Promise<ToolInfo[]>;
  /** Connects for real: reachable, version, privileges, the selection exists. */
  probe(source: Endpoint, selection: Sel, ctx: { signal: AbortSignal; type?: BackupType; egress?: Egress }): Promise<ProbeInfo>;
  backup(req: BackupRequest<Sel, Facts>, ctx: EngineRunContext): Promise<BackupOutcome<Facts>>;
  restore(req: RestoreRequest<Sel, Facts, Opts>, ctx: EngineRunContext): Promise<RestoreOutcome>;
  /**
   * Proves a backup restorable without a target (mariabackup --prepare of the chain in a
   * scratch dir). Engines without such a check omit it.
   */
  verifyPrepare?(req: VerifyRequest<Sel, Facts>, ctx: EngineRunContext): Promise<{ facts: Json }>;
  /** Lists the tree a backup holds (`dbs backup ls`), only under `paths` when given. Engines of trees only. */
  list?(req: VerifyRequest<Sel, Facts> & { paths: string[] }, ctx: EngineRunContext): Promise<TreeEntry[]>;
}
