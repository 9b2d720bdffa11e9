// Alerts (issue 17): rules over a plan's outcomes and usage that notify targets when they
// start and stop firing. A plain spec (AlertSpec) goes through validateAlertSpec (every
// problem at once) and the create/update/delete functions, so `dbs apply` can feed YAML specs
// in the same way as the commands. Evaluated after every task (runner) and periodically by the
// daemon (missed, no-success-for); per alert and plan a state (ok/firing) in the catalog.
import { accessSync, constants, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import type { Context } from './context.js';
import { parseSize } from '../config.js';
import { DbsError, describeError } from '../errors.js';
import type { AlertRecord, Catalog, EventRecord, PlanRecord, TaskRecord } from '../store/catalog.js';
import { newId } from '../store/catalog.js';
import { VERSION } from '../version.js';
import { parseSecretRef, refText, storeSecret, storedSecret, type SecretRef } from './credentials.js';
import { parseDuration } from './durations.js';
import { validateName, uniqueViolation } from './names.js';
import { deliver, ping, targetLabel, type DeliveryEnv, type DeliveryResult, type Notification, type Target } from './notify.js';
import { parseRate } from './rate.js';

/** An alert as data: what `dbs alert create` and `dbs apply` give. */
export interface AlertSpec {
  name: string;
  /** The plan (name or id) it watches; exclusive with allPlans. */
  plan?: string;
  allPlans?: boolean;
  /** Rule texts: failed, missed, missed>10m, no-success-for 26h, duration>2h, cpu>80%, mem>2GiB, out<1MiB/s. */
  rules: string[];
  /** Target texts: webhook:URL, command:/abs/path, email:ADDR, ping:URL. */
  targets: string[];
  /** The webhook signing secret's reference: env:VAR or file:PATH (never the value). */
  secretFrom?: string;
  remark?: string;
}

export type Rule =
  | { kind: 'failed'; text: string }
  | { kind: 'missed'; text: string; graceMs: number }
  | { kind: 'no-success-for'; text: string; ms: number }
  | { kind: 'duration'; text: string; ms: number }
  | { kind: 'cpu'; text: string; pct: number }
  | { kind: 'mem'; text: string; bytes: number }
  | { kind: 'out'; text: string; bytesPerSecond: number };

/** Grace of a bare `missed`: a scheduled run that has not started 10 minutes after its slot. */
export const MISSED_GRACE_MS = 10 * 60_000;

const RULE_HINT = 'rules: failed, missed, missed>10m, no-success-for 26h, duration>2h, cpu>80%, mem>2GiB, out<1MiB/s';

const msg = (e: unknown) => (e instanceof DbsError ? e.message : describeError(e));

/** Parses one rule text; throws a DbsError (INVALID_ARGUMENT) naming it. */
export function parseRule(text: string): Rule {
  if (typeof text !== 'string') throw new DbsError('INVALID_ARGUMENT', `a rule must be text, got ${JSON.stringify(text)}`, { hint: RULE_HINT });
  const t = text.trim();
  const bad = (why: string) => new DbsError('INVALID_ARGUMENT', `--on ${JSON.stringify(text)}: ${why}`, { hint: RULE_HINT });
  if (t === 'failed') return { kind: 'failed', text: t };
  if (t === 'missed') return { kind: 'missed', text: t, graceMs: MISSED_GRACE_MS };
  let m = /^missed\s*>\s*(.+)$/.exec(t);
  if (m) {
    try {
      return { kind: 'missed', text: t, graceMs: parseDuration(m[1], 'the grace') };
    } catch (e) {
      throw bad(msg(e));
    }
  }
  m = /^no-success-for(?:\s+|\s*[=>]\s*)(.+)$/.exec(t);
  if (m) {
    try {
      return { kind: 'no-success-for', text: t, ms: parseDuration(m[1], 'the duration') };
    } catch (e) {
      throw bad(msg(e));
    }
  }
  m = /^duration\s*>\s*(.+)$/.exec(t);
  if (m) {
    try {
      return { kind: 'duration', text: t, ms: parseDuration(m[1], 'the duration') };
    } catch (e) {
      throw bad(msg(e));
    }
  }
  m = /^cpu\s*>\s*(.+)$/.exec(t);
  if (m) {
    const p = /^(\d+(?:\.\d+)?)\s*%$/.exec(m[1].trim());
    const n = p ? Number(p[1]) : NaN;
    if (!p || !(n > 0) || n > 6400) throw bad(`${JSON.stringify(m[1])} is not a percentage (a number and %, above 0; 100% = one core)`);
    return { kind: 'cpu', text: t, pct: n };
  }
  m = /^mem\s*>\s*(.+)$/.exec(t);
  if (m) {
    const n = parseSize(m[1]);
    if (n === undefined) throw bad(`${JSON.stringify(m[1])} is not a size (e.g. 512MiB, 2GiB)`);
    return { kind: 'mem', text: t, bytes: n };
  }
  m = /^out\s*<\s*(.+)$/.exec(t);
  if (m) {
    try {
      return { kind: 'out', text: t, bytesPerSecond: parseRate(m[1], 'the rate') };
    } catch (e) {
      throw bad(msg(e));
    }
  }
  throw bad('unknown rule');
}

function httpUrl(text: string, kind: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `--notify ${kind}:${JSON.stringify(text)}: not a URL`, { hint: `e.g. ${kind}:https://hooks.example.com/dbs` });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DbsError('INVALID_ARGUMENT', `--notify ${kind}: the URL must be http or https (got ${u.protocol.replace(/:$/, '')})`, { hint: `e.g. ${kind}:https://hooks.example.com/dbs` });
  }
  if (u.username || u.password) throw new DbsError('INVALID_ARGUMENT', `--notify ${kind}: the URL must not carry a user or password`, { hint: 'use --secret-from env:VAR|file:PATH for a signing secret' });
  return u.toString();
}

/** Parses one target text; throws a DbsError (INVALID_ARGUMENT) naming it. */
export function parseTarget(text: string): Target {
  if (typeof text !== 'string') throw new DbsError('INVALID_ARGUMENT', `a target must be text, got ${JSON.stringify(text)}`, { hint: 'targets: webhook:URL, command:/abs/path, email:ADDR, ping:URL' });
  const m = /^(webhook|command|email|ping):(.*)$/s.exec(text.trim());
  if (!m) {
    throw new DbsError('INVALID_ARGUMENT', `--notify ${JSON.stringify(text)}: unknown target`, { hint: 'targets: webhook:URL, command:/abs/path, email:ADDR, ping:URL' });
  }
  const [, kind, rest] = m;
  if (kind === 'webhook' || kind === 'ping') return { kind, url: httpUrl(rest, kind) };
  if (kind === 'email') {
    if (!/^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/.test(rest)) throw new DbsError('INVALID_ARGUMENT', `--notify email:${JSON.stringify(rest)}: not a mail address`, { hint: 'e.g. email:ops@example.com' });
    return { kind, address: rest };
  }
  if (!isAbsolute(rest)) throw new DbsError('INVALID_ARGUMENT', `--notify command:${JSON.stringify(rest)}: the path must be absolute`, { hint: 'e.g. command:/usr/local/bin/dbs-notify' });
  try {
    if (!statSync(rest).isFile()) throw new Error('not a file');
    accessSync(rest, constants.X_OK);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `--notify command:${rest}: not an executable file`, { hint: `check the path and make it executable: chmod +x ${rest}` });
  }
  return { kind: 'command', path: rest };
}

function problemsOf(list: string[], f: () => unknown): void {
  try {
    f();
  } catch (e) {
    list.push(msg(e));
  }
}

/**
 * Every problem of a spec at once (empty: valid). With a catalog, also the plan's existence and
 * the name's uniqueness (`selfId`: the alert being updated keeps its own name).
 */
export function validateAlertSpec(spec: AlertSpec, o: { catalog?: Catalog; cwd?: string; selfId?: string; hasSmtp?: boolean } = {}): string[] {
  const problems: string[] = [];
  problemsOf(problems, () => validateName(spec.name, 'alert'));
  if (spec.plan !== undefined && spec.allPlans) problems.push('--plan and --all-plans are exclusive: an alert watches one plan or every plan');
  else if (spec.plan === undefined && !spec.allPlans) problems.push('an alert needs --plan PLAN or --all-plans');
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  const texts = Array.isArray(spec.targets) ? spec.targets : [];
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) problems.push('rules must be a list of rule texts');
  else if (!rules.length) problems.push('an alert needs at least one rule (--on RULE)');
  if (spec.targets !== undefined && !Array.isArray(spec.targets)) problems.push('targets must be a list of target texts');
  else if (!texts.length) problems.push('an alert needs at least one target (--notify TARGET)');
  for (const r of rules) problemsOf(problems, () => parseRule(r));
  const targets: Target[] = [];
  for (const t of texts) problemsOf(problems, () => targets.push(parseTarget(t)));
  if (spec.plan !== undefined && typeof spec.plan !== 'string') problems.push('plan must be a plan name or id');
  if (spec.secretFrom !== undefined) {
    problemsOf(problems, () => parseSecretRef(spec.secretFrom!, { flag: 'secret', cwd: o.cwd ?? process.cwd() }));
    if (targets.length && !targets.some((t) => t.kind === 'webhook')) problems.push('--secret-from signs webhook bodies; this alert has no webhook target');
  }
  if (o.hasSmtp === false && targets.some((t) => t.kind === 'email')) problems.push('email targets need an SMTP server in the settings (smtp.host and smtp.from in the config file)');
  if (o.catalog) {
    if (typeof spec.plan === 'string' && !o.catalog.findPlan(spec.plan)) problems.push(`plan ${JSON.stringify(spec.plan)} not found (see: dbs plan list)`);
    const same = typeof spec.name === 'string' ? o.catalog.findAlert(spec.name) : undefined;
    if (same && same.id !== o.selfId && same.name === spec.name) problems.push(`an alert named ${JSON.stringify(spec.name)} exists already`);
  }
  return problems;
}

function refuse(name: string, problems: string[]): never {
  throw new DbsError('INVALID_ARGUMENT', `alert ${JSON.stringify(name)}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`}`, {
    hint: 'fix the options listed; see: dbs alert create --help',
    details: { problems },
  });
}

export interface AlertView extends AlertRecord {
  plan: string | null;
  /** How the webhook secret is kept: its reference (never a value), or null. */
  secretFrom: string | null;
  states: { plan: string; state: 'ok' | 'firing'; reason: string; since: string }[];
}

const SECRET = 'webhook-secret';

function view(catalog: Catalog, a: AlertRecord): AlertView {
  const plans = new Map(catalog.listPlans().map((p) => [p.id, p.name]));
  return {
    ...a,
    plan: a.planId ? (plans.get(a.planId) ?? a.planId) : null,
    secretFrom: catalog.getSecret('alert', a.id, `${SECRET}:ref`) ?? null,
    states: catalog.alertStates(a.id).map((s) => ({ plan: plans.get(s.planId) ?? s.planId, state: s.state, reason: s.reason, since: s.since })),
  };
}

export function findAlertOrThrow(catalog: Catalog, name: string): AlertRecord {
  const a = catalog.findAlert(name);
  if (!a) throw new DbsError('NOT_FOUND', `alert ${JSON.stringify(name)} not found`, { hint: 'see: dbs alert list' });
  return a;
}

function hasSmtp(ctx: Context): boolean {
  return Boolean(ctx.settings.smtp);
}

export function createAlert(spec: AlertSpec, ctx: Context): AlertView {
  const catalog = ctx.catalog();
  const problems = validateAlertSpec(spec, { catalog, cwd: ctx.cwd, hasSmtp: hasSmtp(ctx) });
  if (problems.length) refuse(spec.name, problems);
  const plan = spec.plan === undefined ? undefined : catalog.findPlan(spec.plan)!;
  const ref: SecretRef | undefined = spec.secretFrom === undefined ? undefined : parseSecretRef(spec.secretFrom, { flag: 'secret', cwd: ctx.cwd });
  const id = newId('alert');
  try {
    const a = catalog.transaction(() => {
      const r = catalog.insertAlert({ id, name: spec.name, planId: plan?.id ?? null, allPlans: !plan, rules: spec.rules.map((x) => x.trim()), targets: spec.targets.map((x) => x.trim()), remark: spec.remark ?? '' });
      if (ref) storeSecret(catalog, 'alert', id, SECRET, { ref });
      catalog.recordEvent({ resourceKind: 'alert', resourceId: id, type: 'alert.created', level: 'info', message: `alert ${spec.name}: ${r.rules.join(', ')} -> ${r.targets.length} target(s)` });
      return r;
    });
    return view(catalog, a);
  } catch (e) {
    if (uniqueViolation(e) === 'alerts.name') refuse(spec.name, [`an alert named ${JSON.stringify(spec.name)} exists already`]);
    throw e;
  }
}

/** What `alert update` changes; absent fields stay. `secretFrom: null` removes the secret. */
export type AlertPatch = Partial<Omit<AlertSpec, 'secretFrom'>> & { secretFrom?: string | null };

export function updateAlert(name: string, patch: AlertPatch, ctx: Context): AlertView {
  const catalog = ctx.catalog();
  const cur = findAlertOrThrow(catalog, name);
  if (Object.values(patch).every((v) => v === undefined)) {
    throw new DbsError('USAGE', `nothing to update for alert ${cur.name}`, { hint: 'pass --on, --notify, --plan/--all-plans, --secret-from, --no-secret, --rename or --remark' });
  }
  const curSecret = catalog.getSecret('alert', cur.id, `${SECRET}:ref`);
  const planChange = patch.plan !== undefined || patch.allPlans !== undefined;
  const spec: AlertSpec = {
    name: patch.name ?? cur.name,
    plan: planChange ? patch.plan : cur.planId ? cur.planId : undefined,
    allPlans: planChange ? patch.allPlans : cur.allPlans,
    rules: patch.rules ?? cur.rules,
    targets: patch.targets ?? cur.targets,
    secretFrom: patch.secretFrom === null ? undefined : (patch.secretFrom ?? curSecret),
    remark: patch.remark ?? cur.remark,
  };
  const problems = validateAlertSpec(spec, { catalog, cwd: ctx.cwd, selfId: cur.id, hasSmtp: hasSmtp(ctx) });
  if (problems.length) refuse(cur.name, problems);
  const plan = spec.plan === undefined ? undefined : catalog.findPlan(spec.plan)!;
  const a = catalog.transaction(() => {
    const r = catalog.updateAlert(cur.id, { name: spec.name, planId: plan?.id ?? null, allPlans: !plan, rules: spec.rules.map((x) => x.trim()), targets: spec.targets.map((x) => x.trim()), remark: spec.remark ?? '' });
    if (patch.secretFrom === null) catalog.setSecret('alert', cur.id, `${SECRET}:ref`, undefined);
    else if (patch.secretFrom !== undefined) storeSecret(catalog, 'alert', cur.id, SECRET, { ref: parseSecretRef(patch.secretFrom, { flag: 'secret', cwd: ctx.cwd }) });
    // Other rules or plans: the old states say nothing about the new ones.
    if (planChange || patch.rules) catalog.clearAlertStates(cur.id);
    catalog.recordEvent({ resourceKind: 'alert', resourceId: cur.id, type: 'alert.updated', level: 'info', message: `alert ${r.name}: ${r.rules.join(', ')} -> ${r.targets.length} target(s)` });
    return r;
  });
  return view(catalog, a);
}

export function deleteAlert(name: string, ctx: Context): AlertView {
  const catalog = ctx.catalog();
  const a = findAlertOrThrow(catalog, name);
  const v = view(catalog, a);
  catalog.transaction(() => {
    catalog.deleteAlert(a.id);
    catalog.recordEvent({ resourceKind: 'alert', resourceId: a.id, type: 'alert.deleted', level: 'info', message: `alert ${a.name} deleted` });
  });
  return v;
}

export function listAlerts(ctx: Context): AlertView[] {
  const catalog = ctx.catalog();
  return catalog.listAlerts().map((a) => view(catalog, a));
}

/** `alert show`: the alert and its newest events (firing, resolved, failed deliveries). */
export function showAlert(name: string, ctx: Context): AlertView & { events: EventRecord[] } {
  const catalog = ctx.catalog();
  const a = findAlertOrThrow(catalog, name);
  return { ...view(catalog, a), events: catalog.alertEvents(a.id, a.name) };
}

// ---- evaluation --------------------------------------------------------------------------

export interface Violation {
  rule: string;
  message: string;
}

const secondsOf = (t: TaskRecord) => (t.startedAt && t.endedAt ? (Date.parse(t.endedAt) - Date.parse(t.startedAt)) / 1000 : undefined);

function fmtMs(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

/** The rule's verdict on a plan now: a violation, or undefined. */
async function check(rule: Rule, plan: PlanRecord, catalog: Catalog, now: Date): Promise<Violation | undefined> {
  const v = (message: string): Violation => ({ rule: rule.text, message });
  if (rule.kind === 'missed') {
    const { dueSlot, lastScheduledRun } = await import('./scheduler.js');
    const slot = dueSlot(plan, new Date(now.getTime() - rule.graceMs), lastScheduledRun(catalog, plan.id));
    return slot ? v(`the run due at ${slot.toISOString()} did not start within ${fmtMs(rule.graceMs)}`) : undefined;
  }
  if (rule.kind === 'no-success-for') {
    const last = catalog.lastSucceededTask(plan.id);
    const since = Date.parse(last?.endedAt ?? plan.createdAt);
    return now.getTime() - since > rule.ms ? v(last ? `no successful backup since ${last.endedAt} (${fmtMs(now.getTime() - since)})` : `no successful backup since the plan was created ${fmtMs(now.getTime() - since)} ago`) : undefined;
  }
  // An interrupted task says nothing about the plan: the newest task that succeeded or failed does.
  const last = catalog.listTasks({ planId: plan.id, limit: 50 }).find((t) => t.status === 'succeeded' || t.status === 'failed');
  if (!last) return undefined;
  switch (rule.kind) {
    case 'failed':
      return last.status === 'failed' ? v(`task ${last.id} failed: ${last.errorMessage ?? last.errorCode ?? 'unknown error'}`) : undefined;
    case 'duration': {
      const s = secondsOf(last);
      return s !== undefined && s * 1000 > rule.ms ? v(`task ${last.id} took ${fmtMs(s * 1000)}`) : undefined;
    }
    // Usage rules judge backups that ran through (a failed task's few ms of start-up say nothing).
    case 'cpu':
      if (last.status !== 'succeeded') return undefined;
      return last.cpuAvgPct != null && last.cpuAvgPct > rule.pct ? v(`task ${last.id} used ${last.cpuAvgPct.toFixed(0)}% CPU on average`) : undefined;
    case 'mem':
      if (last.status !== 'succeeded') return undefined;
      return last.rssPeakBytes != null && last.rssPeakBytes > rule.bytes ? v(`task ${last.id} peaked at ${(last.rssPeakBytes / 1024 ** 2).toFixed(0)} MiB RSS`) : undefined;
    case 'out': {
      const s = secondsOf(last);
      if (last.status !== 'succeeded' || !s || last.bytesOut == null) return undefined;
      const rate = last.bytesOut / s;
      return rate < rule.bytesPerSecond ? v(`task ${last.id} sent ${(rate / 1024 ** 2).toFixed(2)} MiB/s to the pool`) : undefined;
    }
  }
}

function targetsOf(a: AlertRecord): Target[] {
  const out: Target[] = [];
  for (const t of a.targets) {
    try {
      out.push(parseTarget(t));
    } catch {
      // a command removed since: its delivery fails below
      const m = /^command:(.*)$/s.exec(t);
      if (m) out.push({ kind: 'command', path: m[1] });
    }
  }
  return out;
}

function payloadOf(o: { event: string; alert: AlertRecord; plan?: PlanRecord; state: 'ok' | 'firing'; since: string; violations: Violation[]; task?: TaskRecord; at: string }): Record<string, unknown> {
  const t = o.task;
  return {
    event: o.event,
    alert: o.alert.name,
    alertId: o.alert.id,
    state: o.state,
    plan: o.plan?.name ?? null,
    planId: o.plan?.id ?? null,
    rules: o.alert.rules,
    violations: o.violations,
    since: o.since,
    at: o.at,
    task: t ? { id: t.id, status: t.status, trigger: t.trigger, startedAt: t.startedAt, endedAt: t.endedAt, backupId: t.backupId, errorCode: t.errorCode, errorMessage: t.errorMessage } : null,
    host: hostname(),
    dbsVersion: VERSION,
  };
}

/** The delivery environment of an alert: its secret resolved now, the SMTP sender if configured. */
async function deliveryEnv(ctx: Context, a: AlertRecord): Promise<DeliveryEnv> {
  // The reference is resolved now, at each delivery (a rotated file takes effect at once).
  const secret = storedSecret(ctx, 'alert', a.id, SECRET, `signing secret of alert ${a.name}`);
  const smtp = ctx.settings.smtp;
  const sendMail = smtp
    ? async (to: string, subject: string, text: string, signal: AbortSignal) => {
      const { sendMail: send } = await import('./smtp.js');
      await send(smtp, ctx, { to, subject, text }, signal);
    }
    : undefined;
  return { env: ctx.env, signal: ctx.signal, secret, sendMail };
}

function recordFailures(catalog: Catalog, a: AlertRecord, plan: PlanRecord | undefined, results: DeliveryResult[]): void {
  for (const r of results.filter((x) => !x.ok)) {
    catalog.recordEvent({
      resourceKind: plan ? 'plan' : 'alert',
      resourceId: plan?.id ?? a.id,
      type: 'alert.delivery-failed',
      level: 'warning',
      message: `alert ${a.name}: delivery to ${r.target} failed after ${r.tries} tr${r.tries === 1 ? 'y' : 'ies'}: ${r.error}`,
    });
  }
}

async function send(ctx: Context, a: AlertRecord, plan: PlanRecord | undefined, n: Notification): Promise<DeliveryResult[]> {
  let env: DeliveryEnv;
  try {
    env = await deliveryEnv(ctx, a);
  } catch (e) {
    const r = [{ target: 'webhook signature', ok: false, tries: 0, error: msg(e) }];
    recordFailures(ctx.catalog(), a, plan, r);
    return r;
  }
  const results = await deliver(targetsOf(a), n, env);
  recordFailures(ctx.catalog(), a, plan, results);
  return results;
}

export interface Transition {
  alert: string;
  plan: string;
  to: 'firing' | 'resolved' | 'still-firing';
  deliveries: DeliveryResult[];
}

/**
 * Evaluates the alerts of a plan (all of them, or only `kinds`) and notifies on transitions.
 * `task`: the task that just ended (a repeated firing while firing bumps the event's count).
 */
async function evaluatePlan(ctx: Context, plan: PlanRecord, alerts: AlertRecord[], task: TaskRecord | undefined): Promise<Transition[]> {
  const catalog = ctx.catalog();
  const now = ctx.clock();
  const out: Transition[] = [];
  for (const a of alerts) {
    const rules: Rule[] = [];
    for (const r of a.rules) {
      try {
        rules.push(parseRule(r));
      } catch {
        // an unparsable stored rule is skipped (validated at create)
      }
    }
    const violations: Violation[] = [];
    for (const r of rules) {
      const v = await check(r, plan, catalog, now);
      if (v) violations.push(v);
    }
    const reason = violations.map((v) => v.rule).join(', ');
    // Read and write the state in one transaction: two processes do not both notify.
    const step = catalog.transaction(() => {
      const cur = catalog.getAlertState(a.id, plan.id);
      const firing = violations.length > 0;
      if (firing && cur?.state !== 'firing') {
        catalog.setAlertState({ alertId: a.id, planId: plan.id, state: 'firing', reason, since: now.toISOString() });
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'alert.firing', level: 'error', message: `alert ${a.name} fires: ${reason}` });
        return { to: 'firing' as const, since: now.toISOString() };
      }
      if (firing && task) {
        // Fires again while firing: count it (same message: the event's count and last time), no new notification.
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'alert.firing', level: 'error', message: `alert ${a.name} fires: ${cur!.reason}` });
        return { to: 'still-firing' as const, since: cur!.since };
      }
      if (!firing && cur?.state === 'firing') {
        catalog.setAlertState({ alertId: a.id, planId: plan.id, state: 'ok', reason: '', since: now.toISOString() });
        catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'alert.resolved', level: 'info', message: `alert ${a.name} resolved (was: ${cur.reason})` });
        return { to: 'resolved' as const, since: cur.since };
      }
      if (!cur) catalog.setAlertState({ alertId: a.id, planId: plan.id, state: 'ok', reason: '', since: now.toISOString() });
      return undefined;
    });
    if (!step) continue;
    if (step.to === 'still-firing') {
      out.push({ alert: a.name, plan: plan.name, to: step.to, deliveries: [] });
      continue;
    }
    const event = step.to === 'firing' ? 'alert.firing' : 'alert.resolved';
    const payload = payloadOf({ event, alert: a, plan, state: step.to === 'firing' ? 'firing' : 'ok', since: step.since, violations, task, at: now.toISOString() });
    const subject = step.to === 'firing' ? `[dbs] FIRING: alert ${a.name}, plan ${plan.name}: ${reason}` : `[dbs] resolved: alert ${a.name}, plan ${plan.name}`;
    out.push({ alert: a.name, plan: plan.name, to: step.to, deliveries: await send(ctx, a, plan, { event, payload, subject }) });
  }
  return out;
}

/** healthchecks-style start pings of a plan's alerts (one try each; never fails the task). */
export function pingStart(ctx: Context, plan: PlanRecord): Promise<void> {
  return (async () => {
    const catalog = ctx.catalog();
    for (const a of catalog.alertsForPlan(plan.id)) {
      const targets = targetsOf(a).filter((t) => t.kind === 'ping');
      if (targets.length) recordFailures(catalog, a, plan, await ping(targets, 'start', { env: ctx.env, signal: ctx.signal }));
    }
  })().catch(() => undefined);
}

/**
 * After a task of the plan ended (succeeded or failed): end pings, then every alert of the
 * plan evaluated. Never throws: alerts never fail a backup or change its exit code.
 */
export async function afterTask(ctx: Context, plan: PlanRecord): Promise<Transition[]> {
  try {
    const catalog = ctx.catalog();
    const alerts = catalog.alertsForPlan(plan.id);
    if (!alerts.length) return [];
    const task = catalog.lastEndedTask(plan.id);
    if (task && task.status !== 'interrupted') {
      for (const a of alerts) {
        const targets = targetsOf(a).filter((t) => t.kind === 'ping');
        if (targets.length) recordFailures(catalog, a, plan, await ping(targets, task.status === 'succeeded' ? 'success' : 'fail', { env: ctx.env, signal: ctx.signal }));
      }
    }
    return await evaluatePlan(ctx, catalog.getPlan(plan.id) ?? plan, alerts, task);
  } catch {
    return [];
  }
}

/** The daemon's periodic pass: every alert over every plan it watches (missed, no-success-for). */
export async function evaluateAll(ctx: Context, skip: (planId: string) => boolean = () => false): Promise<Transition[]> {
  const catalog = ctx.catalog();
  const alerts = catalog.listAlerts();
  if (!alerts.length) return [];
  const out: Transition[] = [];
  for (const plan of catalog.listPlans()) {
    if (skip(plan.id)) continue;
    const mine = alerts.filter((a) => a.allPlans || a.planId === plan.id);
    if (mine.length) out.push(...(await evaluatePlan(ctx, plan, mine, undefined)));
  }
  return out;
}

/** `dbs alert test NAME`: a test notification to every target (pings: a success ping), now. */
export async function testAlert(name: string, ctx: Context): Promise<{ alert: string; deliveries: DeliveryResult[] }> {
  const catalog = ctx.catalog();
  const a = findAlertOrThrow(catalog, name);
  const plan = a.planId ? catalog.getPlan(a.planId) : undefined;
  const now = ctx.clock().toISOString();
  const payload = payloadOf({ event: 'alert.test', alert: a, plan, state: 'ok', since: now, violations: [], at: now });
  const deliveries = await send(ctx, a, undefined, { event: 'alert.test', payload, subject: `[dbs] test: alert ${a.name}` });
  const pings = targetsOf(a).filter((t) => t.kind === 'ping');
  if (pings.length) {
    const env = { env: ctx.env, signal: ctx.signal };
    const r = await ping(pings, 'success', env);
    recordFailures(catalog, a, undefined, r);
    deliveries.push(...r);
  }
  return { alert: a.name, deliveries };
}

export { refText, targetLabel };
