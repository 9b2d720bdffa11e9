// Backup chains: which backup an increment builds on, the chain a restore needs, and which
// backups others depend on. Engine-neutral: a backup's descriptor says whether its type starts
// or extends a chain (TypeSpec.chain); the chain itself is the catalog's parentId links.
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import type { AnyEngineDescriptor } from '../engines/descriptor.js';
import type { BackupType, ChainLink } from '../engines/types.js';
import type { AgeIdentities } from '../pipeline/stages.js';
import type { PoolDriver } from '../storage/types.js';
import type { BackupRecord, Catalog, PlanRecord } from '../store/catalog.js';
import { artifactReaders } from './artifacts.js';
import { backupManifest } from './manifest.js';
import { openPool } from './pools.js';

/** The base plan of a plan whose type extends a chain. */
export function basePlanOf(catalog: Catalog, plan: PlanRecord): PlanRecord | undefined {
  const id = plan.options.basePlanId as string | undefined;
  return id ? catalog.getPlan(id) : undefined;
}

/**
 * The newest backup of the chain an incremental plan extends: the newest backup of its base
 * plan or of itself. A new full backup in the base plan starts a new chain.
 */
export function chainParent(catalog: Catalog, plan: PlanRecord, poolId = plan.poolId): BackupRecord | undefined {
  const base = basePlanOf(catalog, plan);
  // Chains never span pools: only backups with a ready copy in the pool the increment goes to.
  const inPool = { poolId, copyStatus: ['ready' as const] };
  const candidates = [...(base ? catalog.listBackups({ planId: base.id, ...inPool }) : []), ...catalog.listBackups({ planId: plan.id, ...inPool })].filter((b) => b.status === 'available');
  candidates.sort((a, b) => (a.endedAt < b.endedAt ? 1 : a.endedAt > b.endedAt ? -1 : 0));
  return candidates[0];
}

/** The chain of a backup, oldest (its full backup) first, ending with the backup itself. */
export function chainOf(catalog: Catalog, backup: BackupRecord): BackupRecord[] {
  const chain = [backup];
  const seen = new Set([backup.id]);
  for (let cur = backup; cur.parentId; ) {
    const parent = catalog.getBackup(cur.parentId);
    if (!parent) {
      throw new DbsError('NOT_FOUND', `the chain of backup ${backup.id} is broken: its parent ${cur.parentId} is gone`, { hint: 'restore a newer full backup instead' });
    }
    if (seen.has(parent.id)) throw new DbsError('INTERNAL', `the chain of backup ${backup.id} has a cycle at ${parent.id}`);
    seen.add(parent.id);
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}

/** Every backup that depends on this one, directly or not, newest first. */
export function dependentsOf(catalog: Catalog, backupId: string): BackupRecord[] {
  const all = catalog.listBackups();
  const out: BackupRecord[] = [];
  const walk = (id: string) => {
    for (const b of all.filter((x) => x.parentId === id)) {
      walk(b.id);
      out.push(b);
    }
  };
  walk(backupId);
  return out;
}

/**
 * Opens the pools of a chain and builds its links, each backup's facts decoded by the engine's
 * descriptor; call close() when done.
 */
export async function openChain(ctx: Context, desc: AnyEngineDescriptor, chain: BackupRecord[], onBytes?: (n: number) => void, identities?: AgeIdentities, poolId?: string, onStoredBytes?: (n: number) => void): Promise<{ links: ChainLink[]; close(): Promise<void> }> {
  const catalog = ctx.catalog();
  const drivers = new Map<string, PoolDriver>();
  try {
    const links: ChainLink[] = [];
    // Chains never span pools: with `poolId`, every link is read from that pool's copy.
    for (const b of chain) {
      const at = poolId ?? b.poolId;
      let d = drivers.get(at);
      if (!d) {
        const pool = catalog.getPool(at);
        if (!pool) throw new DbsError('POOL_NOT_FOUND', `the pool ${at} of backup ${b.id} is not bound`, { hint: 'bind it again' });
        d = await openPool(ctx, pool);
        drivers.set(at, d);
      }
      const m = backupManifest(b);
      links.push({ backupId: b.id, type: b.backupType as BackupType, facts: desc.decodeFacts(m.facts, `the facts of backup ${b.id}`), artifacts: artifactReaders(d, m.artifacts, ctx.signal, onBytes, identities, onStoredBytes) });
    }
    return { links, close: async () => void (await Promise.all([...drivers.values()].map((d) => d.close()))) };
  } catch (e) {
    await Promise.all([...drivers.values()].map((d) => d.close()));
    throw e;
  }
}
