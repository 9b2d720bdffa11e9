// Pool use cases: bind, list, show, update, unbind, check. What a pool type means (its config,
// its bind flags, how it shows) is its driver kind's (storage/registry.ts); this module reads
// kinds and capabilities, never a type name.
import { randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import type { Context } from './context.js';
import { DbsError, describeError, type ErrorCode } from '../errors.js';
import type { Secret } from '../secret.js';
import { openFileMode, parseSecretRef, resolveGivenRef, secretMode, storedSecret, storeSecret, type GivenSecret, type SecretMode } from './credentials.js';
import { POOL_FORMAT_VERSION, POOL_MARKER_KEY, backupsPrefix, manifestKey, probeKey } from '../storage/layout.js';
import { driverKind, driverKinds, driverSettings, findDriverKind } from '../storage/registry.js';
import type { BindFlags, DriverKind, PoolDriver } from '../storage/types.js';
import { wrapDriver } from '../storage/wrap.js';
import { newId, type Catalog, type PoolRecord } from '../store/catalog.js';
import type { JsonObject } from '../decode.js';
import { findPoolOrThrow, uniqueViolation, validateName } from './names.js';
import { poolEgress, poolUsesGateway } from './gateway.js';
import { VERSION } from '../version.js';

export interface PoolMarker {
  format: number;
  id: string;
  catalogId: string;
  createdAt: string;
  createdBy: string;
}

/** The drivers' bind flags (storage/types.ts BindFlags), with the secret key itself. */
export interface BindPoolOptions extends Omit<BindFlags, 'secretKey'> {
  name: string;
  type: string;
  remark?: string;
  secretKey?: Secret;
  /** --secret-key-from env:VAR|file:PATH: the catalog keeps only this reference; the key is read at each pool open. */
  secretKeyFrom?: string;
}

export interface ProbeResult {
  latencyMs: number;
}

export interface BindPoolResult {
  pool: PoolView;
  adopted: boolean;
  /** What the bind created besides the pool marker, e.g. "bucket dbs". */
  created: string[];
  /** E.g. a --secret-key-from file that others may read. */
  warnings: string[];
}

/** A pool as shown to users: no secrets, with the number of plans using it. */
export interface PoolView extends PoolRecord {
  location: string;
  plans: number;
  /** Its traffic goes through the catalog's gateway (a network pool while a gateway exists). */
  viaGateway: boolean;
  /** How its secret key is kept: copied, or a reference read at each open; null without one. */
  secretKey: SecretMode | null;
}

/** A bound pool's kind and its config, decoded (a DbsError naming the pool when it is not one). */
function decoded(p: { id?: string; name?: string; type: string; config: unknown }): { kind: DriverKind; config: object } {
  const what = p.name === undefined ? 'the pool config' : `the config of pool ${JSON.stringify(p.name)}${p.id ? ` (${p.id})` : ''}`;
  const kind = findDriverKind(p.type);
  if (!kind) {
    throw new DbsError('INVALID_RECORD', `pool ${JSON.stringify(p.name)}: no driver for its type ${JSON.stringify(p.type)}`, {
      hint: 'it was bound by a dbs with more drivers; use that dbs, or unbind the pool',
    });
  }
  return { kind, config: kind.decode(p.config, what) };
}

export function poolLocation(p: { id?: string; name?: string; type: string; config: unknown }): string {
  const { kind, config } = decoded(p);
  return kind.location(config);
}

/** The driver's own fields of a pool for `dbs pool show` (S3: endpoint, bucket, ...). */
export function poolFields(p: PoolRecord): [string, string][] {
  const { kind, config } = decoded(p);
  return kind.fields(config);
}

/** Whether pools of this type take an access key and secret key (`pool bind` asks for one). */
export function takesCredentials(type: string): boolean {
  return findDriverKind(type)?.credentials ?? false;
}

/** The location, or what is wrong with the record: a listing must show every pool (to unbind it). */
function viewLocation(p: PoolRecord): string {
  try {
    return poolLocation(p);
  } catch (e) {
    if (e instanceof DbsError && e.code === 'INVALID_RECORD') return `(invalid: ${e.message})`;
    throw e;
  }
}

export function poolView(catalog: Catalog, p: PoolRecord): PoolView {
  return { ...p, location: viewLocation(p), plans: catalog.plansUsingPool(p.id).length, viaGateway: poolUsesGateway(p) && catalog.getGateway() !== undefined, secretKey: secretMode(catalog, 'pool', p.id, 'secretKey') ?? null };
}

/** A pool's secret key: the copied one, or its reference read now (credentials.ts storedSecret). */
function poolSecret(ctx: Context, pool: Pick<PoolRecord, 'id' | 'name'>): Secret | undefined {
  return storedSecret(ctx, 'pool', pool.id, 'secretKey', `S3 secret key of pool ${pool.name}`);
}

/** The secret key a bind or update gives: a value to copy (--secret-key-env/-file) or a reference (--secret-key-from), exclusive. */
function givenKey(ctx: Context, o: { secretKey?: Secret; secretKeyFrom?: string }): GivenSecret | undefined {
  if (o.secretKeyFrom !== undefined && o.secretKey !== undefined) {
    throw new DbsError('USAGE', '--secret-key-from and --secret-key-env/--secret-key-file are exclusive', { hint: '--secret-key-from keeps a reference read at each use; --secret-key-env copies the value now: give one' });
  }
  if (o.secretKeyFrom !== undefined) return { ref: parseSecretRef(o.secretKeyFrom, { flag: 'secret-key', cwd: ctx.cwd }) };
  return o.secretKey ? { value: o.secretKey } : undefined;
}

function keyWarnings(g: GivenSecret | undefined): string[] {
  if (!g || !('ref' in g) || g.ref.from !== 'file') return [];
  const mode = openFileMode(g.ref);
  return mode === undefined ? [] : [`the secret file ${g.ref.path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); make it 0600 or 0400`];
}

/**
 * The unwrapped driver of a pool config (bind checks the bucket on it before wrapping). A
 * network pool connects from the gateway's address while a gateway exists (core/gateway.ts).
 */
async function openRaw(ctx: Context, kind: DriverKind, config: object, secret: Secret | undefined): Promise<PoolDriver> {
  const { localAddress } = poolEgress(ctx.catalog(), kind.type);
  return kind.open(config, secret, { ...driverSettings(ctx.settings), ...(localAddress ? { localAddress } : {}) });
}

/** The gateway's bandwidth cap first (innermost), then the run context's wrappers (tests: faults). */
function wrapped(ctx: Context, kind: DriverKind, raw: PoolDriver): PoolDriver {
  return wrapDriver(wrapDriver(raw, poolEgress(ctx.catalog(), kind.type).wrappers), ctx.poolWrappers);
}

/**
 * Opens the driver of a bound pool with its stored credentials, wrapped in the gateway's cap
 * (network pools) and the run context's wrappers (ctx.poolWrappers: tests inject faults there).
 */
export async function openPool(ctx: Context, pool: PoolRecord): Promise<PoolDriver> {
  const { kind, config } = decoded(pool);
  return wrapped(ctx, kind, await openRaw(ctx, kind, config, poolSecret(ctx, pool)));
}

/**
 * Proves a pool works: writes a probe object, reads it back, compares, deletes it.
 * Throws the driver's error (auth, unreachable, permission) when any step fails.
 */
export async function probePool(driver: PoolDriver, signal?: AbortSignal): Promise<ProbeResult> {
  const token = randomBytes(8).toString('hex');
  const key = probeKey(token);
  const body = Buffer.from(`dbs probe ${token}\n`);
  const start = performance.now();
  await driver.put(key, body, { signal });
  try {
    const back = await buffer(await driver.get(key, { signal }));
    if (!back.equals(body)) {
      throw new DbsError('POOL_CHECK_FAILED', `${driver.location}: the probe object read back differs from what was written`, {
        hint: 'the storage returns wrong data; do not use it for backups',
      });
    }
  } finally {
    await driver.delete(key, { signal }).catch(() => undefined);
  }
  return { latencyMs: Math.round((performance.now() - start) * 10) / 10 };
}

async function readMarker(driver: PoolDriver, signal?: AbortSignal): Promise<PoolMarker | undefined> {
  if (!(await driver.stat(POOL_MARKER_KEY, { signal }))) return undefined;
  const text = (await buffer(await driver.get(POOL_MARKER_KEY, { signal }))).toString('utf8');
  try {
    const m = JSON.parse(text) as PoolMarker;
    if (typeof m.id !== 'string' || typeof m.format !== 'number') throw new Error('missing fields');
    return m;
  } catch {
    throw new DbsError('REFUSED', `${driver.location}: ${POOL_MARKER_KEY} exists but is not a dbs pool marker`, {
      hint: 'choose another path or prefix; dbs will not overwrite a file it did not write',
    });
  }
}

const flagName = (f: string) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A flag of another kind given for this one is a usage error naming the kinds it is for. */
function refuseMisfitFlags(kind: DriverKind, o: BindPoolOptions): void {
  const all = new Set(driverKinds().flatMap((k) => k.flags));
  for (const f of all) {
    if (o[f] === undefined || kind.flags.includes(f)) continue;
    const owners = driverKinds().filter((k) => k.flags.includes(f)).map((k) => k.type);
    throw new DbsError('USAGE', `${flagName(f)} applies to ${owners.join(' and ')} pools only`, { hint: kind.misfitHints?.[f] ?? `drop it for --type ${kind.type}` });
  }
}

/**
 * The checks of `pool bind` that need no I/O (name, remark, type, flags that fit the type, the
 * driver's own config rules): the pool config the flags give. `dbs apply` validates with it.
 */
export function checkPoolBind(o: Omit<BindPoolOptions, 'secretKey'> & { hasSecretKey?: boolean }): { type: string; config: JsonObject } {
  const { kind, typed } = checkBind(o, Boolean(o.hasSecretKey));
  return { type: kind.type, config: { ...typed } as JsonObject };
}

function checkBind(o: Omit<BindPoolOptions, 'secretKey'>, hasSecretKey: boolean): { name: string; kind: DriverKind; typed: object; flags: BindFlags } {
  const name = validateName(o.name, 'pool');
  if (o.remark !== undefined && /[\x00-\x08\x0b-\x1f\x7f]/.test(o.remark)) {
    throw new DbsError('INVALID_ARGUMENT', 'the --remark contains control characters', { hint: 'use plain text' });
  }
  const kind = driverKind(o.type);
  refuseMisfitFlags(kind, o as BindPoolOptions);
  if ((o.secretKeyFrom !== undefined || hasSecretKey) && !kind.credentials) throw new DbsError('USAGE', `--secret-key-from applies to pools with credentials, not --type ${kind.type}`, { hint: 'drop it' });
  const flags = { path: o.path, endpoint: o.endpoint, bucket: o.bucket, prefix: o.prefix, region: o.region, accessKey: o.accessKey, pathStyle: o.pathStyle, secretKey: hasSecretKey };
  return { name, kind, typed: kind.fromBind(flags), flags };
}

/** A bound pool's config as its driver decodes it (to compare with what `checkPoolBind` gives). */
export function poolConfig(p: PoolRecord): JsonObject {
  return { ...decoded(p).config } as JsonObject;
}

export async function runPoolBind(o: BindPoolOptions, ctx: Context): Promise<BindPoolResult> {
  const catalog = ctx.catalog();
  // The checks that need no I/O, shared with `dbs apply` (checkPoolBind).
  const { name, kind, typed, flags } = checkBind(o, o.secretKey !== undefined || o.secretKeyFrom !== undefined);
  const given = givenKey(ctx, o);
  const secretKey = given ? ('value' in given ? given.value : resolveGivenRef(ctx, given.ref, 'S3 secret key', 'secret-key')) : undefined;
  const config = { ...typed } as JsonObject;

  if (catalog.findPool(name)) {
    throw new DbsError('ALREADY_EXISTS', `a pool named ${JSON.stringify(name)} already exists`, { hint: 'choose another name, or see: dbs pool list' });
  }
  const location = kind.location(typed);
  const same = catalog.listPools().find((p) => viewLocation(p) === location);
  if (same) {
    throw new DbsError('ALREADY_EXISTS', `${location} is already bound as pool ${JSON.stringify(same.name)} (${same.id})`, {
      hint: 'use the existing pool, or bind another path/prefix',
    });
  }

  const raw = await openRaw(ctx, kind, typed, secretKey);
  const driver = wrapped(ctx, kind, raw);
  try {
    const made = await kind.prepare?.(raw, typed, flags, { signal: ctx.signal });
    const created = made ? [made] : [];
    const probe = await probePool(driver, ctx.signal);
    const marker = await readMarker(driver, ctx.signal);
    let id: string;
    let adopted = false;
    if (marker) {
      const bound = catalog.getPool(marker.id);
      if (bound) {
        throw new DbsError('ALREADY_EXISTS', `${location} holds pool ${marker.id}, already bound here as ${JSON.stringify(bound.name)}`, {
          hint: 'use the existing pool',
        });
      }
      id = marker.id;
      adopted = true;
    } else {
      id = newId('pool');
      const m: PoolMarker = { format: POOL_FORMAT_VERSION, id, catalogId: catalog.catalogId, createdAt: catalog.now(), createdBy: `dbs ${VERSION}` };
      try {
        await driver.put(POOL_MARKER_KEY, `${JSON.stringify(m, null, 2)}\n`, { ifAbsent: true, signal: ctx.signal });
      } catch (e) {
        // Another bind of this location wrote its marker between our read and our write.
        if (!(e instanceof DbsError) || e.code !== 'ALREADY_EXISTS') throw e;
        throw new DbsError('ALREADY_EXISTS', `${location} is already bound as a pool by another dbs process`, { cause: e, hint: 'use the existing pool (see: dbs pool list)' });
      }
    }
    let pool: PoolRecord;
    try {
      pool = catalog.transaction(() => {
        const p = catalog.insertPool({ id, name, type: kind.type, config, remark: o.remark ?? '', status: 'online', latencyMs: probe.latencyMs, checkedAt: catalog.now() });
        if (given) storeSecret(catalog, 'pool', id, 'secretKey', given);
        catalog.recordEvent({ resourceKind: 'pool', resourceId: id, type: adopted ? 'pool.adopted' : 'pool.bound', level: 'info', message: `bound ${location}` });
        return p;
      });
    } catch (e) {
      // Lost a race with another `dbs pool bind` of this name or location: leave nothing behind,
      // unless another bind adopted the marker we wrote (its pool holds our id): then the
      // marker is that pool's now.
      if (!adopted && !catalog.getPool(id)) await driver.delete(POOL_MARKER_KEY, { signal: ctx.signal }).catch(() => undefined);
      const column = uniqueViolation(e);
      if (column === 'pools.name') throw new DbsError('ALREADY_EXISTS', `a pool named ${JSON.stringify(name)} already exists`, { cause: e, hint: 'choose another name, or see: dbs pool list' });
      if (column === 'pools.id') {
        const bound = catalog.getPool(id);
        throw new DbsError('ALREADY_EXISTS', `${location} holds pool ${id}, already bound here${bound ? ` as ${JSON.stringify(bound.name)}` : ''}`, { cause: e, hint: 'use the existing pool' });
      }
      throw e;
    }
    return { pool: poolView(catalog, pool), adopted, created, warnings: keyWarnings(given) };
  } finally {
    await driver.close();
  }
}

export function runPoolList(_o: object, ctx: Context): PoolView[] {
  const catalog = ctx.catalog();
  return catalog.listPools().map((p) => poolView(catalog, p));
}

export interface PoolShowResult extends PoolView {
  planNames: { id: string; name: string }[];
}

export function runPoolShow(o: { pool: string }, ctx: Context): PoolShowResult {
  const catalog = ctx.catalog();
  const p = findPoolOrThrow(catalog, o.pool);
  return { ...poolView(catalog, p), planNames: catalog.plansUsingPool(p.id) };
}

export interface UpdatePoolOptions {
  pool: string;
  name?: string;
  remark?: string;
  accessKey?: string;
  secretKey?: Secret;
  /** --secret-key-from env:VAR|file:PATH: switch to (or change) a reference. */
  secretKeyFrom?: string;
}

export async function runPoolUpdate(o: UpdatePoolOptions, ctx: Context): Promise<PoolView & { warnings: string[] }> {
  const catalog = ctx.catalog();
  const p = findPoolOrThrow(catalog, o.pool);
  const given = givenKey(ctx, o);
  if (o.name === undefined && o.remark === undefined && o.accessKey === undefined && given === undefined) {
    throw new DbsError('USAGE', `nothing to update for pool ${JSON.stringify(p.name)}`, { hint: 'pass --name, --remark, --access-key or a secret key option' });
  }
  if (o.name !== undefined) {
    validateName(o.name, 'pool', '--name');
    const other = catalog.findPool(o.name);
    if (other && other.id !== p.id) throw new DbsError('ALREADY_EXISTS', `a pool named ${JSON.stringify(o.name)} already exists`, { hint: 'choose another name' });
  }
  if (o.remark !== undefined && /[\x00-\x08\x0b-\x1f\x7f]/.test(o.remark)) {
    throw new DbsError('INVALID_ARGUMENT', 'the --remark contains control characters', { hint: 'use plain text' });
  }
  let config = p.config;
  let secret: Secret | undefined;
  if (o.accessKey !== undefined || given !== undefined) {
    const cur = decoded(p);
    if (!cur.kind.credentials) {
      const kinds = driverKinds().filter((k) => k.credentials).map((k) => k.type);
      throw new DbsError('USAGE', `pool ${JSON.stringify(p.name)} is a ${p.type} pool; credentials apply to ${kinds.join(' and ')} pools`, { hint: 'drop the credential options' });
    }
    const next = o.accessKey !== undefined && cur.kind.withAccessKey ? cur.kind.withAccessKey(cur.config, o.accessKey) : cur.config;
    config = { ...next } as JsonObject;
    secret = given ? ('value' in given ? given.value : resolveGivenRef(ctx, given.ref, 'S3 secret key', 'secret-key')) : poolSecret(ctx, p);
    // New credentials must work before they replace the old ones.
    const driver = wrapped(ctx, cur.kind, await openRaw(ctx, cur.kind, next, secret));
    try {
      await probePool(driver, ctx.signal);
    } finally {
      await driver.close();
    }
  }
  let updated: PoolRecord;
  try {
    updated = catalog.transaction(() => {
      const u = catalog.updatePool(p.id, { name: o.name, remark: o.remark, config });
      if (given) storeSecret(catalog, 'pool', p.id, 'secretKey', given);
      return u;
    });
  } catch (e) {
    if (uniqueViolation(e) === 'pools.name') throw new DbsError('ALREADY_EXISTS', `a pool named ${JSON.stringify(o.name)} already exists`, { cause: e, hint: 'choose another name' });
    throw e;
  }
  return { ...poolView(catalog, updated), warnings: keyWarnings(given) };
}

export function runPoolUnbind(o: { pool: string; forgetBackups?: boolean }, ctx: Context): { pool: PoolView; forgotten: string[] } {
  const catalog = ctx.catalog();
  const p = findPoolOrThrow(catalog, o.pool);
  const plans = catalog.plansUsingPool(p.id);
  if (plans.length) {
    throw new DbsError('IN_USE', `pool ${JSON.stringify(p.name)} is used by ${plans.length} plan(s): ${plans.map((x) => x.name).join(', ')}`, {
      hint: 'delete those plans or move them to another pool first',
    });
  }
  const replicating = catalog.listPlans().filter((x) => Array.isArray(x.options.replicateTo) && x.options.replicateTo.includes(p.id));
  if (replicating.length) {
    throw new DbsError('IN_USE', `pool ${JSON.stringify(p.name)} is a replica pool of ${replicating.map((x) => x.name).join(', ')}`, {
      hint: 'change their --replicate-to (or pass --no-replicate) first',
    });
  }
  const standing = catalog.listPlans().filter((x) => x.options.standbyPoolId === p.id);
  if (standing.length) {
    throw new DbsError('IN_USE', `pool ${JSON.stringify(p.name)} is the standby pool of ${standing.map((x) => x.name).join(', ')}`, {
      hint: `remove it from them first: dbs plan update ${standing[0]!.name} --no-standby-pool`,
    });
  }
  // The catalog's copies there would point at a pool it no longer knows.
  const copies = catalog.listCopiesInPool(p.id);
  if (copies.length && !o.forgetBackups) {
    throw new DbsError('REFUSED', `the catalog knows ${copies.length} backup cop${copies.length === 1 ? 'y' : 'ies'} in pool ${JSON.stringify(p.name)}`, {
      hint: 'delete those backups first, or pass --forget-backups to forget them (their data stays in the pool; a backup whose only copy it was leaves the catalog)',
    });
  }
  const view = poolView(catalog, p);
  const forgotten: string[] = [];
  catalog.transaction(() => {
    for (const c of copies) if (catalog.deleteCopy(c.backupId, p.id)) forgotten.push(c.backupId);
    catalog.deletePool(p.id);
    catalog.recordEvent({ resourceKind: 'pool', resourceId: p.id, type: 'pool.unbound', level: 'info', message: `unbound ${view.location}${copies.length ? `; forgot ${copies.length} backup copies there` : ''}` });
  });
  return { pool: view, forgotten };
}

export interface PoolCheckResult {
  pool: string;
  id: string;
  status: 'online' | 'offline';
  latencyMs: number | null;
  /** Incomplete uploads of dead tasks that the check aborted. */
  abortedUploads?: number;
  /** Backups of this pool whose manifest is gone (now `missing` in the catalog). */
  missingBackups?: string[];
  /** Backups found in the pool that the catalog did not know, now adopted. */
  adoptedBackups?: string[];
  /** Known backups whose copy in this pool is now recorded. */
  recordedCopies?: string[];
  error?: { code: ErrorCode; message: string };
}

/** One listing of the pool's manifests; catalog copies in this pool whose manifest is absent become `missing`. */
async function markMissingBackups(ctx: Context, driver: PoolDriver, p: PoolRecord): Promise<string[]> {
  const catalog = ctx.catalog();
  const { markCopyMissing, markCopyPresent } = await import('./pool-manifest.js');
  const present = new Set<string>();
  for await (const o of driver.list(backupsPrefix(), { signal: ctx.signal })) if (o.key.endsWith('/manifest.json')) present.add(o.key);
  const missing: string[] = [];
  for (const b of catalog.listBackups({ poolId: p.id, copyStatus: ['ready', 'missing'] })) {
    const there = present.has(manifestKey(b.planId, b.id));
    if (!there) markCopyMissing(catalog, b, p, p.name);
    else markCopyPresent(catalog, b, p.id);
    if (!there) missing.push(b.id);
  }
  return missing;
}

/** Probes a pool and records its status; a failed check is a result (status offline, its error), not a throw. */
export async function runPoolCheck(o: { pool: string }, ctx: Context): Promise<PoolCheckResult> {
  const catalog = ctx.catalog();
  const p = findPoolOrThrow(catalog, o.pool);
  try {
    const driver = await openPool(ctx, p);
    try {
      const probe = await probePool(driver, ctx.signal);
      const m = await readMarker(driver, ctx.signal);
      if (!m) throw new DbsError('POOL_CHECK_FAILED', `${driver.location}: the pool marker ${POOL_MARKER_KEY} is missing`, { hint: 'was the pool emptied? unbind and bind it again' });
      if (m.id !== p.id) throw new DbsError('POOL_CHECK_FAILED', `${driver.location}: holds pool ${m.id}, not ${p.id}`, { hint: 'the location now belongs to another pool' });
      catalog.setPoolStatus(p.id, 'online', '', probe.latencyMs);
      const { sweepStaleUploads } = await import('./recovery.js');
      const abortedUploads = await sweepStaleUploads(ctx, driver, p, () => undefined);
      const missingBackups = await markMissingBackups(ctx, driver, p);
      // Manifests the catalog does not know (a kill between manifest and catalog row) are adopted.
      const { reconcilePool } = await import('./rebuild.js');
      const r = await reconcilePool(ctx, p, driver, { plans: false });
      return { pool: p.name, id: p.id, status: 'online', latencyMs: probe.latencyMs, abortedUploads, missingBackups, adoptedBackups: r.backups, recordedCopies: r.copies };
    } finally {
      await driver.close();
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    const err = e instanceof DbsError ? e : new DbsError('POOL_CHECK_FAILED', describeError(e), { cause: e });
    catalog.setPoolStatus(p.id, 'offline', err.message, null);
    catalog.recordEvent({ resourceKind: 'pool', resourceId: p.id, type: 'pool.offline', level: 'error', message: err.message });
    return { pool: p.name, id: p.id, status: 'offline', latencyMs: null, error: { code: err.code, message: err.message } };
  }
}
