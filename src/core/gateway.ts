// The gateway: the one egress setting of a catalog (DESIGN.md "Egress"). Its address is the
// local address of every connection to a network pool (S3) and of source connections whose
// client can bind; its bandwidth is ONE token bucket for the whole process (all tasks of a
// daemon, uploads and downloads together), spent by a pool wrapper (storage/throttle.ts).
import { createServer } from 'node:net';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { findDriverKind } from '../storage/registry.js';
import { TokenBucket, throttleWrapper } from '../storage/throttle.js';
import type { PoolWrapper } from '../storage/wrap.js';
import type { Catalog, GatewayRecord, PoolRecord } from '../store/catalog.js';
import { uniqueViolation } from './names.js';
import { formatRate, parseRate } from './rate.js';

export interface GatewayPool {
  id: string;
  name: string;
  type: string;
}

/** The gateway as shown: its record, the address family, the cap for people, the pools it carries. */
export interface GatewayView extends GatewayRecord {
  family: 4 | 6;
  /** e.g. "20 MiB/s", or "unlimited". */
  bandwidthShown: string;
  /** The pools whose traffic goes through the gateway (network pools: S3). */
  pools: GatewayPool[];
}

/** Whether a pool's traffic goes through the gateway: its driver kind says it uses the network. */
export function poolUsesGateway(p: Pick<PoolRecord, 'type'>): boolean {
  return findDriverKind(p.type)?.network ?? false;
}

function gatewayPools(catalog: Catalog): GatewayPool[] {
  return catalog.listPools().filter(poolUsesGateway).map((p) => ({ id: p.id, name: p.name, type: p.type }));
}

function view(catalog: Catalog, g: GatewayRecord): GatewayView {
  return {
    ...g,
    family: isIP(g.address) === 6 ? 6 : 4,
    bandwidthShown: g.bandwidth === null ? 'unlimited' : formatRate(g.bandwidth),
    pools: gatewayPools(catalog),
  };
}

/** This host's addresses, `ADDR/PREFIX (iface)`, for the error when an address is not one of them. */
export function localAddresses(): string[] {
  return Object.entries(networkInterfaces()).flatMap(([name, list]) => (list ?? []).map((a) => `${a.cidr ?? a.address} (${name})`));
}

/** `--ip` as an address: IPv4 or IPv6 (brackets allowed), a USAGE error otherwise. */
export function parseAddress(text: string): string {
  const a = text.trim().replace(/^\[(.*)\]$/, '$1');
  if (!isIP(a)) {
    throw new DbsError('INVALID_ARGUMENT', `--ip ${JSON.stringify(text)} is not an IP address`, { hint: 'give an IPv4 or IPv6 address of this host, e.g. --ip 192.0.2.10 or --ip 2001:db8::10' });
  }
  if (/^(0\.0\.0\.0|::)$/.test(a)) {
    throw new DbsError('INVALID_ARGUMENT', `--ip ${a} is the wildcard address, not one to leave from`, { hint: `give one address of this host: ${localAddresses().join(', ')}` });
  }
  return a;
}

/** Binds a TCP socket to the address for real (port 0) and closes it: the address is this host's. */
export async function checkLocalAddress(address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        new DbsError('INVALID_ARGUMENT', `--ip ${address} is not an address of this host (binding to it failed: ${e.code ?? e.message})`, {
          cause: e,
          hint: `use one of this host's addresses: ${localAddresses().join(', ')}`,
          details: { localAddresses: localAddresses() },
        }),
      );
    });
    server.listen({ host: address, port: 0, exclusive: true }, () => server.close(() => resolve()));
  });
}

function rateOf(text: string | undefined): { bandwidth: number | null; bandwidthText: string | null } {
  return text === undefined ? { bandwidth: null, bandwidthText: null } : { bandwidth: parseRate(text), bandwidthText: text.trim() };
}

function noGateway(): DbsError {
  return new DbsError('NOT_FOUND', 'there is no gateway', { hint: 'create one with: dbs gateway create --ip ADDR [--bandwidth RATE]' });
}

export interface GatewayCreateInput {
  ip: string;
  bandwidth?: string;
}

export async function runGatewayCreate(o: GatewayCreateInput, ctx: Context): Promise<GatewayView> {
  // Everything is checked before anything is written.
  const address = parseAddress(o.ip);
  const rate = rateOf(o.bandwidth);
  const catalog = ctx.catalog();
  const existing = catalog.getGateway();
  if (existing) throw alreadyOne(existing);
  await checkLocalAddress(address);
  try {
    const g = catalog.transaction(() => {
      const r = catalog.insertGateway({ address, ...rate });
      catalog.recordEvent({ resourceKind: 'gateway', resourceId: 'gateway', type: 'gateway.created', level: 'info', message: `gateway ${address}, bandwidth ${rate.bandwidthText ?? 'unlimited'}` });
      return r;
    });
    return view(catalog, g);
  } catch (e) {
    // Another `gateway create` won the race.
    if (uniqueViolation(e) === 'gateway.id') throw alreadyOne(catalog.getGateway(), e);
    throw e;
  }
}

function alreadyOne(g: GatewayRecord | undefined, cause?: unknown): DbsError {
  return new DbsError('ALREADY_EXISTS', `a gateway exists already${g ? ` (${g.address})` : ''}; a catalog has at most one`, {
    cause,
    hint: 'change it with: dbs gateway update --ip ADDR / --bandwidth RATE, or delete it first',
  });
}

export function runGatewayShow(_o: object, ctx: Context): GatewayView {
  const catalog = ctx.catalog();
  const g = catalog.getGateway();
  if (!g) throw noGateway();
  return view(catalog, g);
}

export interface GatewayUpdateInput {
  ip?: string;
  /** A RATE; null removes the cap (--no-bandwidth). */
  bandwidth?: string | null;
}

export async function runGatewayUpdate(o: GatewayUpdateInput, ctx: Context): Promise<GatewayView> {
  if (o.ip === undefined && o.bandwidth === undefined) {
    throw new DbsError('USAGE', 'nothing to update for the gateway', { hint: 'pass --ip ADDR, --bandwidth RATE or --no-bandwidth' });
  }
  const address = o.ip === undefined ? undefined : parseAddress(o.ip);
  const rate = o.bandwidth === undefined ? {} : o.bandwidth === null ? { bandwidth: null, bandwidthText: null } : rateOf(o.bandwidth);
  const catalog = ctx.catalog();
  if (!catalog.getGateway()) throw noGateway();
  if (address !== undefined) await checkLocalAddress(address);
  const g = catalog.transaction(() => {
    const r = catalog.updateGateway({ address, ...rate });
    catalog.recordEvent({ resourceKind: 'gateway', resourceId: 'gateway', type: 'gateway.updated', level: 'info', message: `gateway ${r.address}, bandwidth ${r.bandwidthText ?? 'unlimited'}` });
    return r;
  });
  return view(catalog, g);
}

export interface GatewayDeleteResult {
  gateway: GatewayView;
  /** The pools that now connect from the host's default address, uncapped. */
  released: GatewayPool[];
}

/**
 * Deletes the gateway. Refused (IN_USE, exit 4) while a pool's traffic goes through it (the
 * service's rule: no external pool may remain), unless `force`; then the result names the
 * pools that now leave from the host's default address without a cap.
 */
export function runGatewayDelete(o: { force?: boolean }, ctx: Context): GatewayDeleteResult {
  const catalog = ctx.catalog();
  const g = catalog.getGateway();
  if (!g) throw noGateway();
  const v = view(catalog, g);
  if (v.pools.length && !o.force) {
    throw new DbsError('IN_USE', `the gateway ${g.address} carries the traffic of ${v.pools.length} pool(s): ${v.pools.map((p) => p.name).join(', ')}`, {
      hint: 'unbind those pools first, or pass --force: they then connect from the host\'s default address, without a bandwidth cap',
      details: { pools: v.pools },
    });
  }
  catalog.transaction(() => {
    catalog.deleteGateway();
    catalog.recordEvent({
      resourceKind: 'gateway',
      resourceId: 'gateway',
      type: 'gateway.deleted',
      level: v.pools.length ? 'warning' : 'info',
      message: `gateway ${g.address} deleted${v.pools.length ? `; ${v.pools.map((p) => p.name).join(', ')} now connect from the default address, uncapped` : ''}`,
    });
  });
  return { gateway: v, released: v.pools };
}

// ---- what the data path takes from the gateway ------------------------------------------

/** The process's one bandwidth budget (all tasks of a daemon share it); its rate follows the catalog. */
let processBucket: TokenBucket | undefined;

/** The process's bucket at `rate` bytes/s (created on first use; a changed cap changes its rate). */
export function bandwidthBucket(rate: number): TokenBucket {
  if (!processBucket) processBucket = new TokenBucket(rate);
  else processBucket.setRate(rate);
  return processBucket;
}

/** What a pool connection takes from the gateway: the address to leave from and the cap's wrapper. */
export interface PoolEgress {
  localAddress?: string;
  wrappers: PoolWrapper[];
}

/** The egress of a pool of this type: nothing for local pools or without a gateway. */
export function poolEgress(catalog: Catalog, type: string): PoolEgress {
  const g = poolUsesGateway({ type }) ? catalog.getGateway() : undefined;
  if (!g) return { wrappers: [] };
  return { localAddress: g.address, wrappers: g.bandwidth === null ? [] : [throttleWrapper(bandwidthBucket(g.bandwidth))] };
}

/** `{ egress }` for an engine's run or probe context while a gateway exists, else `{}`. */
export function egressOf(ctx: Context): { egress?: { localAddress: string } } {
  const e = sourceEgress(ctx.catalog());
  return e ? { egress: e } : {};
}

/** The address source connections leave from (EngineRunContext.egress), when a gateway exists. */
export function sourceEgress(catalog: Catalog): { localAddress: string } | undefined {
  const g = catalog.getGateway();
  return g ? { localAddress: g.address } : undefined;
}
