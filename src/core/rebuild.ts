// The catalog rebuilt from a pool (DESIGN.md "Pool layout"): a pool holds its plans
// (dbs/plans/<id>.json, secrets redacted) and its backups (manifest last). `catalog rebuild`
// recreates plans and backups (with this pool's copy, chains by parentId, retention in the
// plan) from those files alone, merging into the catalog and never duplicating; `pool check`
// reconciles the same way for backups of plans the catalog knows.
import { buffer } from 'node:stream/consumers';
import type { Context } from './context.js';
import { DbsError, describeError } from '../errors.js';
import { object, string } from '../decode.js';
import { backupsPrefix, plansPrefix } from '../storage/layout.js';
import type { PoolDriver } from '../storage/types.js';
import type { PlanRecord, PoolRecord } from '../store/catalog.js';
import { decodeManifest, type Manifest } from './manifest.js';
import { ensurePoolOnline, markCopyPresent } from './pool-manifest.js';
import { findPoolOrThrow } from './names.js';
import { openPool } from './pools.js';

/** Why a rebuilt plan is paused until `plan update` gives it its secrets. */
export const NEEDS_CREDENTIALS = 'needs credentials';

export interface ReconcileResult {
  pool: string;
  plans: string[];
  backups: string[];
  /** Backups the catalog had whose copy in this pool is now recorded. */
  copies: string[];
  skipped: { key: string; reason: string }[];
}

async function readJson(driver: PoolDriver, key: string, signal: AbortSignal): Promise<unknown> {
  return JSON.parse((await buffer(await driver.get(key, { signal }))).toString('utf8'));
}

/** A plan file of the pool, decoded enough to insert it (the catalog's own fields). */
function decodePlanFile(data: unknown, key: string): PlanRecord {
  const what = `the plan file ${key}`;
  const plan = object(object(data, what).plan, `${what}: plan`);
  const w = `${what}: plan`;
  const obj = (k: string) => object(plan[k], `${w}.${k}`);
  const source = obj('source');
  string(source, 'url', `${w}.source`);
  return {
    id: string(plan, 'id', w),
    name: string(plan, 'name', w),
    status: 'paused',
    pauseReason: NEEDS_CREDENTIALS,
    sourceKind: string(plan, 'sourceKind', w),
    source: { ...source, url: String(source.url) },
    backupType: string(plan, 'backupType', w),
    selection: obj('selection'),
    poolId: string(plan, 'poolId', w),
    schedule: { ...obj('schedule'), kind: string(obj('schedule'), 'kind', `${w}.schedule`) },
    retention: obj('retention'),
    compression: string(plan, 'compression', w),
    options: obj('options'),
    remark: typeof plan.remark === 'string' ? plan.remark : '',
    createdAt: string(plan, 'createdAt', w),
    updatedAt: string(plan, 'updatedAt', w),
  };
}

/**
 * Merges what a pool holds into the catalog. With `plans`, plan files of plans the catalog does
 * not know are recreated (paused, "needs credentials"); backups are adopted only for plans the
 * catalog knows (then). A backup the catalog knows gets this pool's copy recorded; one it does
 * not know is adopted when every artifact is there with its size.
 */
export async function reconcilePool(ctx: Context, pool: PoolRecord, driver: PoolDriver, o: { plans: boolean }): Promise<ReconcileResult> {
  const catalog = ctx.catalog();
  const out: ReconcileResult = { pool: pool.name, plans: [], backups: [], copies: [], skipped: [] };
  if (o.plans) {
    for await (const f of driver.list(plansPrefix(), { signal: ctx.signal })) {
      if (!f.key.endsWith('.json')) continue;
      let p: PlanRecord;
      try {
        p = decodePlanFile(await readJson(driver, f.key, ctx.signal), f.key);
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        out.skipped.push({ key: f.key, reason: describeError(e) });
        continue;
      }
      if (catalog.getPlan(p.id)) continue;
      if (catalog.findPlan(p.name)) {
        out.skipped.push({ key: f.key, reason: `a different plan named ${JSON.stringify(p.name)} exists in this catalog` });
        continue;
      }
      // Its pool may be unknown here (a fresh catalog): then the pool being rebuilt is its pool.
      if (!catalog.getPool(p.poolId)) p.poolId = pool.id;
      catalog.transaction(() => {
        catalog.insertPlan({ ...p, options: { ...p.options, needsCredentials: true } });
        catalog.recordEvent({ resourceKind: 'plan', resourceId: p.id, type: 'plan.rebuilt', level: 'warning', message: `recreated plan ${p.name} from pool ${pool.name}; paused until dbs plan update gives it its credentials` });
      });
      out.plans.push(p.name);
    }
  }
  const manifests: Manifest[] = [];
  for await (const f of driver.list(backupsPrefix(), { signal: ctx.signal })) {
    if (!f.key.endsWith('/manifest.json')) continue;
    try {
      const m = decodeManifest(await readJson(driver, f.key, ctx.signal), `the manifest ${f.key} in pool ${pool.name}`);
      if (`${backupsPrefix(m.plan.id)}${m.backupId}/manifest.json` !== f.key) throw new DbsError('INVALID_RECORD', `it names backup ${m.backupId} of plan ${m.plan.id}`);
      manifests.push(m);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      out.skipped.push({ key: f.key, reason: describeError(e) });
    }
  }
  // Oldest first: a parent before the backups that build on it.
  manifests.sort((a, b) => (a.endedAt < b.endedAt ? -1 : a.endedAt > b.endedAt ? 1 : 0));
  for (const m of manifests) {
    const known = catalog.getBackup(m.backupId);
    if (known) {
      const c = catalog.getCopy(m.backupId, pool.id);
      if (!c || c.status === 'missing' || c.status === 'failed') {
        if (!c) catalog.upsertCopy({ backupId: m.backupId, poolId: pool.id, status: 'ready', role: known.poolId === pool.id ? 'primary' : 'replica', storedBytes: m.storedBytes });
        else markCopyPresent(catalog, known, pool.id);
        out.copies.push(m.backupId);
      }
      continue;
    }
    const plan = catalog.getPlan(m.plan.id);
    if (!plan) {
      out.skipped.push({ key: `${backupsPrefix(m.plan.id)}${m.backupId}/manifest.json`, reason: `its plan ${m.plan.name} (${m.plan.id}) is not in this catalog` + (o.plans ? ' nor in the pool' : '; run dbs catalog rebuild') });
      continue;
    }
    if (m.parentId && !catalog.getBackup(m.parentId)) {
      out.skipped.push({ key: `${backupsPrefix(m.plan.id)}${m.backupId}/manifest.json`, reason: `its parent ${m.parentId} is in neither the catalog nor the pool` });
      continue;
    }
    let whole = true;
    for (const a of m.artifacts) {
      const info = await driver.stat(a.key, { signal: ctx.signal });
      if (!info || info.size !== a.storedBytes) {
        out.skipped.push({ key: a.key, reason: info ? `${info.size} bytes, the manifest says ${a.storedBytes}` : 'missing' });
        whole = false;
        break;
      }
    }
    if (!whole) continue;
    catalog.transaction(() => {
      catalog.insertBackup({
        id: m.backupId,
        planId: m.plan.id,
        planName: plan.name,
        taskId: null,
        poolId: pool.id,
        status: 'available',
        sourceKind: m.source.kind,
        backupType: m.backupType,
        parentId: m.parentId,
        rawBytes: m.rawBytes,
        storedBytes: m.storedBytes,
        startedAt: m.startedAt,
        endedAt: m.endedAt,
        manifest: m,
      });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: m.plan.id, type: 'backup.adopted', level: 'warning', message: `backup ${m.backupId} was in pool ${pool.name} but not in the catalog; adopted` });
    });
    out.backups.push(m.backupId);
  }
  return out;
}

/** `dbs catalog rebuild --pool P | --all-pools`. */
export async function runCatalogRebuild(o: { pool?: string; allPools?: boolean }, ctx: Context): Promise<ReconcileResult[]> {
  const catalog = ctx.catalog();
  if (Boolean(o.pool) === Boolean(o.allPools)) {
    throw new DbsError('USAGE', 'name one pool with --pool P, or pass --all-pools', { hint: 'bind the pool first (dbs pool bind ...), then: dbs catalog rebuild --pool NAME' });
  }
  const pools = o.pool ? [findPoolOrThrow(catalog, o.pool)] : catalog.listPools();
  const out: ReconcileResult[] = [];
  for (const pool of pools) {
    const driver = await openPool(ctx, pool);
    try {
      await ensurePoolOnline(driver, pool.name, ctx.signal);
      out.push(await reconcilePool(ctx, pool, driver, { plans: true }));
    } finally {
      await driver.close();
    }
  }
  return out;
}

