// The manifest: written last, its presence in the pool is what makes a backup exist.
import type { ArtifactEncryption, StoredArtifact } from '../engines/types.js';
import { array, invalid, nullableString, number, object, optString, string, type JsonObject } from '../decode.js';
import type { BackupRecord } from '../store/catalog.js';

export const MANIFEST_FORMAT = 1;

// A type (not an interface) so that it is the JSON object the catalog stores.
export type Manifest = {
  format: number;
  dbsVersion: string;
  backupId: string;
  plan: { id: string; name: string };
  source: { kind: string; url: string };
  backupType: string;
  selection: Record<string, unknown>;
  parentId: string | null;
  tool: { name?: string; version?: string };
  server: { version?: string };
  facts: Record<string, unknown>;
  artifacts: (StoredArtifact & { encryption: ArtifactEncryption })[];
  /** The backup's encryption (every artifact's): 'none', or age to these recipients (public keys only). */
  encryption?: ArtifactEncryption;
  /** How the data path ran: the execution of the artifacts (joined with + when they differ) and the stages. */
  pipeline?: { execution: string; stages: string[] };
  rawBytes: number;
  storedBytes: number;
  startedAt: string;
  endedAt: string;
};

/** Backup ids sort by time: b-20261121T131500Z-3fa9. */
export function newBackupId(now: Date, rand: string): string {
  return `b-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${rand}`;
}

const bytes = { min: 0, integer: true };

/** 'none' (or absent), or `{ format: 'age', recipients: [...] }`. */
export function decodeEncryption(v: unknown, what: string): ArtifactEncryption {
  if (v === undefined || v === 'none') return 'none';
  if (typeof v === 'string') throw invalid(what, `encryption ${JSON.stringify(v)} is not known to this dbs`);
  const e = object(v, `${what}: encryption`);
  const format = string(e, 'format', `${what}: encryption`);
  if (format !== 'age') throw invalid(what, `encryption format ${JSON.stringify(format)} is not known to this dbs`);
  const recipients = array(e.recipients, `${what}: encryption: recipients`).map((r, i) => {
    if (typeof r !== 'string' || !r.startsWith('age1')) throw invalid(`${what}: encryption`, `recipient ${i + 1} is not an age recipient`);
    return r;
  });
  if (recipients.length === 0) throw invalid(`${what}: encryption`, 'no recipients');
  return { format: 'age', recipients };
}

function decodeArtifact(data: unknown, what: string): StoredArtifact & { encryption: ArtifactEncryption } {
  const o = object(data, what);
  const encryption = decodeEncryption(o.encryption, what);
  const sha256 = string(o, 'sha256', what);
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw invalid(what, `sha256: ${JSON.stringify(sha256)} is not a sha256`);
  return {
    ...o, // fields a newer data path adds travel along unchanged
    name: string(o, 'name', what),
    key: string(o, 'key', what),
    rawBytes: number(o, 'rawBytes', what, bytes),
    storedBytes: number(o, 'storedBytes', what, bytes),
    sha256,
    compression: string(o, 'compression', what),
    encryption,
  };
}

function optObject(v: unknown, what: string): JsonObject {
  return v === undefined ? {} : object(v, what);
}

/**
 * Decodes a manifest (the catalog's copy, or the file in the pool); a DbsError (INVALID_RECORD)
 * naming `what` and the field when it is not one. Selection and facts stay engine data.
 */
export function decodeManifest(data: unknown, what: string): Manifest {
  const o = object(data, what);
  const format = number(o, 'format', what, { min: 1, integer: true });
  if (format > MANIFEST_FORMAT) throw invalid(what, `format ${format} is newer than this dbs knows (${MANIFEST_FORMAT})`);
  const plan = object(o.plan, `${what}: plan`);
  const source = object(o.source, `${what}: source`);
  const tool = optObject(o.tool, `${what}: tool`);
  const server = optObject(o.server, `${what}: server`);
  const toolName = optString(tool, 'name', `${what}: tool`);
  const toolVersion = optString(tool, 'version', `${what}: tool`);
  const serverVersion = optString(server, 'version', `${what}: server`);
  return {
    ...o, // fields a newer dbs adds travel along unchanged
    format,
    dbsVersion: string(o, 'dbsVersion', what),
    backupId: string(o, 'backupId', what),
    plan: { id: string(plan, 'id', `${what}: plan`), name: string(plan, 'name', `${what}: plan`) },
    source: { kind: string(source, 'kind', `${what}: source`), url: string(source, 'url', `${what}: source`) },
    backupType: string(o, 'backupType', what),
    selection: object(o.selection ?? {}, `${what}: selection`),
    parentId: o.parentId === undefined ? null : nullableString(o, 'parentId', what),
    tool: { ...(toolName !== undefined ? { name: toolName } : {}), ...(toolVersion !== undefined ? { version: toolVersion } : {}) },
    server: serverVersion !== undefined ? { version: serverVersion } : {},
    facts: object(o.facts ?? {}, `${what}: facts`),
    artifacts: array(o.artifacts, `${what}: artifacts`).map((a, i) => decodeArtifact(a, `${what}: artifact ${i + 1}`)),
    ...(o.encryption !== undefined ? { encryption: decodeEncryption(o.encryption, what) } : {}),
    rawBytes: number(o, 'rawBytes', what, bytes),
    storedBytes: number(o, 'storedBytes', what, bytes),
    startedAt: string(o, 'startedAt', what),
    endedAt: string(o, 'endedAt', what),
  };
}

/** The catalog's copy of a backup's manifest, decoded. */
export function backupManifest(b: Pick<BackupRecord, 'id' | 'manifest'>): Manifest {
  return decodeManifest(b.manifest, `the catalog's manifest of backup ${b.id}`);
}
