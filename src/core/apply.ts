// Configuration as code: `dbs apply -f dbs.yaml` and `dbs export`. One YAML file holds the
// gateway, pools, plans and alerts. The whole file is checked first, with the same
// core parsers `plan create`, `pool bind` and `gateway create` use, every problem at once
// (`plans[2].schedule.at: ...`), exit 2, nothing written. Then each object is compared with the
// catalog in one normal form (the form `export` writes): unchanged objects are not touched; a
// new one goes through runPoolBind/runGatewayCreate/runPlanCreate, a changed one through the
// update use case with only the changed fields, so every check of those commands (probes of
// the source and the pool included) applies. Objects the file does not name are left alone.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { descriptorOrThrow } from '../engines/registry.js';
import type { AlertRecord, Catalog, PlanRecord, PoolRecord } from '../store/catalog.js';
import { createAlert, deleteAlert, updateAlert, validateAlertSpec, type AlertPatch, type AlertSpec } from './alerts.js';
import { parseSecretRef, refText, secretMode } from './credentials.js';
import { parseEndpoint } from './endpoints.js';
import { parseAddress } from './gateway.js';
import { validateName } from './names.js';
import { checkPlanOptions, typeSpecOf } from './applicable.js';
import { checkCompression, givenPlanFlags, parseRecipients, parseRetention, parseSelection, planRecipients, planSelection, type PlanInput } from './plans.js';
import { checkPoolBind, poolConfig } from './pools.js';
import { planReplication } from './copies.js';
import { parseRate } from './rate.js';
import { parseSchedule, parseTime, planSchedule, type Schedule } from './schedule.js';

type Obj = Record<string, unknown>;

/** A secret in the file: only a reference. */
export interface SecretRefSpec {
  from: string;
}

export interface GatewaySpec {
  ip: string;
  bandwidth?: string;
}

export interface PoolSpec {
  name: string;
  type: string;
  path?: string;
  endpoint?: string;
  bucket?: string;
  prefix?: string;
  region?: string;
  accessKey?: string;
  secretKey?: SecretRefSpec;
  pathStyle?: boolean;
  remark?: string;
}

export interface ScheduleSpec {
  cron?: string;
  every?: string;
  at?: string;
  days?: string[];
  once?: string;
  start?: string;
  tz?: string;
}

export interface RetentionSpec {
  keepDays?: number;
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepForever?: boolean;
}

export interface PlanSpec {
  name: string;
  source?: string;
  pool?: string;
  type?: string;
  databases?: string[];
  allDatabases?: boolean;
  tables?: string[];
  match?: string;
  include?: string[];
  exclude?: string[];
  oneFileSystem?: boolean;
  skipUnreadable?: boolean;
  endpoint?: string;
  region?: string;
  accessKey?: string;
  password?: SecretRefSpec;
  secretKey?: SecretRefSpec;
  /** "manual", or one of cron / every (+ at, days) / once, with tz and start. */
  schedule?: 'manual' | ScheduleSpec;
  retention?: RetentionSpec;
  compress?: string;
  encryptTo?: string[];
  standbyPool?: string;
  replicateTo?: string[];
  remoteRetention?: Pick<RetentionSpec, 'keepDays' | 'keepLast' | 'keepForever'>;
  basePlan?: string;
  autoFull?: boolean;
  verifyPrepare?: boolean;
  remark?: string;
}

/** An alert in the file: the options of `dbs alert create` in camelCase (on/notify as lists). */
export interface AlertFileSpec {
  name: string;
  plan?: string;
  allPlans?: boolean;
  on: string[];
  notify: string[];
  secret?: SecretRefSpec;
  remark?: string;
}

export interface ConfigFile {
  version?: 1;
  gateway?: GatewaySpec;
  pools?: PoolSpec[];
  plans?: PlanSpec[];
  alerts?: AlertFileSpec[];
}

// ---- the schema: keys and their kinds ---------------------------------------------------

type Kind = 'string' | 'boolean' | 'int' | 'strings' | 'ref' | 'schedule' | 'retention' | 'remoteRetention';

const GATEWAY_KEYS: Record<string, Kind> = { ip: 'string', bandwidth: 'string' };
const POOL_KEYS: Record<string, Kind> = { name: 'string', type: 'string', path: 'string', endpoint: 'string', bucket: 'string', prefix: 'string', region: 'string', accessKey: 'string', secretKey: 'ref', pathStyle: 'boolean', remark: 'string' };
const SELECTION_KEYS = ['databases', 'allDatabases', 'tables', 'match', 'include', 'exclude', 'oneFileSystem', 'skipUnreadable', 'endpoint', 'region', 'accessKey'] as const;
const PLAN_KEYS: Record<string, Kind> = {
  name: 'string',
  source: 'string',
  pool: 'string',
  type: 'string',
  databases: 'strings',
  allDatabases: 'boolean',
  tables: 'strings',
  match: 'string',
  include: 'strings',
  exclude: 'strings',
  oneFileSystem: 'boolean',
  skipUnreadable: 'boolean',
  endpoint: 'string',
  region: 'string',
  accessKey: 'string',
  password: 'ref',
  secretKey: 'ref',
  schedule: 'schedule',
  retention: 'retention',
  compress: 'string',
  encryptTo: 'strings',
  standbyPool: 'string',
  replicateTo: 'strings',
  remoteRetention: 'remoteRetention',
  basePlan: 'string',
  autoFull: 'boolean',
  verifyPrepare: 'boolean',
  remark: 'string',
};
const SCHEDULE_KEYS: Record<string, Kind> = { cron: 'string', every: 'string', at: 'string', days: 'strings', once: 'string', start: 'string', tz: 'string' };
const RETENTION_KEYS: Record<string, Kind> = { keepDays: 'int', keepLast: 'int', keepDaily: 'int', keepWeekly: 'int', keepMonthly: 'int', keepForever: 'boolean' };
const REMOTE_KEYS: Record<string, Kind> = { keepDays: 'int', keepLast: 'int', keepForever: 'boolean' };
const ALERT_KEYS: Record<string, Kind> = { name: 'string', plan: 'string', allPlans: 'boolean', on: 'strings', notify: 'strings', secret: 'ref', remark: 'string' };

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks an object's keys and their kinds; returns the object with only its good keys. */
function checkShape(v: unknown, keys: Record<string, Kind>, path: string, problems: string[]): Obj | undefined {
  if (!isObj(v)) {
    problems.push(`${path}: must be a mapping (key: value)`);
    return undefined;
  }
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    const kind = keys[k];
    const at = `${path}.${k}`;
    if (!kind) {
      problems.push(`${at}: unknown key (known: ${Object.keys(keys).join(', ')})`);
      continue;
    }
    if (x === null || x === undefined) continue;
    const bad = (what: string) => problems.push(`${at}: must be ${what} (got ${JSON.stringify(x)})`);
    switch (kind) {
      case 'string':
        if (typeof x === 'string' || typeof x === 'number') out[k] = String(x);
        else bad('a string');
        break;
      case 'boolean':
        if (typeof x === 'boolean') out[k] = x;
        else bad('true or false');
        break;
      case 'int':
        if (typeof x === 'number' || typeof x === 'string') out[k] = x;
        else bad('a whole number');
        break;
      case 'strings':
        if (typeof x === 'string') out[k] = x.split(',').map((s) => s.trim()).filter(Boolean);
        else if (Array.isArray(x) && x.every((y) => typeof y === 'string' || typeof y === 'number')) out[k] = x.map(String);
        else bad('a list of strings');
        break;
      case 'ref':
        // A secret is only ever a reference: a literal value is refused (never echoed).
        if (isObj(x) && typeof x.from === 'string' && Object.keys(x).length === 1) out[k] = { from: x.from };
        else if (isObj(x) && 'from' in x) problems.push(`${at}: must be {from: "env:VAR"} or {from: "file:PATH"} and nothing else`);
        else problems.push(`${at}: a literal secret is refused: the file holds secrets only as references, e.g. ${k}: {from: "env:VAR"} or {from: "file:/run/secrets/x"}`);
        break;
      case 'schedule':
        if (x === 'manual') out[k] = 'manual';
        else {
          const s = checkShape(x, SCHEDULE_KEYS, at, problems);
          if (s) out[k] = s;
        }
        break;
      case 'retention':
      case 'remoteRetention': {
        const s = checkShape(x, kind === 'retention' ? RETENTION_KEYS : REMOTE_KEYS, at, problems);
        if (s) out[k] = s;
        break;
      }
    }
  }
  return out;
}

/** Runs one core check; a DbsError becomes a problem at `path` (core names flags: the path names the field). */
function attempt<T>(path: string, problems: string[], f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof DbsError)) throw e;
    problems.push(`${path}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
    return undefined;
  }
}

// ---- normal forms: what export writes, what apply compares ------------------------------

function scheduleFlags(s: PlanSpec['schedule']): PlanInput {
  if (s === undefined) return {};
  if (s === 'manual') return { manual: true };
  return { cron: s.cron, every: s.every, at: s.at, days: s.days?.join(','), once: s.once, start: s.start, tz: s.tz };
}

function scheduleSpec(s: Schedule): PlanSpec['schedule'] {
  switch (s.kind) {
    case 'manual':
      return 'manual';
    case 'cron':
      return { cron: s.expr, tz: s.tz, ...(s.start ? { start: s.start } : {}) };
    case 'every':
      return { every: s.every, at: s.at, ...(s.days ? { days: s.days } : {}), tz: s.tz, ...(s.start ? { start: s.start } : {}) };
    case 'once':
      return { once: s.at, tz: s.tz };
  }
}

/** A stored retention as the file writes it; none (no rule) is left out. */
function retentionSpec(r: Record<string, unknown> | undefined): RetentionSpec | undefined {
  const out: RetentionSpec = {};
  for (const k of Object.keys(RETENTION_KEYS) as (keyof RetentionSpec)[]) if (r?.[k] !== undefined && r[k] !== false) (out as Obj)[k] = r[k];
  return Object.keys(out).length ? out : undefined;
}

/** No rule and keep-forever are the same retention: compared as the same. */
function sameRetention(a: unknown, b: unknown): boolean {
  const norm = (x: unknown) => (x === undefined || isDeepStrictEqual(x, { keepForever: true }) ? undefined : x);
  return isDeepStrictEqual(norm(a), norm(b));
}

/** The flags of a plan spec, as `plan create` takes them. */
export function planFlags(s: PlanSpec, cwd: string): PlanInput {
  return {
    name: s.name,
    source: s.source,
    pool: s.pool,
    type: s.type,
    databases: s.databases?.join(','),
    allDatabases: s.allDatabases,
    tables: s.tables?.join(','),
    match: s.match,
    include: s.include,
    exclude: s.exclude,
    oneFileSystem: s.oneFileSystem,
    skipUnreadable: s.skipUnreadable,
    endpoint: s.endpoint,
    region: s.region,
    accessKey: s.accessKey,
    passwordFrom: s.password ? refText(parseSecretRef(s.password.from, { flag: 'password', cwd })) : undefined,
    secretKeyFrom: s.secretKey ? refText(parseSecretRef(s.secretKey.from, { flag: 'secret-key', cwd })) : undefined,
    ...scheduleFlags(s.schedule),
    ...(s.retention ?? {}),
    compress: s.compress,
    encryptTo: s.encryptTo,
    standbyPool: s.standbyPool,
    replicateTo: s.replicateTo,
    remoteKeepDays: s.remoteRetention?.keepDays,
    remoteKeepLast: s.remoteRetention?.keepLast,
    remoteKeepForever: s.remoteRetention?.keepForever,
    basePlan: s.basePlan,
    autoFull: s.autoFull,
    verifyPrepare: s.verifyPrepare,
    remark: s.remark,
  } as PlanInput;
}

/** A stored selection as spec keys: only keys the plan's type takes (its descriptor's plan options). */
function selectionSpec(kind: string, type: string, sel: Obj): Partial<PlanSpec> {
  const takes = new Set<string>(typeSpecOf(kind, type).spec.planOptions);
  const out: Obj = {};
  const list = (k: string) => (Array.isArray(sel[k]) && (sel[k] as unknown[]).length ? (sel[k] as string[]) : undefined);
  if (takes.has('--databases') && list('databases')) out.databases = list('databases');
  if (takes.has('--tables') && list('tables')) out.tables = list('tables');
  if (takes.has('--all-databases') && sel.all === true && !list('databases') && !list('tables') && descriptorOrThrow(kind).asksSelection) out.allDatabases = true;
  if (takes.has('--match') && typeof sel.match === 'string') out.match = sel.match;
  if (takes.has('--include') && list('include')) out.include = list('include');
  if (takes.has('--exclude') && list('exclude')) out.exclude = list('exclude');
  if (takes.has('--one-file-system') && sel.oneFileSystem === true) out.oneFileSystem = true;
  if (takes.has('--skip-unreadable') && sel.skipUnreadable === true) out.skipUnreadable = true;
  for (const k of ['endpoint', 'region', 'accessKey']) if (typeof sel[k] === 'string') out[k] = sel[k];
  return out as Partial<PlanSpec>;
}

function poolName(catalog: Catalog, id: unknown): string | undefined {
  return typeof id === 'string' ? (catalog.getPool(id)?.name ?? id) : undefined;
}

/** A plan of the catalog in the file's form; `notes` say what the file cannot hold (a copied secret). */
export function planSpecOf(catalog: Catalog, p: PlanRecord): { spec: PlanSpec; notes: string[] } {
  const notes: string[] = [];
  const repl = planReplication(p);
  const mode = secretMode(catalog, 'plan', p.id, 'password');
  const secretKey = descriptorOrThrow(p.sourceKind).kind === 'bucket' ? 'secretKey' : 'password';
  if (mode?.mode === 'copy') notes.push(`plan ${p.name}: its ${secretKey === 'secretKey' ? 'S3 secret key' : 'password'} was copied into the catalog and is not exported; supply it as a reference: ${secretKey}: {from: "env:VAR"} or {from: "file:PATH"}`);
  const base = typeof p.options.basePlanId === 'string' ? catalog.getPlan(p.options.basePlanId)?.name : undefined;
  const selection = selectionSpec(p.sourceKind, p.backupType, planSelection(p) as Obj);
  // The selection must come back the same from the file (an engine whose selection holds more than its flags say).
  try {
    if (!isDeepStrictEqual(parseSelection(p.sourceKind, planFlags({ name: p.name, ...selection }, '/'), p.backupType), planSelection(p))) throw new Error('differs');
  } catch {
    notes.push(`plan ${p.name}: its selection ${JSON.stringify(planSelection(p))} cannot be written exactly in the file; check the exported selection keys`);
  }
  const spec: PlanSpec = {
    name: p.name,
    source: String(p.source.url),
    pool: poolName(catalog, p.poolId),
    type: p.backupType,
    ...(base ? { basePlan: base } : {}),
    ...selection,
    ...(mode?.mode === 'reference' ? { [secretKey]: { from: mode.from } } : {}),
    schedule: scheduleSpec(planSchedule(p)),
    retention: retentionSpec(p.retention),
    compress: p.compression,
    ...(planRecipients(p).length ? { encryptTo: planRecipients(p) } : {}),
    ...(typeof p.options.standbyPoolId === 'string' ? { standbyPool: poolName(catalog, p.options.standbyPoolId) } : {}),
    ...(repl.pools.length ? { replicateTo: repl.pools.map((id) => poolName(catalog, id)!), remoteRetention: retentionSpec(repl.retention as Obj) } : {}),
    ...(p.options.autoFull === true ? { autoFull: true } : {}),
    ...(p.options.verifyPrepare === true ? { verifyPrepare: true } : {}),
    ...(p.remark ? { remark: p.remark } : {}),
  };
  return { spec, notes };
}

export function poolSpecOf(catalog: Catalog, p: PoolRecord): PoolSpec {
  const mode = secretMode(catalog, 'pool', p.id, 'secretKey');
  return {
    name: p.name,
    type: p.type,
    ...(poolConfig(p) as Partial<PoolSpec>),
    ...(mode?.mode === 'reference' ? { secretKey: { from: mode.from } } : {}),
    ...(p.remark ? { remark: p.remark } : {}),
  };
}

// ---- reading and checking a file -------------------------------------------------------

export interface ParsedFile {
  gateway?: GatewaySpec;
  pools: PoolSpec[];
  plans: PlanSpec[];
  /** Normal form: plan by name, rules and targets trimmed, the secret reference absolute. */
  alerts: AlertFileSpec[];
}

/** Parses the YAML text and checks every object: all problems at once (INVALID_CONFIG, exit 2). */
export async function parseConfigFile(text: string, where: string, ctx: Context, baseDir: string): Promise<{ file: ParsedFile; normal: Map<PlanSpec, PlanSpec> }> {
  const { parseDocument } = await import('yaml');
  const problems: string[] = [];
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  for (const e of doc.errors) problems.push(`${where}: ${e.message.split('\n')[0]}`);
  if (problems.length) throw invalidFile(where, problems);
  const top = doc.toJS() as unknown;
  const file: ParsedFile = { pools: [], plans: [], alerts: [] };
  if (top === null || top === undefined) throw invalidFile(where, [`${where}: the file is empty`]);
  if (!isObj(top)) throw invalidFile(where, [`${where}: the file must be a mapping with gateway, pools, plans`]);
  for (const k of Object.keys(top)) {
    if (!['version', 'gateway', 'pools', 'plans', 'alerts'].includes(k)) problems.push(`${k}: unknown key (known: version, gateway, pools, plans, alerts)`);
  }
  if (top.version !== undefined && top.version !== 1) problems.push(`version: must be 1 (got ${JSON.stringify(top.version)})`);
  const catalog = ctx.catalog();

  if (top.gateway !== undefined && top.gateway !== null) {
    const g = checkShape(top.gateway, GATEWAY_KEYS, 'gateway', problems);
    if (g) {
      const ip = g.ip;
      const bandwidth = typeof g.bandwidth === 'string' ? g.bandwidth : undefined;
      if (typeof ip !== 'string') problems.push('gateway.ip: missing (an IPv4 or IPv6 address of this host)');
      else {
        attempt('gateway.ip', problems, () => parseAddress(ip));
        file.gateway = { ip, ...(bandwidth !== undefined ? { bandwidth } : {}) };
      }
      if (bandwidth !== undefined) attempt('gateway.bandwidth', problems, () => parseRate(bandwidth));
    }
  }

  const list = (key: 'pools' | 'plans' | 'alerts'): unknown[] => {
    const v = top[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      problems.push(`${key}: must be a list`);
      return [];
    }
    return v;
  };

  const poolNames = new Set<string>();
  list('pools').forEach((raw, n) => {
    const path = `pools[${n}]`;
    const p = checkShape(raw, POOL_KEYS, path, problems) as PoolSpec | undefined;
    if (!p) return;
    if (typeof p.name !== 'string') return void problems.push(`${path}.name: missing`);
    if (poolNames.has(p.name)) problems.push(`${path}.name: pool ${JSON.stringify(p.name)} is named twice`);
    poolNames.add(p.name);
    if (typeof p.type !== 'string') return void problems.push(`${path}.type: missing (local or s3)`);
    if (p.secretKey) attempt(`${path}.secretKey`, problems, () => parseSecretRef(p.secretKey!.from, { flag: 'secret-key', cwd: baseDir }));
    const checked = attempt(path, problems, () => checkPoolBind({ ...p, secretKey: undefined, secretKeyFrom: p.secretKey?.from, hasSecretKey: Boolean(p.secretKey) } as never));
    const cur = catalog.findPool(p.name);
    if (checked && cur) {
      // A bound pool's location is fixed: apply changes only what `pool update` can.
      const want = { ...checked.config };
      const have = { ...poolConfig(cur) };
      delete want.accessKey;
      delete have.accessKey;
      if (checked.type !== cur.type || !isDeepStrictEqual(want, have)) {
        problems.push(`${path}: pool ${p.name} is bound at another location (${JSON.stringify({ type: cur.type, ...have })}); apply changes only its remark and credentials (bind a new pool, or unbind this one first)`);
      }
    }
    file.pools.push(p);
  });

  const normal = new Map<PlanSpec, PlanSpec>();
  const planNames = new Set<string>();
  const knownPool = (name: string) => poolNames.has(name) || catalog.findPool(name) !== undefined;
  list('plans').forEach((raw, n) => {
    const path = `plans[${n}]`;
    const s = checkShape(raw, PLAN_KEYS, path, problems) as PlanSpec | undefined;
    if (!s) return;
    if (typeof s.name !== 'string') return void problems.push(`${path}.name: missing`);
    attempt(`${path}.name`, problems, () => validateName(s.name, 'plan'));
    if (planNames.has(s.name)) problems.push(`${path}.name: plan ${JSON.stringify(s.name)} is named twice`);
    planNames.add(s.name);
    const before = problems.length;
    for (const k of ['pool', 'standbyPool'] as const) {
      const v = s[k];
      if (v !== undefined && !knownPool(v)) problems.push(`${path}.${k}: pool ${JSON.stringify(v)} is neither in the file nor bound (see: dbs pool list)`);
    }
    (s.replicateTo ?? []).forEach((v, j) => {
      if (!knownPool(v)) problems.push(`${path}.replicateTo[${j}]: pool ${JSON.stringify(v)} is neither in the file nor bound`);
    });
    if (s.basePlan !== undefined && !planNames.has(s.basePlan) && !catalog.findPlan(s.basePlan)) problems.push(`${path}.basePlan: plan ${JSON.stringify(s.basePlan)} is neither earlier in the file nor in the catalog`);
    const cur = catalog.findPlan(s.name);
    if (!s.source && !s.basePlan && !cur) problems.push(`${path}.source: missing (e.g. mysql://backup@db1:3306)`);
    if (!s.pool && !s.basePlan && !cur) problems.push(`${path}.pool: missing (a pool name)`);
    if (s.password) attempt(`${path}.password`, problems, () => parseSecretRef(s.password!.from, { flag: 'password', cwd: baseDir }));
    if (s.secretKey) attempt(`${path}.secretKey`, problems, () => parseSecretRef(s.secretKey!.from, { flag: 'secret-key', cwd: baseDir }));
    // An incremental plan backs up the source of its base plan (earlier in the file, or in the catalog).
    const baseSource = s.basePlan === undefined ? undefined : ([...normal.values()].find((x) => x.name === s.basePlan)?.source ?? catalog.findPlan(s.basePlan)?.source.url);
    const source = s.source ?? (cur ? String(cur.source.url) : baseSource !== undefined ? String(baseSource) : undefined);
    // user:password@ in the URL is a literal secret (parseEndpoint refuses it too, with the flags' hint).
    const literal = source !== undefined && /^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(source);
    if (literal) problems.push(`${path}.source: the URL must not contain a password (a literal secret): give it as a reference, password: {from: "env:VAR"} or {from: "file:PATH"}`);
    const ep = source !== undefined && !literal ? attempt(`${path}.source`, problems, () => parseEndpoint(source, 'source')) : undefined;
    if (cur && ep && ep.kind !== cur.sourceKind) problems.push(`${path}.source: plan ${s.name} is a ${cur.sourceKind} plan; it cannot change to a ${ep.kind} source (create a new plan)`);
    if (cur && s.basePlan !== undefined && catalog.getPlan(String(cur.options.basePlanId))?.name !== s.basePlan) problems.push(`${path}.basePlan: the base plan of an existing plan cannot change`);
    if (!ep) return;
    const kind = ep.kind;
    const type = s.type ?? (cur ? cur.backupType : descriptorOrThrow(kind).defaultType);
    if (!attempt(`${path}.type`, problems, () => typeSpecOf(kind, type))) return;
    let flags: PlanInput;
    try {
      flags = planFlags(s, baseDir);
    } catch {
      return; // a bad reference, reported above
    }
    // The selection is parsed only with options the type takes (one problem for one mistake).
    const fits = attempt(path, problems, () => (checkPlanOptions(kind, type, givenPlanFlags(flags)), true));
    const sel = fits ? attempt(`${path} (selection)`, problems, () => parseSelection(kind, flags, type)) : undefined;
    // A run-once plan whose time has come stays as it is: re-applying its file is no error.
    const keptOnce = cur !== undefined && flags.once !== undefined && sameOnce(planSchedule(cur), flags.once, flags.tz);
    const sched = keptOnce ? stripSince(planSchedule(cur)) : attempt(`${path}.schedule`, problems, () => parseSchedule(flags, ctx.clock()));
    const ret = attempt(`${path}.retention`, problems, () => parseRetention(flags));
    if (s.remoteRetention && !s.replicateTo?.length) problems.push(`${path}.remoteRetention: applies to plans with replicateTo`);
    const remote = attempt(`${path}.remoteRetention`, problems, () => parseRetention({ keepDays: flags.remoteKeepDays, keepLast: flags.remoteKeepLast, keepForever: flags.remoteKeepForever }, '--remote-'));
    if (s.compress !== undefined) attempt(`${path}.compress`, problems, () => checkCompression(s.compress!));
    const recipients = attempt(`${path}.encryptTo`, problems, () => parseRecipients({ cwd: baseDir }, flags));
    if (problems.length > before || sel === undefined) return;
    // The normal form: what export would write for this plan once applied.
    const norm: PlanSpec = {
      name: s.name,
      source: descriptorOrThrow(kind).catalogSource ? source : ep.url,
      pool: s.pool ?? (cur ? poolName(catalog, cur.poolId) : undefined),
      type,
      ...(s.basePlan ? { basePlan: s.basePlan } : {}),
      ...selectionSpec(kind, type, sel as Obj),
      ...(flags.passwordFrom ? { password: { from: flags.passwordFrom } } : {}),
      ...(flags.secretKeyFrom ? { secretKey: { from: flags.secretKeyFrom } } : {}),
      schedule: scheduleSpec(sched ?? { kind: 'manual' }),
      retention: retentionSpec(ret as Obj | undefined),
      compress: s.compress ?? ctx.settings.compression,
      ...(recipients?.length ? { encryptTo: recipients } : {}),
      ...(s.standbyPool ? { standbyPool: s.standbyPool } : {}),
      ...(s.replicateTo?.length ? { replicateTo: [...new Set(s.replicateTo)], remoteRetention: retentionSpec(remote as Obj | undefined) } : {}),
      ...(s.autoFull ? { autoFull: true } : {}),
      ...(s.verifyPrepare ? { verifyPrepare: true } : {}),
      ...(s.remark ? { remark: s.remark } : {}),
    };
    // An incremental plan without source/pool takes its base plan's: not compared.
    if (!s.source && s.basePlan) delete norm.source;
    if (!s.pool && s.basePlan) delete norm.pool;
    normal.set(s, norm);
    file.plans.push(s);
  });

  // Alerts: checked by core/alerts.ts's own validateAlertSpec; their plans may be in this file.
  const alertNames = new Set<string>();
  const filePlans = new Set(file.plans.map((p) => p.name));
  list('alerts').forEach((raw, n) => {
    const path = `alerts[${n}]`;
    const a = checkShape(raw, ALERT_KEYS, path, problems) as Partial<AlertFileSpec> | undefined;
    if (!a) return;
    if (typeof a.name !== 'string') return void problems.push(`${path}.name: missing`);
    if (alertNames.has(a.name)) problems.push(`${path}.name: alert ${JSON.stringify(a.name)} is named twice`);
    alertNames.add(a.name);
    const spec: AlertSpec = { name: a.name, plan: a.plan, allPlans: a.allPlans, rules: a.on ?? [], targets: a.notify ?? [], secretFrom: a.secret?.from, remark: a.remark };
    for (const p of validateAlertSpec(spec, { cwd: baseDir, hasSmtp: Boolean(ctx.settings.smtp) })) problems.push(`${path}: ${p}`);
    if (a.plan !== undefined && !filePlans.has(a.plan) && !catalog.findPlan(a.plan)) problems.push(`${path}.plan: plan ${JSON.stringify(a.plan)} is neither in the file nor in the catalog`);
    const planName = a.plan === undefined ? undefined : (catalog.findPlan(a.plan)?.name ?? a.plan);
    let secret: SecretRefSpec | undefined;
    if (a.secret) {
      const ref = attempt(`${path}.secret`, problems, () => parseSecretRef(a.secret!.from, { flag: 'secret', cwd: baseDir }));
      if (ref) secret = { from: refText(ref) };
    }
    file.alerts.push({
      name: a.name,
      ...(planName !== undefined ? { plan: planName } : { allPlans: true }),
      on: (a.on ?? []).map((x) => x.trim()),
      notify: (a.notify ?? []).map((x) => x.trim()),
      ...(secret ? { secret } : {}),
      ...(a.remark ? { remark: a.remark } : {}),
    });
  });
  if (problems.length) throw invalidFile(where, problems);
  return { file, normal };
}

function sameOnce(s: Schedule, once: string, tz: string | undefined): boolean {
  if (s.kind !== 'once' || (tz !== undefined && tz !== s.tz)) return false;
  try {
    return parseTime(once, '--once').toISOString() === new Date(s.at).toISOString();
  } catch {
    return false;
  }
}

function stripSince(s: Schedule & { since?: string }): Schedule {
  const { since: _s, ...rest } = s;
  return rest as Schedule;
}

function invalidFile(where: string, problems: string[]): DbsError {
  return new DbsError('INVALID_CONFIG', `${where} is not valid (${problems.length} problem${problems.length > 1 ? 's' : ''}); nothing was changed:\n  ${problems.join('\n  ')}`, {
    hint: 'fix the problems listed above (see README "Configuration as code")',
    details: { problems },
  });
}

// ---- comparing and applying ------------------------------------------------------------

export interface FieldChange {
  field: string;
  from?: unknown;
  to?: unknown;
}

export interface Change {
  kind: 'gateway' | 'pool' | 'plan' | 'alert';
  name: string;
  /** delete: --prune only (a plan deleted, a pool unbound: its data stays). */
  action: 'create' | 'update' | 'unchanged' | 'delete';
  fields: FieldChange[];
}

export interface ApplyResult {
  file: string;
  dryRun: boolean;
  changes: Change[];
  /** Objects of the catalog the file does not name: left as they are. */
  untouched: { kind: 'pool' | 'plan' | 'alert'; name: string }[];
  warnings: string[];
}

/** The keys whose values differ (a key the file leaves out of `want` is not compared when `partial`). */
function diff(haveSpec: object, wantSpec: object, skipMissing: readonly string[] = []): FieldChange[] {
  const have: Obj = Object.fromEntries(Object.entries(haveSpec));
  const want: Obj = Object.fromEntries(Object.entries(wantSpec));
  const keys = [...new Set([...Object.keys(want), ...Object.keys(have)])];
  return keys
    .filter((k) => !(skipMissing.includes(k) && want[k] === undefined))
    .filter((k) => !(k === 'retention' || k === 'remoteRetention' ? sameRetention(have[k], want[k]) : isDeepStrictEqual(have[k], want[k])))
    .map((k) => ({ field: k, ...(have[k] !== undefined ? { from: have[k] } : {}), ...(want[k] !== undefined ? { to: want[k] } : {}) }));
}

/** to[k] = from[k], typed. */
function copyKey<T, K extends keyof T>(to: T, from: T, k: K): void {
  to[k] = from[k];
}

/** The `plan update` input that makes exactly these changes. */
function planUpdateInput(want: PlanSpec, fields: FieldChange[], cwd: string): PlanInput & { plan: string } {
  const f = planFlags(want, cwd);
  const changed = new Set(fields.map((c) => c.field));
  const i: PlanInput & { plan: string } = { plan: want.name };
  if (changed.has('source')) i.source = f.source;
  if (changed.has('pool')) i.pool = f.pool;
  if (changed.has('type')) i.type = f.type;
  if (SELECTION_KEYS.some((k) => changed.has(k)) || changed.has('type')) {
    for (const k of SELECTION_KEYS) copyKey(i, f, k);
    // The whole selection is given again, also when the file removed its last key: an empty
    // glob list is a given selection flag that applies to no option check (givenPlanFlags).
    i.include ??= [];
    i.exclude ??= [];
  }
  if (changed.has('password')) i.passwordFrom = f.passwordFrom;
  if (changed.has('secretKey')) i.secretKeyFrom = f.secretKeyFrom;
  if (changed.has('schedule')) Object.assign(i, scheduleFlags(want.schedule));
  if (changed.has('retention')) Object.assign(i, want.retention ?? { keepForever: true });
  if (changed.has('compress')) i.compress = want.compress;
  if (changed.has('encryptTo')) {
    if (want.encryptTo?.length) i.encryptTo = want.encryptTo;
    else i.noEncrypt = true;
  }
  if (changed.has('standbyPool')) {
    if (want.standbyPool) i.standbyPool = want.standbyPool;
    else i.noStandby = true;
  }
  if (changed.has('replicateTo') || changed.has('remoteRetention')) {
    if (want.replicateTo?.length) {
      if (changed.has('replicateTo')) i.replicateTo = want.replicateTo;
      i.remoteKeepDays = want.remoteRetention?.keepDays;
      i.remoteKeepLast = want.remoteRetention?.keepLast;
      i.remoteKeepForever = want.remoteRetention ? want.remoteRetention.keepForever : true;
    } else i.noReplicate = true;
  }
  if (changed.has('autoFull')) i.autoFull = Boolean(want.autoFull);
  if (changed.has('verifyPrepare')) i.verifyPrepare = Boolean(want.verifyPrepare);
  if (changed.has('remark')) i.remark = want.remark ?? '';
  return i;
}

export interface ApplyInput {
  /** The file (for messages, and the folder relative file: references are taken from). */
  file: string;
  /** The text; read from `file` when not given. */
  text?: string;
  dryRun?: boolean;
  /** Delete the plans and unbind the pools the file does not name (refused while they hold backups). */
  prune?: boolean;
}

export async function runApply(o: ApplyInput, ctx: Context): Promise<ApplyResult> {
  const path = resolve(ctx.cwd, o.file);
  let text = o.text;
  if (text === undefined) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new DbsError('INVALID_PATH', `cannot read the file ${path} (from -f)`, { cause, hint: 'check the path and its permissions' });
    }
  }
  const baseDir = dirname(path);
  const { file, normal } = await parseConfigFile(text, o.file, ctx, baseDir);
  const catalog = ctx.catalog();
  const dryRun = Boolean(o.dryRun);
  const changes: Change[] = [];
  const warnings: string[] = [];
  const todo: (() => Promise<void>)[] = [];

  if (file.gateway) {
    const g = catalog.getGateway();
    const want = file.gateway;
    if (!g) {
      changes.push({ kind: 'gateway', name: 'gateway', action: 'create', fields: diff({}, { ip: want.ip, ...(want.bandwidth ? { bandwidth: want.bandwidth } : {}) }) });
      todo.push(async () => void (await (await import('./gateway.js')).runGatewayCreate({ ip: want.ip, bandwidth: want.bandwidth }, ctx)));
    } else {
      const fields: FieldChange[] = [];
      if (parseAddress(want.ip) !== g.address) fields.push({ field: 'ip', from: g.address, to: want.ip });
      const rate = want.bandwidth === undefined ? null : parseRate(want.bandwidth);
      if (rate !== g.bandwidth) fields.push({ field: 'bandwidth', ...(g.bandwidthText ? { from: g.bandwidthText } : {}), ...(want.bandwidth ? { to: want.bandwidth } : {}) });
      changes.push({ kind: 'gateway', name: 'gateway', action: fields.length ? 'update' : 'unchanged', fields });
      if (fields.length) {
        todo.push(async () =>
          void (await (await import('./gateway.js')).runGatewayUpdate({ ...(fields.some((x) => x.field === 'ip') ? { ip: want.ip } : {}), ...(fields.some((x) => x.field === 'bandwidth') ? { bandwidth: want.bandwidth ?? null } : {}) }, ctx)),
        );
      }
    }
  }

  for (const p of file.pools) {
    const cur = catalog.findPool(p.name);
    const pools = await import('./pools.js');
    if (!cur) {
      changes.push({ kind: 'pool', name: p.name, action: 'create', fields: diff({}, p) });
      todo.push(async () => {
        const r = await pools.runPoolBind({ ...p, secretKey: undefined, secretKeyFrom: p.secretKey?.from, pathStyle: p.pathStyle ?? true }, ctx);
        warnings.push(...r.warnings);
      });
      continue;
    }
    const have = poolSpecOf(catalog, cur);
    const want = { ...have, accessKey: p.accessKey, remark: p.remark, secretKey: p.secretKey ? { from: refText(parseSecretRef(p.secretKey.from, { flag: 'secret-key', cwd: baseDir })) } : undefined };
    const fields = diff(have, want, ['secretKey', 'accessKey']);
    changes.push({ kind: 'pool', name: p.name, action: fields.length ? 'update' : 'unchanged', fields });
    if (fields.length) {
      const has = (k: string) => fields.some((x) => x.field === k);
      todo.push(async () => {
        const r = await pools.runPoolUpdate({ pool: cur.id, ...(has('remark') ? { remark: p.remark ?? '' } : {}), ...(has('accessKey') ? { accessKey: p.accessKey } : {}), ...(has('secretKey') ? { secretKeyFrom: want.secretKey!.from } : {}) }, ctx);
        warnings.push(...r.warnings);
      });
    }
  }

  for (const s of file.plans) {
    const want = normal.get(s)!;
    const cur = catalog.findPlan(s.name);
    const plans = await import('./plans.js');
    if (!cur) {
      changes.push({ kind: 'plan', name: s.name, action: 'create', fields: diff({}, want) });
      todo.push(async () => {
        const r = await plans.runPlanCreate(planFlags(s, baseDir), ctx);
        warnings.push(...r.warnings);
      });
      continue;
    }
    const have = planSpecOf(catalog, cur).spec;
    // What the file leaves out of an existing plan's secrets stays as it is (a copied one cannot be written in the file).
    const fields = diff(have, want, ['password', 'secretKey', 'source', 'pool', 'basePlan']);
    changes.push({ kind: 'plan', name: s.name, action: fields.length ? 'update' : 'unchanged', fields });
    if (fields.length) {
      todo.push(async () => {
        const r = await plans.runPlanUpdate(planUpdateInput(want, fields, baseDir), ctx);
        warnings.push(...r.warnings);
      });
    }
  }

  for (const want of file.alerts) {
    const cur = catalog.findAlert(want.name);
    if (!cur) {
      changes.push({ kind: 'alert', name: want.name, action: 'create', fields: diff({}, want) });
      todo.push(async () => void createAlert(alertSpecOfFile(want), ctx));
      continue;
    }
    const have = alertFileSpecOf(catalog, cur);
    // A secret the file leaves out stays as it is (as for plans and pools).
    const fields = diff(have, want, ['secret']);
    changes.push({ kind: 'alert', name: want.name, action: fields.length ? 'update' : 'unchanged', fields });
    if (fields.length) {
      const has = (k: string) => fields.some((x) => x.field === k);
      const patch: AlertPatch = {
        ...(has('plan') || has('allPlans') ? (want.plan !== undefined ? { plan: want.plan, allPlans: false } : { plan: undefined, allPlans: true }) : {}),
        ...(has('on') ? { rules: want.on } : {}),
        ...(has('notify') ? { targets: want.notify } : {}),
        ...(has('secret') ? { secretFrom: want.secret?.from ?? null } : {}),
        ...(has('remark') ? { remark: want.remark ?? '' } : {}),
      };
      todo.push(async () => void updateAlert(cur.name, patch, ctx));
    }
  }

  const named = { pool: new Set(file.pools.map((p) => p.name)), plan: new Set(file.plans.map((p) => p.name)), alert: new Set(file.alerts.map((a) => a.name)) };
  // Pools the file's plans name (pool, standby, replicas) are kept even when the file does not bind them.
  for (const s of normal.values()) for (const x of [s.pool, s.standbyPool, ...(s.replicateTo ?? [])]) if (x) named.pool.add(x);
  const extraPlans = catalog.listPlans().filter((p) => !named.plan.has(p.name));
  const extraPools = catalog.listPools().filter((p) => !named.pool.has(p.name));
  // Alerts of a plan that --prune deletes go with it; alerts the file does not name stay (or go with --prune).
  const extraAlerts = catalog.listAlerts().filter((a) => !named.alert.has(a.name));
  let untouched = [
    ...extraPools.map((p) => ({ kind: 'pool' as const, name: p.name })),
    ...extraPlans.map((p) => ({ kind: 'plan' as const, name: p.name })),
    ...extraAlerts.map((a) => ({ kind: 'alert' as const, name: a.name })),
  ];
  if (o.prune) {
    // --prune: what the file does not name goes, checked first (refused: nothing written).
    const refused: string[] = [];
    for (const p of extraPlans) {
      const n = catalog.listBackups({ planId: p.id }).length;
      if (n) refused.push(`plan ${p.name}: it has ${n} backup(s); delete them first (dbs plan delete ${p.name} --with-backups) or add the plan to the file`);
      const kept = catalog.listPlans().filter((x) => x.options.basePlanId === p.id && named.plan.has(x.name));
      if (kept.length) refused.push(`plan ${p.name}: it is the base plan of ${kept.map((x) => x.name).join(', ')} in the file; add it to the file`);
    }
    for (const p of extraPools) {
      const n = catalog.listCopiesInPool(p.id).length;
      if (n) refused.push(`pool ${p.name}: the catalog knows ${n} backup cop${n === 1 ? 'y' : 'ies'} in it; delete them first or add the pool to the file`);
    }
    if (refused.length) {
      throw new DbsError('REFUSED', `--prune refused; nothing was changed:\n  ${refused.join('\n  ')}`, { hint: 'add those objects to the file, or remove what they hold first', details: { problems: refused } });
    }
    for (const a of extraAlerts) {
      changes.push({ kind: 'alert', name: a.name, action: 'delete', fields: [] });
      todo.push(async () => {
        if (catalog.findAlert(a.name)) deleteAlert(a.name, ctx);
      });
    }
    const { runPlanDelete } = await import('./plans.js');
    const { runPoolUnbind } = await import('./pools.js');
    // Incremental plans before their base plans.
    for (const p of [...extraPlans.filter((x) => x.options.basePlanId), ...extraPlans.filter((x) => !x.options.basePlanId)]) {
      changes.push({ kind: 'plan', name: p.name, action: 'delete', fields: [] });
      todo.push(async () => void (await runPlanDelete({ plan: p.id }, ctx)));
    }
    for (const p of extraPools) {
      changes.push({ kind: 'pool', name: p.name, action: 'delete', fields: [] });
      todo.push(async () => void runPoolUnbind({ pool: p.id }, ctx));
    }
    untouched = [];
  }
  if (!dryRun) for (const step of todo) await step();
  return { file: o.file, dryRun, changes, untouched, warnings };
}

/** An alert of the catalog in the file's form (what export writes and apply compares). */
function alertFileSpecOf(catalog: Catalog, a: AlertRecord): AlertFileSpec {
  const plan = a.planId ? catalog.getPlan(a.planId)?.name : undefined;
  const secret = catalog.getSecret('alert', a.id, 'webhook-secret:ref');
  return {
    name: a.name,
    ...(plan !== undefined ? { plan } : { allPlans: true }),
    on: [...a.rules],
    notify: [...a.targets],
    ...(secret ? { secret: { from: secret } } : {}),
    ...(a.remark ? { remark: a.remark } : {}),
  };
}

function alertSpecOfFile(a: AlertFileSpec): AlertSpec {
  return { name: a.name, plan: a.plan, allPlans: a.plan === undefined, rules: a.on, targets: a.notify, secretFrom: a.secret?.from, remark: a.remark };
}

// ---- export ----------------------------------------------------------------------------

export interface ExportResult {
  /** The YAML text. */
  text: string;
  config: ConfigFile;
  /** What the file cannot hold (copied secrets): also comments in the text. */
  problems: string[];
}

export async function runExport(_o: object, ctx: Context): Promise<ExportResult> {
  const catalog = ctx.catalog();
  const g = catalog.getGateway();
  const problems: string[] = [];
  const pools = catalog.listPools().map((p) => {
    if (secretMode(catalog, 'pool', p.id, 'secretKey')?.mode === 'copy') problems.push(`pool ${p.name}: its S3 secret key was copied into the catalog and is not exported; supply it as a reference: secretKey: {from: "env:VAR"} or {from: "file:PATH"}`);
    return poolSpecOf(catalog, p);
  });
  const plans = catalog.listPlans().map((p) => {
    const { spec, notes } = planSpecOf(catalog, p);
    problems.push(...notes);
    return spec;
  });
  // Base plans before the incremental plans built on them.
  // (a base plan is a full type, never an increment itself: two levels).
  const ordered = [...plans.filter((x) => !x.basePlan), ...plans.filter((x) => x.basePlan)];
  const alerts = catalog.listAlerts().map((a) => alertFileSpecOf(catalog, a));
  const config: ConfigFile = {
    version: 1,
    ...(g ? { gateway: { ip: g.address, ...(g.bandwidthText ? { bandwidth: g.bandwidthText } : {}) } } : {}),
    pools,
    plans: ordered,
    ...(alerts.length ? { alerts } : {}),
  };
  const { Document, visit } = await import('yaml');
  const doc = new Document(config);
  // Times of day quoted: a YAML 1.1 reader would take 02:30 for a number (sexagesimal).
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /^\d{1,2}:\d{2}$|^:\d{2}$/.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  doc.commentBefore = [
    ` dbs configuration, exported ${ctx.clock().toISOString()}; apply it with: dbs apply -f FILE`,
    ' Secrets appear only as references ({from: "env:VAR"} or {from: "file:PATH"}).',
    ...problems.map((p) => ` NOTE: ${p}`),
  ].join('\n');
  return { text: doc.toString({ lineWidth: 0 }), config, problems };
}
