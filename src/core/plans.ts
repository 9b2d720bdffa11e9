// Plan use cases: create, list, show, update, delete.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import type { BackupType, Endpoint, Json } from '../engines/types.js';
import { DESCRIPTORS, descriptorOf, descriptorOrThrow } from '../engines/registry.js';
import { COMPRESSIONS, type Compression } from '../pipeline/names.js';
import type { Secret } from '../secret.js';
import { givenValue, openFileMode, parseSecretRef, storedGiven, storedSecret, storeSecret, type GivenSecret } from './credentials.js';
import { planKey } from '../storage/layout.js';
import { newId, type BackupRecord, type Catalog, type PlanRecord, type TaskRecord } from '../store/catalog.js';
import { descriptorOfUrl, parseEndpoint } from './endpoints.js';
import { checkRecipient, keyLines } from '../pipeline/stages/encrypt.js';
import { uniqueViolation, validateName } from './names.js';
import { presentFlags, checkPlanOptions, typeSpecOf } from './applicable.js';
import { findPoolOrThrow } from './names.js';
import { openPool, probePool } from './pools.js';
import { hasRules, type Retention } from './retention.js';
import { planReplication, planStandby } from './copies.js';
import { nextRuns, parseSchedule, planSchedule, type Schedule, type ScheduleFlags } from './schedule.js';
import { egressOf } from './gateway.js';
import { planRecipients, planView, type PlanView } from './plan-view.js';

export { planRecipients, planView, runPlanList, type PlanState, type PlanView } from './plan-view.js';

export interface PlanInput extends ScheduleFlags {
  name?: string;
  source?: string;
  pool?: string;
  type?: string;
  databases?: string;
  allDatabases?: boolean;
  tables?: string;
  match?: string;
  keepDays?: string | number;
  keepLast?: string | number;
  keepDaily?: string | number;
  keepWeekly?: string | number;
  keepMonthly?: string | number;
  keepForever?: boolean;
  compress?: string;
  remark?: string;
  password?: Secret;
  /** The flags the password came from (only their presence is read here). */
  passwordEnv?: string;
  passwordFile?: string;
  /** --password-from env:VAR|file:PATH: the catalog keeps this reference and reads the secret at each use. */
  passwordFrom?: string;
  /** Incremental plans: the physical plan whose backups start the chain. */
  basePlan?: string;
  /** Incremental plans: take a full backup when the chain is missing or broken. */
  autoFull?: boolean;
  /** Physical/incremental: extract and prepare every new backup before it counts. */
  verifyPrepare?: boolean;
  /** Directory/bucket sources: --include/--exclude globs (repeatable). */
  include?: string[];
  exclude?: string[];
  oneFileSystem?: boolean;
  skipUnreadable?: boolean;
  /** S3 bucket sources: where the bucket is served and the access key id. */
  endpoint?: string;
  region?: string;
  accessKey?: string;
  /** The flags the S3 secret key (the plan's password) came from. */
  secretKeyEnv?: string;
  secretKeyFile?: string;
  /** --secret-key-from env:VAR|file:PATH (an S3 bucket source's reference). */
  secretKeyFrom?: string;
  /** age recipients (public keys) to encrypt every artifact to (--encrypt-to, repeatable). */
  encryptTo?: string[];
  /** A file of age recipients, one a line (--recipients-file). */
  recipientsFile?: string;
  /** plan update: stop encrypting new backups (--no-encrypt). */
  noEncrypt?: boolean;
  /** The pool backups go to while the plan's pool is offline. */
  standbyPool?: string;
  /** Replica pools (repeatable); on update the list replaces the plan's. */
  replicateTo?: string[];
  /** Update: stop replicating (the copies made stay). */
  noReplicate?: boolean;
  /** Update: remove the standby pool (the backups made there stay). */
  noStandby?: boolean;
  remoteKeepForever?: boolean;
  remoteKeepLast?: string | number;
  remoteKeepDays?: string | number;
}

/**
 * The recipients an input gives (--encrypt-to and --recipients-file together), each checked;
 * undefined when it gives none. A bad one is an INVALID_ARGUMENT (exit 2) naming it.
 */
export function parseRecipients(ctx: Pick<Context, 'cwd'>, i: PlanInput): string[] | undefined {
  if (i.noEncrypt && (i.encryptTo?.length || i.recipientsFile !== undefined)) {
    throw new DbsError('USAGE', '--no-encrypt cannot be combined with --encrypt-to or --recipients-file', { hint: 'drop one of them' });
  }
  const given: { r: string; from: string }[] = (i.encryptTo ?? []).map((r) => ({ r: r.trim(), from: '--encrypt-to' }));
  if (i.recipientsFile !== undefined) {
    const path = resolve(ctx.cwd, i.recipientsFile);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new DbsError('INVALID_PATH', `cannot read the recipients file ${path} (from --recipients-file)`, { cause, hint: 'check the path and its permissions' });
    }
    const lines = keyLines(text);
    if (lines.length === 0) throw new DbsError('INVALID_ARGUMENT', `the recipients file ${path} holds no recipient`, { hint: 'one age recipient (age1...) a line' });
    given.push(...lines.map((r, n) => ({ r, from: `line ${n + 1} of ${path}` })));
  }
  if (given.length === 0) return undefined;
  for (const { r, from } of given) {
    // A private key given by mistake is not echoed back.
    if (/^AGE-SECRET-KEY-/i.test(r)) {
      throw new DbsError('INVALID_ARGUMENT', `${from} is an age identity (a private key), not a recipient`, { hint: 'give its public key (age-keygen -y key.txt prints it); keep the identity off the backup host' });
    }
    const problem = checkRecipient(r);
    if (problem) {
      throw new DbsError('INVALID_ARGUMENT', `${from}: ${JSON.stringify(r.length > 80 ? `${r.slice(0, 77)}...` : r)} is not an age recipient (${problem})`, {
        hint: 'an age public key: age1... (age-keygen prints it) or age1pq1... (post-quantum)',
      });
    }
  }
  return [...new Set(given.map((g) => g.r))];
}

/** A plan whose source holds secrets (the catalog) must encrypt; an encrypted plan cannot prove its backups by reading them. */
function checkEncryption(kind: string, type: string, name: string, recipients: string[], verifyPrepare: boolean): void {
  if (descriptorOf(kind)?.catalogSource && recipients.length === 0) {
    throw new DbsError('USAGE', `plan ${JSON.stringify(name)} backs up the dbs catalog, which holds secrets (source passwords, S3 keys): it must be encrypted`, {
      hint: 'add --encrypt-to age1... or --recipients-file F (make a key pair on another host with age-keygen)',
    });
  }
  if (recipients.length && verifyPrepare) {
    throw new DbsError('USAGE', `--verify-prepare reads each new backup back, but plan ${JSON.stringify(name)} encrypts them and the backup host holds no private key`, {
      hint: 'drop --verify-prepare, and check backups with dbs backup verify ID --prepare --identity-file F where the key is',
    });
  }
  if (recipients.length && typeSpecOf(kind, type).spec.readsParent) {
    throw new DbsError('USAGE', `plan ${JSON.stringify(name)}: a ${kind} ${type} backup reads its parent's index to find what changed, but the plan (or its base plan) encrypts and the backup host holds no private key`, {
      hint: `encrypted ${kind} plans take full backups only: use the base plan's type, or drop the encryption`,
    });
  }

}

/** The standby pool of a plan input: bound, and not the plan's own pool. */
function parseStandby(catalog: Catalog, ref: string | undefined, primaryPoolId: string): string | undefined {
  if (ref === undefined) return undefined;
  const pool = findPoolOrThrow(catalog, ref);
  if (pool.id === primaryPoolId) throw new DbsError('INVALID_ARGUMENT', `--standby-pool ${ref}: pool ${pool.name} is the plan's own pool`, { hint: 'name another pool to take over while the plan\'s pool is offline' });
  return pool.id;
}

/**
 * The replication options of a plan input: replica pools (each bound, not the plan's own pool,
 * no twice, answering now) and remote retention. Undefined when the input changes neither.
 * Checked before anything is written.
 */
async function parseReplicationInput(ctx: Context, i: PlanInput, primaryPoolId: string, cur?: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
  const catalog = ctx.catalog();
  const remoteGiven = i.remoteKeepForever !== undefined || i.remoteKeepLast !== undefined || i.remoteKeepDays !== undefined;
  if (i.noReplicate && (i.replicateTo?.length || remoteGiven)) {
    throw new DbsError('USAGE', '--no-replicate cannot be combined with --replicate-to or --remote-keep-*', { hint: 'drop one of them' });
  }
  if (i.noReplicate) return { replicateTo: undefined, remoteRetention: undefined };
  let pools: string[] | undefined;
  if (i.replicateTo?.length) {
    pools = [];
    for (const ref of i.replicateTo) {
      const pool = findPoolOrThrow(catalog, ref);
      if (pool.id === primaryPoolId) {
        throw new DbsError('INVALID_ARGUMENT', `--replicate-to ${ref}: pool ${pool.name} is the plan's own pool`, { hint: 'replicate to another pool; the plan writes to its own pool already' });
      }
      if (pools.includes(pool.id)) throw new DbsError('USAGE', `--replicate-to names pool ${pool.name} twice`, { hint: 'name each replica pool once' });
      pools.push(pool.id);
    }
    // A replica must answer now, as the plan's own pool must.
    for (const id of pools) {
      const pool = catalog.getPool(id)!;
      const driver = await openPool(ctx, pool);
      try {
        await probePool(driver, ctx.signal);
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        throw new DbsError('POOL_UNREACHABLE', `--replicate-to ${pool.name}: the pool does not answer (${e instanceof Error ? e.message : String(e)}); nothing was changed`, {
          hint: `check it with: dbs pool check ${pool.name}`,
          cause: e,
        });
      } finally {
        await driver.close();
      }
    }
  } else if (primaryPoolId && Array.isArray(cur?.replicateTo) && cur.replicateTo.includes(primaryPoolId)) {
    throw new DbsError('INVALID_ARGUMENT', `the plan replicates to the pool it would now write to`, { hint: 'pass --replicate-to with the other pools, or --no-replicate' });
  }
  const hasReplicas = (pools ?? (Array.isArray(cur?.replicateTo) ? cur.replicateTo : [])).length > 0;
  let remoteRetention: Retention | undefined;
  if (remoteGiven) {
    if (!hasReplicas) throw new DbsError('USAGE', '--remote-keep-* applies to plans with --replicate-to', { hint: 'add --replicate-to POOL' });
    const r = parseRetention({ keepForever: i.remoteKeepForever, keepLast: i.remoteKeepLast, keepDays: i.remoteKeepDays }, '--remote-');
    remoteRetention = r ?? { keepForever: true };
  }
  if (!pools && !remoteRetention) return undefined;
  return { ...(pools ? { replicateTo: pools } : {}), ...(remoteRetention ? { remoteRetention } : pools && !cur?.remoteRetention ? { remoteRetention: { keepForever: true } } : {}) };
}


function positiveInt(v: string | number | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(String(v))} must be a whole number of at least 1`, { hint: `e.g. ${flag} 7` });
  return n;
}

/** A plan's --compress: one of the pipeline's compressions (exit 2 otherwise). */
export function checkCompression(v: string): Compression {
  if (!COMPRESSIONS.includes(v as Compression)) throw new DbsError('INVALID_ARGUMENT', `--compress ${JSON.stringify(v)} is not one of ${COMPRESSIONS.join(', ')}`, { hint: 'zstd is the default' });
  return v as Compression;
}

export function parseRetention(i: Pick<PlanInput, 'keepDays' | 'keepLast' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepForever'>, flagPrefix = '--'): Retention | undefined {
  const r: Retention = {
    keepDays: positiveInt(i.keepDays, `${flagPrefix}keep-days`),
    keepLast: positiveInt(i.keepLast, `${flagPrefix}keep-last`),
    keepDaily: positiveInt(i.keepDaily, `${flagPrefix}keep-daily`),
    keepWeekly: positiveInt(i.keepWeekly, `${flagPrefix}keep-weekly`),
    keepMonthly: positiveInt(i.keepMonthly, `${flagPrefix}keep-monthly`),
  };
  for (const k of Object.keys(r) as (keyof Retention)[]) if (r[k] === undefined) delete r[k];
  if (i.keepForever) {
    if (hasRules(r)) throw new DbsError('USAGE', `${flagPrefix}keep-forever cannot be combined with other ${flagPrefix}keep-* rules`, { hint: 'drop one of them' });
    return { keepForever: true };
  }
  return hasRules(r) ? r : undefined;
}

/** The plan option flags an input gives (selection and chain options). */
export function givenPlanFlags(i: PlanInput): string[] {
  return presentFlags([
    ['--databases', i.databases],
    ['--all-databases', i.allDatabases || undefined],
    ['--tables', i.tables],
    ['--match', i.match],
    ['--base-plan', i.basePlan],
    ['--auto-full', i.autoFull],
    ['--verify-prepare', i.verifyPrepare],
    ['--password-env', i.passwordEnv],
    ['--password-file', i.passwordFile],
    ['--password-from', i.passwordFrom],
    ['--include', i.include?.length ? i.include : undefined],
    ['--exclude', i.exclude?.length ? i.exclude : undefined],
    ['--one-file-system', i.oneFileSystem || undefined],
    ['--skip-unreadable', i.skipUnreadable || undefined],
    ['--endpoint', i.endpoint],
    ['--region', i.region],
    ['--access-key', i.accessKey],
    ['--secret-key-env', i.secretKeyEnv],
    ['--secret-key-file', i.secretKeyFile],
    ['--secret-key-from', i.secretKeyFrom],
  ]);
}

function selectionFlagsGiven(i: PlanInput): boolean {
  return [i.databases, i.tables, i.allDatabases, i.match, i.include, i.exclude, i.oneFileSystem, i.skipUnreadable, i.endpoint, i.region, i.accessKey].some((v) => v !== undefined);
}

/** The plan's selection from its flags, parsed and checked by the engine's descriptor. */
export function parseSelection(kind: string, i: Pick<PlanInput, 'databases' | 'allDatabases' | 'tables' | 'match' | 'include' | 'exclude' | 'oneFileSystem' | 'skipUnreadable' | 'endpoint' | 'region' | 'accessKey'>, type: string): Json {
  return descriptorOrThrow(kind).parseSelection(i, type as BackupType);
}

/** The stored selection of a plan, decoded by its engine's descriptor. */
export function planSelection(plan: PlanRecord): Json {
  return descriptorOrThrow(plan.sourceKind).decodeSelection(plan.selection, `the selection of plan ${plan.name}`);
}

/** The backup types of any engine that extend a chain, with the engine and the type that starts the chain. */
function incrementTypes(): { kind: string; type: string; full: string }[] {
  return DESCRIPTORS.flatMap((d) => Object.entries(d.types).flatMap(([type, spec]) => (spec?.chain?.role === 'increment' ? [{ kind: d.kind, type, full: spec.chain.full }] : [])));
}

function sourceRecord(ep: Endpoint): PlanRecord['source'] {
  return { url: ep.url, host: ep.host, port: ep.port, user: ep.user, path: ep.path, params: ep.params };
}

/** What a plan's password is called in messages (an S3 bucket source's is its secret key). */
function credentialWhat(plan: Pick<PlanRecord, 'name' | 'sourceKind'>): string {
  return `${descriptorOf(plan.sourceKind)?.kind === 'bucket' ? 'S3 secret key' : 'source password'} of plan ${plan.name}`;
}

/**
 * The plan's source endpoint with its password: the copied one, or its reference read now
 * (credentials.ts storedSecret; SECRET_UNAVAILABLE when the variable or file is missing).
 */
export function planEndpoint(ctx: Pick<Context, 'env' | 'catalog'>, plan: PlanRecord): Endpoint {
  const pw = storedSecret(ctx, 'plan', plan.id, 'password', credentialWhat(plan));
  return { ...planEndpointWithout(plan), ...(pw !== undefined ? { password: pw } : {}) };
}

/** The plan's source endpoint without reading its password (it is being replaced). */
function planEndpointWithout(plan: PlanRecord): Endpoint {
  const s = plan.source as { url: string; host?: string; port?: number; user?: string; path?: string; params?: Record<string, string> };
  return { kind: plan.sourceKind as Endpoint['kind'], url: s.url, host: s.host, port: s.port, user: s.user, path: s.path, params: s.params ?? {} };
}

/**
 * The secret a plan input gives: --password-env/-file (or the S3 key flags) as a value to copy,
 * or --password-from / --secret-key-from as a reference; the two ways are exclusive (exit 2).
 */
function givenCredential(ctx: Context, i: PlanInput): GivenSecret | undefined {
  const from = i.passwordFrom !== undefined ? { flag: 'password', text: i.passwordFrom } : i.secretKeyFrom !== undefined ? { flag: 'secret-key', text: i.secretKeyFrom } : undefined;
  const copying = presentFlags([['--password-env', i.passwordEnv], ['--password-file', i.passwordFile], ['--secret-key-env', i.secretKeyEnv], ['--secret-key-file', i.secretKeyFile]]);
  if (i.passwordFrom !== undefined && i.secretKeyFrom !== undefined) {
    throw new DbsError('USAGE', '--password-from and --secret-key-from are exclusive', { hint: 'an s3 source takes --secret-key-from, a server source --password-from' });
  }
  if (from && (copying.length || i.password)) {
    throw new DbsError('USAGE', `--${from.flag}-from and ${copying.join(', ') || 'a copied secret'} are exclusive`, {
      hint: `--${from.flag}-from keeps a reference read at every run; ${copying[0] ?? '--password-env'} copies the value now: give one`,
    });
  }
  if (from) {
    const ref = parseSecretRef(from.text, { flag: from.flag, cwd: ctx.cwd });
    return { ref };
  }
  return i.password ? { value: i.password } : undefined;
}

/** The warning for a referenced file that others may read (dbs warns, does not refuse: see README). */
function fileModeWarning(g: GivenSecret | undefined): string[] {
  if (!g || !('ref' in g)) return [];
  const mode = openFileMode(g.ref);
  return mode === undefined || g.ref.from !== 'file' ? [] : [`the secret file ${g.ref.path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); make it 0600 or 0400`];
}

export function findPlanOrThrow(catalog: Catalog, ref: string): PlanRecord {
  const p = catalog.findPlan(ref);
  if (!p) throw new DbsError('PLAN_NOT_FOUND', `plan ${JSON.stringify(ref)} not found`, { hint: 'see the plans with: dbs plan list' });
  return p;
}

function resolveBasePlan(catalog: Catalog, i: PlanInput): PlanRecord | undefined {
  // A type that extends a chain needs the plan whose backups start it (before the source is
  // known: an incremental plan backs up the server of its base plan).
  const increments = incrementTypes();
  // Engines may share a type name (incremental): the source's engine, else the base plan's.
  const candidates = increments.filter((x) => x.type === i.type);
  const baseKind = i.basePlan !== undefined ? catalog.findPlan(i.basePlan)?.sourceKind : undefined;
  const kind = (i.source !== undefined ? descriptorOfUrl(i.source)?.kind : undefined) ?? baseKind;
  let inc = candidates.find((x) => x.kind === kind) ?? candidates[0];
  if (inc && i.basePlan === undefined) {
    throw new DbsError('USAGE', `--type ${inc.type} needs --base-plan PLAN`, { hint: `name the ${inc.full} plan whose full backups start the chain` });
  }
  if (i.basePlan === undefined) {
    return undefined;
  }
  if (!inc) {
    const types = [...new Set(increments.map((x) => x.type))].join(', ');
    throw new DbsError('USAGE', `--base-plan applies to --type ${types}`, { hint: `add --type ${types}` });
  }
  const base = findPlanOrThrow(catalog, i.basePlan);
  inc = candidates.find((x) => x.kind === base.sourceKind) ?? inc;
  if (base.sourceKind !== inc.kind || base.backupType !== inc.full) {
    throw new DbsError('INVALID_ARGUMENT', `the base plan ${JSON.stringify(base.name)} is a ${base.sourceKind} ${base.backupType} plan; it must be a ${inc.kind} ${inc.full} plan`, { hint: `create one with --type ${inc.full}` });
  }
  return base;
}

/** Validates a complete plan definition against the real source and pool. */
async function validatePlan(
  ctx: Context,
  d: { kind: string; type: string; endpoint: Endpoint; selection: Json; poolId: string },
): Promise<{ serverVersion: string; flavor: string }> {
  const engine = await descriptorOrThrow(d.kind).load();
  if (!engine.types.includes(d.type as BackupType)) {
    throw new DbsError('INVALID_ARGUMENT', `--type ${JSON.stringify(d.type)} is not supported for ${d.kind} sources`, { hint: `use one of: ${engine.types.join(', ')}` });
  }
  const probe = await engine.probe(d.endpoint, d.selection, { signal: ctx.signal, type: d.type as BackupType, ...egressOf(ctx) });
  if (probe.problems.length) {
    const notFound = probe.problems.every((p) => /not exist|not found|unknown|missing/i.test(p));
    throw new DbsError(notFound ? 'SOURCE_NOT_FOUND' : 'PERMISSION_DENIED', `the source ${d.endpoint.url} cannot be backed up as planned:\n  ${probe.problems.join('\n  ')}`, {
      hint: notFound ? 'check the --databases/--tables names' : 'grant the missing privileges to the backup account',
      details: { problems: probe.problems },
    });
  }
  const pool = ctx.catalog().getPool(d.poolId)!;
  const driver = await openPool(ctx, pool);
  try {
    await probePool(driver, ctx.signal);
  } finally {
    await driver.close();
  }
  return { serverVersion: probe.serverVersion, flavor: probe.flavor };
}

async function writePlanToPool(ctx: Context, plan: PlanRecord): Promise<void> {
  const pool = ctx.catalog().getPool(plan.poolId)!;
  const driver = await openPool(ctx, pool);
  try {
    await driver.put(planKey(plan.id), `${JSON.stringify({ format: 1, plan }, null, 2)}\n`, { signal: ctx.signal });
  } finally {
    await driver.close();
  }
}

/** Runs a catalog write that may lose a race for the plan name: the loser gets ALREADY_EXISTS (exit 4). */
function insertOnce<T>(name: string, write: () => T): T {
  try {
    return write();
  } catch (e) {
    if (uniqueViolation(e) === 'plans.name') {
      throw new DbsError('ALREADY_EXISTS', `a plan named ${JSON.stringify(name)} already exists`, { cause: e, hint: 'choose another name, or change it with: dbs plan update' });
    }
    throw e;
  }
}

export async function runPlanCreate(i: PlanInput, ctx: Context): Promise<{ plan: PlanView; serverVersion: string; warnings: string[] }> {
  const catalog = ctx.catalog();
  const name = validateName(i.name, 'plan');
  let given = givenCredential(ctx, i);
  const base = resolveBasePlan(catalog, i);
  if (base && !i.source) {
    // An incremental plan backs up the server of its base plan, with its password kept the same way (copy or reference).
    i.source = String(base.source.url);
    given ??= storedGiven(catalog, 'plan', base.id, 'password', credentialWhat(base));
  }
  if (base && !i.pool) i.pool = base.poolId;
  if (!i.source) throw new DbsError('USAGE', 'missing --source URL', { hint: 'e.g. --source mysql://backup@127.0.0.1:3306' });
  if (!i.pool) throw new DbsError('USAGE', 'missing --pool POOL', { hint: 'see the pools with: dbs pool list' });
  if (catalog.findPlan(name)) throw new DbsError('ALREADY_EXISTS', `a plan named ${JSON.stringify(name)} already exists`, { hint: 'choose another name, or change it with: dbs plan update' });
  const endpoint = parseEndpoint(i.source);
  // The platform's own database: a plan that backs up this catalog.
  if (descriptorOf(endpoint.kind)?.catalogSource) endpoint.path = catalog.path;
  const kind = endpoint.kind;
  const type = i.type ?? descriptorOrThrow(kind).defaultType;
  if (base && endpoint.url !== base.source.url) {
    throw new DbsError('INVALID_ARGUMENT', `an incremental plan must back up the server of its base plan (${base.source.url}), not ${endpoint.url}`, { hint: 'drop --source; it comes from --base-plan' });
  }
  checkPlanOptions(kind, type, givenPlanFlags(i));
  // An incremental plan without selection flags selects what its base plan does.
  const selection = base && !selectionFlagsGiven(i) ? planSelection(base) : parseSelection(kind, i, type);
  const pool = findPoolOrThrow(catalog, i.pool);
  const schedule: Schedule & { since?: string } = { ...(parseSchedule(i, ctx.clock()) ?? { kind: 'manual' }), since: ctx.clock().toISOString() };
  const retention = parseRetention(i) ?? {};
  const compression = (i.compress ?? ctx.settings.compression) as Compression;
  checkCompression(compression);
  if (given) endpoint.password = givenValue(ctx, given, `${credentialWhat({ name, sourceKind: kind })}`, i.secretKeyFrom !== undefined ? 'secret-key' : 'password');
  if (i.noEncrypt) throw new DbsError('USAGE', '--no-encrypt applies to plan update', { hint: 'a plan without --encrypt-to is not encrypted' });
  // An incremental plan encrypts like its base plan unless it names recipients of its own.
  const recipients = parseRecipients(ctx, i) ?? (base ? planRecipients(base) : []);
  checkEncryption(kind, type, name, recipients, Boolean(i.verifyPrepare));
  const replication = await parseReplicationInput(ctx, i, pool.id);
  const standby = parseStandby(catalog, i.standbyPool, pool.id);
  const probe = await validatePlan(ctx, { kind, type, endpoint, selection, poolId: pool.id });
  const id = newId('plan');
  const plan = insertOnce(name, () => catalog.transaction(() => {
    const p = catalog.insertPlan({
      id,
      name,
      status: 'active',
      pauseReason: '',
      sourceKind: kind,
      source: sourceRecord(endpoint),
      backupType: type,
      selection,
      poolId: pool.id,
      schedule,
      retention: retention as Record<string, unknown>,
      compression,
      options: {
        serverVersion: probe.serverVersion,
        flavor: probe.flavor,
        ...(base ? { basePlanId: base.id } : {}),
        ...(i.autoFull ? { autoFull: true } : {}),
        ...(i.verifyPrepare ? { verifyPrepare: true } : {}),
        ...(recipients.length ? { encryption: { format: 'age', recipients } } : {}),
        ...(replication ?? {}),
        ...(standby ? { standbyPoolId: standby } : {}),
      },
      remark: i.remark ?? '',
    });
    if (given) storeSecret(catalog, 'plan', id, 'password', given);
    catalog.recordEvent({ resourceKind: 'plan', resourceId: id, type: 'plan.created', level: 'info', message: `created plan ${name}` });
    return p;
  }));
  await writePlanToPool(ctx, plan);
  return { plan: planView(catalog, plan, ctx.clock()), serverVersion: probe.serverVersion, warnings: fileModeWarning(given) };
}

export interface PlanShow extends PlanView {
  nextRuns: string[];
  /** The plan's backups, without their manifests (see backup show). */
  backups: Omit<BackupRecord, 'manifest'>[];
  tasks: TaskRecord[];
}

export function runPlanShow(o: { plan: string }, ctx: Context): PlanShow {
  const catalog = ctx.catalog();
  const p = findPlanOrThrow(catalog, o.plan);
  const view = planView(catalog, p, ctx.clock());
  return {
    ...view,
    nextRuns: p.status === 'active' ? nextRuns(planSchedule(p), ctx.clock(), 3).map((d) => d.toISOString()) : [],
    backups: catalog.listBackups({ planId: p.id }).map(({ manifest: _manifest, ...b }) => b),
    tasks: catalog.listTasks({ planId: p.id, limit: 10 }),
  };
}

export async function runPlanUpdate(i: PlanInput & { plan: string; name?: string }, ctx: Context): Promise<PlanView & { warnings: string[] }> {
  const catalog = ctx.catalog();
  const cur = findPlanOrThrow(catalog, i.plan);
  const given = givenCredential(ctx, i);
  const changes: Partial<PlanRecord> = {};
  if (i.name !== undefined && i.name !== cur.name) {
    changes.name = validateName(i.name, 'plan', '--name');
    if (catalog.findPlan(i.name)) throw new DbsError('ALREADY_EXISTS', `a plan named ${JSON.stringify(i.name)} already exists`, { hint: 'choose another name' });
  }
  const what = credentialWhat(cur);
  const flag = i.secretKeyFrom !== undefined ? 'secret-key' : 'password';
  // The stored password is read only when the source is checked again and no new one replaces
  // it: a reference that cannot be read here (another shell, another host) must not block a
  // --remark or a schedule change, nor the update that fixes the reference.
  const endpoint = i.source !== undefined ? parseEndpoint(i.source) : planEndpointWithout(cur);
  if (i.source !== undefined && endpoint.kind !== cur.sourceKind) {
    throw new DbsError('INVALID_ARGUMENT', `a ${cur.sourceKind} plan cannot change its source to ${endpoint.kind}`, { hint: 'create a new plan for another kind of source' });
  }
  if (given) endpoint.password = givenValue(ctx, given, what, flag);
  checkPlanOptions(cur.sourceKind, i.type ?? cur.backupType, givenPlanFlags(i));
  const selectionGiven = selectionFlagsGiven(i);
  const selection = selectionGiven ? parseSelection(cur.sourceKind, i, i.type ?? cur.backupType) : planSelection(cur);
  const type = i.type ?? cur.backupType;
  const schedule = parseSchedule(i, ctx.clock());
  const retention = parseRetention(i);
  if (i.compress !== undefined) checkCompression(i.compress);
  let poolId = cur.poolId;
  if (i.pool !== undefined) poolId = findPoolOrThrow(catalog, i.pool).id;
  // A plan rebuilt from a pool is checked for real once, then runs on its schedule again.
  const rebuilt = cur.options.needsCredentials === true;
  if (rebuilt || i.source !== undefined || given || selectionGiven || i.type !== undefined || poolId !== cur.poolId) {
    if (!given) {
      const pw = storedSecret(ctx, 'plan', cur.id, 'password', what);
      if (pw !== undefined) endpoint.password = pw;
    }
    const probe = await validatePlan(ctx, { kind: cur.sourceKind, type, endpoint, selection, poolId });
    changes.options = { ...cur.options, serverVersion: probe.serverVersion, flavor: probe.flavor };
  }
  if (i.source !== undefined) changes.source = sourceRecord(endpoint);
  if (selectionGiven) changes.selection = selection;
  if (i.type !== undefined) changes.backupType = type;
  if (schedule) changes.schedule = { ...schedule, since: ctx.clock().toISOString() };
  if (retention) changes.retention = retention as Record<string, unknown>;
  if (i.compress !== undefined) changes.compression = i.compress;
  if (i.remark !== undefined) changes.remark = i.remark;
  if (poolId !== cur.poolId) changes.poolId = poolId;
  const replication = await parseReplicationInput(ctx, i, poolId, cur.options);
  if (i.noStandby && i.standbyPool !== undefined) throw new DbsError('USAGE', '--no-standby-pool cannot be combined with --standby-pool', { hint: 'drop one of them' });
  const standby = parseStandby(catalog, i.standbyPool, poolId);
  if (!standby && !i.noStandby && poolId !== cur.poolId && cur.options.standbyPoolId === poolId) {
    throw new DbsError('INVALID_ARGUMENT', `pool ${i.pool} is the plan's standby pool`, { hint: 'give another --standby-pool too, or --no-standby-pool' });
  }
  if (standby) changes.options = { ...(changes.options ?? cur.options), standbyPoolId: standby };
  if (i.noStandby) {
    if (cur.options.standbyPoolId === undefined) throw new DbsError('USAGE', `plan ${JSON.stringify(cur.name)} has no standby pool`, { hint: 'see the plan with: dbs plan show ' + cur.name });
    const { standbyPoolId: _s, ...rest } = changes.options ?? cur.options;
    changes.options = rest;
  }
  if (replication) {
    const next: Record<string, unknown> = { ...(changes.options ?? cur.options) };
    for (const [k, v] of Object.entries(replication)) {
      if (v === undefined) delete next[k];
      else next[k] = v;
    }
    changes.options = next;
  }
  if (i.autoFull !== undefined || i.verifyPrepare !== undefined) {
    if (i.autoFull && typeSpecOf(cur.sourceKind, cur.backupType).spec.chain?.role !== 'increment') {
      throw new DbsError('USAGE', `--auto-full applies to ${incrementTypes().map((x) => x.type).join(', ')} plans`, { hint: 'drop it' });
    }
    changes.options = { ...(changes.options ?? cur.options), ...(i.autoFull !== undefined ? { autoFull: i.autoFull } : {}), ...(i.verifyPrepare !== undefined ? { verifyPrepare: i.verifyPrepare } : {}) };
  }
  const recipients = parseRecipients(ctx, i);
  if (recipients !== undefined || i.noEncrypt) {
    const next = recipients ?? [];
    const verifyPrepare = i.verifyPrepare ?? Boolean((changes.options ?? cur.options).verifyPrepare);
    checkEncryption(cur.sourceKind, i.type ?? cur.backupType, cur.name, next, verifyPrepare);
    const { encryption: _old, ...rest } = changes.options ?? cur.options;
    changes.options = { ...rest, ...(next.length ? { encryption: { format: 'age', recipients: next } } : {}) };
  } else if (i.verifyPrepare) checkEncryption(cur.sourceKind, i.type ?? cur.backupType, cur.name, planRecipients(cur), true);
  if (rebuilt) {
    const { needsCredentials: _n, ...rest } = changes.options ?? cur.options;
    changes.options = rest;
    if (cur.status === 'paused' && cur.pauseReason === 'needs credentials') {
      changes.status = 'active';
      changes.pauseReason = '';
    }
  }
  if (Object.keys(changes).length === 0 && !given) {
    throw new DbsError('USAGE', `nothing to update for plan ${JSON.stringify(cur.name)}`, { hint: 'pass the options to change, see: dbs plan update --help' });
  }
  const updated = insertOnce(changes.name ?? cur.name, () => catalog.transaction(() => {
    const u = catalog.updatePlan(cur.id, changes);
    if (given) storeSecret(catalog, 'plan', cur.id, 'password', given);
    const secretChange = given ? ('ref' in given ? 'password (now read from a reference at each use)' : 'password (copied)') : undefined;
    catalog.recordEvent({ resourceKind: 'plan', resourceId: cur.id, type: 'plan.updated', level: 'info', message: `updated ${[...Object.keys(changes), ...(secretChange ? [secretChange] : [])].join(', ')}` });
    return u;
  }));
  await writePlanToPool(ctx, updated);
  return { ...planView(catalog, updated, ctx.clock()), warnings: fileModeWarning(given) };
}

export interface PlanDeleteResult {
  plan: { id: string; name: string };
  deletedBackups: string[];
}

export async function runPlanDelete(o: { plan: string; withBackups?: boolean }, ctx: Context): Promise<PlanDeleteResult> {
  const catalog = ctx.catalog();
  const p = findPlanOrThrow(catalog, o.plan);
  const incrementals = catalog.listPlans().filter((x) => x.options.basePlanId === p.id);
  if (incrementals.length) {
    throw new DbsError('IN_USE', `plan ${JSON.stringify(p.name)} is the base plan of ${incrementals.map((x) => x.name).join(', ')}`, { hint: 'delete the incremental plans first' });
  }
  const backups = catalog.listBackups({ planId: p.id });
  if (backups.length && !o.withBackups) {
    throw new DbsError('REFUSED', `plan ${JSON.stringify(p.name)} still has ${backups.length} backup(s)`, {
      hint: 'delete them first, or pass --with-backups to delete them with the plan',
    });
  }
  const { acquire, leaseOf } = await import('./locks.js');
  const lock = acquire(catalog, `plan:${p.id}`, 'plan delete', `plan ${JSON.stringify(p.name)}`, leaseOf(ctx));
  try {
    const { deleteBackupData } = await import('./backups.js');
    const deleted: string[] = [];
    // Newest first: an incremental goes before the backup it builds on.
    for (const b of backups) {
      await deleteBackupData(ctx, b);
      deleted.push(b.id);
      ctx.report({ type: 'backup.deleted', backup: b.id });
    }
    const pool = catalog.getPool(p.poolId);
    if (pool) {
      const driver = await openPool(ctx, pool);
      try {
        await driver.delete(planKey(p.id), { signal: ctx.signal });
      } finally {
        await driver.close();
      }
    }
    // Its plan file in its standby and replica pools too (or a catalog rebuild would bring it back); best effort.
    const others = [planStandby(p), ...planReplication(p).pools].filter((x): x is string => Boolean(x) && x !== p.poolId);
    for (const id of others) {
      const other = catalog.getPool(id);
      if (!other) continue;
      try {
        const driver = await openPool(ctx, other);
        try {
          await driver.delete(planKey(p.id), { signal: ctx.signal });
        } finally {
          await driver.close();
        }
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        catalog.recordEvent({ resourceKind: 'plan', resourceId: p.id, type: 'plan.file-left', level: 'warning', message: `could not delete the plan file of ${p.name} in pool ${other.name}: ${e instanceof Error ? e.message : String(e)}` });
      }
    }
    catalog.transaction(() => {
      catalog.deletePlan(p.id);
      catalog.recordEvent({ resourceKind: 'plan', resourceId: p.id, type: 'plan.deleted', level: 'info', message: `deleted plan ${p.name}` });
    });
    return { plan: { id: p.id, name: p.name }, deletedBackups: deleted };
  } finally {
    lock.release();
  }
}
