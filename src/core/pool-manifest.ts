// The rule: a backup exists when, and only when, its manifest is in its pool. Every entry point
// that reads a backup (verify, restore) first proves the pool online (its marker answers: an
// unmounted folder or a dead endpoint is "offline", exit 6, never "damaged"), then reads the
// pool's manifest and compares it with the catalog's copy. A manifest that is gone marks the
// backup `missing` in the catalog; one that does not parse or disagrees is a damaged backup.
import { buffer } from 'node:stream/consumers';
import type { Readable } from 'node:stream';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { manifestKey, POOL_MARKER_KEY } from '../storage/layout.js';
import type { PoolDriver } from '../storage/types.js';
import type { BackupRecord, Catalog } from '../store/catalog.js';
import { backupManifest, decodeManifest, type Manifest } from './manifest.js';

/** Throws POOL_UNREACHABLE (exit 6) when the pool does not answer or its marker is gone. */
export async function ensurePoolOnline(driver: PoolDriver, poolName: string, signal: AbortSignal): Promise<void> {
  const marker = await driver.stat(POOL_MARKER_KEY, { signal });
  if (!marker) {
    throw new DbsError('POOL_UNREACHABLE', `pool ${poolName} (${driver.location}) is offline: its marker ${POOL_MARKER_KEY} is not there`, {
      hint: 'is the pool mounted (local) or the bucket and prefix right (s3)? check it with: dbs pool check',
    });
  }
}

export type ManifestCheck = { ok: true; manifest: Manifest } | { ok: false; missing: boolean; problem: string };

function artifactFacts(m: Pick<Manifest, 'artifacts'>): string {
  return JSON.stringify(m.artifacts.map((a) => [a.name, a.key, a.storedBytes, a.sha256]));
}

/**
 * Reads the backup's manifest from its pool and compares it with the catalog's copy. A missing
 * manifest is recorded (the backup becomes `missing`, with an event).
 */
export async function checkPoolManifest(ctx: Context, driver: PoolDriver, b: BackupRecord, poolId = b.poolId): Promise<ManifestCheck> {
  const key = manifestKey(b.planId, b.id);
  const catalog = ctx.catalog();
  // One request, not a stat and then a read: a driver's get of a missing key fails before the
  // first byte (OBJECT_NOT_FOUND).
  let body: Readable;
  try {
    body = await driver.get(key, { signal: ctx.signal });
  } catch (e) {
    if (!(e instanceof DbsError) || e.code !== 'OBJECT_NOT_FOUND') throw e;
    markCopyMissing(catalog, b, { id: poolId, name: catalog.getPool(poolId)?.name ?? poolId }, driver.location);
    return { ok: false, missing: true, problem: `its manifest ${key} is missing from the pool` };
  }
  const text = (await buffer(body)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, missing: false, problem: `its manifest ${key} in the pool is not JSON` };
  }
  let m: Manifest;
  try {
    m = decodeManifest(parsed, `the manifest ${key} in the pool`);
  } catch (e) {
    if (!(e instanceof DbsError) || e.code !== 'INVALID_RECORD') throw e;
    return { ok: false, missing: false, problem: `its manifest ${key} in the pool is not a dbs manifest (${e.message})` };
  }
  const ours = backupManifest(b);
  const differs: string[] = [];
  if (m.backupId !== b.id) differs.push(`backup id ${JSON.stringify(m.backupId)}`);
  if (artifactFacts(m) !== artifactFacts(ours)) differs.push('its artifacts (names, sizes or sha256)');
  if (differs.length > 0) return { ok: false, missing: false, problem: `its manifest in the pool disagrees with the catalog's copy: ${differs.join(', ')}` };
  markCopyPresent(catalog, b, poolId);
  return { ok: true, manifest: m };
}

/**
 * After a copy's status changed: the backup is `available` while one copy is ready and
 * `missing` when every copy it has is missing.
 */
export function settleBackupStatus(catalog: Catalog, backupId: string): void {
  const b = catalog.getBackup(backupId);
  if (!b || b.status === 'deleting') return;
  const copies = catalog.listCopies(backupId);
  const ready = copies.some((c) => c.status === 'ready');
  if (ready && b.status === 'missing') catalog.updateBackup(backupId, { status: 'available' });
  if (!ready && b.status === 'available' && copies.some((c) => c.status === 'missing')) {
    catalog.updateBackup(backupId, { status: 'missing' });
  }
}

/** Records that the copy of a backup in a pool has lost its manifest (and settles the backup). */
export function markCopyMissing(catalog: Catalog, b: BackupRecord, pool: { id: string; name: string }, where: string): void {
  const c = catalog.getCopy(b.id, pool.id);
  if (c?.status === 'missing') return;
  catalog.transaction(() => {
    catalog.upsertCopy({ backupId: b.id, poolId: pool.id, status: 'missing', role: c?.role ?? (pool.id === b.poolId ? 'primary' : 'replica') });
    catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'backup.missing', level: 'error', message: `${b.id}: its manifest is gone from pool ${where}; the copy there no longer exists` });
    settleBackupStatus(catalog, b.id);
  });
}

/** Records that the copy in a pool is there again (its manifest answered). */
export function markCopyPresent(catalog: Catalog, b: BackupRecord, poolId: string): void {
  const c = catalog.getCopy(b.id, poolId);
  if (c && c.status !== 'missing') return;
  catalog.transaction(() => {
    catalog.upsertCopy({ backupId: b.id, poolId, status: 'ready', role: c?.role ?? (poolId === b.poolId ? 'primary' : 'replica') });
    settleBackupStatus(catalog, b.id);
  });
}
