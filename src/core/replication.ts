// A plan's replication settings (replica pools, their retention, the standby pool), decoded
// from its options; light, for the lists (core/plan-view.ts) as well as for core/copies.ts.
import { DbsError } from '../errors.js';
import { object, stringArray } from '../decode.js';
import type { PlanRecord } from '../store/catalog.js';
import { decodeRetention, type Retention } from './retention.js';

/** A plan's replica pools (ids) and the retention of its copies there. */
export interface Replication {
  pools: string[];
  retention: Retention;
}

/** The replication settings stored in a plan's options, decoded. */
export function planReplication(plan: Pick<PlanRecord, 'id' | 'name' | 'options'>): Replication {
  const what = `the replication of plan ${JSON.stringify(plan.name)} (${plan.id})`;
  const o = object(plan.options, what);
  const pools = o.replicateTo === undefined ? [] : stringArray(o, 'replicateTo', what);
  const retention = o.remoteRetention === undefined ? { keepForever: true } : decodeRetention(o.remoteRetention, `${what}: remote retention`);
  return { pools, retention };
}

/** A plan's standby pool (id), when it has one. */
export function planStandby(plan: Pick<PlanRecord, 'id' | 'name' | 'options'>): string | undefined {
  const v = plan.options.standbyPoolId;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !v) throw new DbsError('INVALID_RECORD', `the standby pool of plan ${JSON.stringify(plan.name)} (${plan.id}): expected a pool id`);
  return v;
}

