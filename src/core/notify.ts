// Delivery of alert notifications to their targets (webhook, command, email, ping), with
// bounded retries and backoff. Never throws: the result says what was delivered and what was
// not; the caller records a failed delivery as an event (core/alerts.ts).
import { createHmac, randomUUID } from 'node:crypto';
import { describeError } from '../errors.js';
import { childEnv, execaChild } from '../pipeline/child.js';
import type { Secret } from '../secret.js';
import { VERSION } from '../version.js';

export type Target =
  | { kind: 'webhook'; url: string }
  | { kind: 'command'; path: string }
  | { kind: 'email'; address: string }
  | { kind: 'ping'; url: string };

/** Tries per delivery: the first and three retries, 1 s, 2 s, 4 s apart (DBS_ALERT_RETRY_MS scales the base). */
export const DELIVERY_TRIES = 4;
/** Seconds one webhook or ping request may take; a command's run. */
export const HTTP_TIMEOUT_MS = 10_000;
export const COMMAND_TIMEOUT_MS = 30_000;

/** The target as text, without what may be a secret (URL paths and queries carry tokens). */
export function targetLabel(t: Target): string {
  if (t.kind === 'command') return `command:${t.path}`;
  if (t.kind === 'email') return `email:${t.address}`;
  const u = new URL(t.url);
  return `${t.kind}:${u.protocol}//${u.host}${u.pathname === '/' && !u.search ? '/' : '/…'}`;
}

export interface DeliveryEnv {
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** The webhook signing secret, resolved now. */
  secret?: Secret;
  /** Sends one mail (core/smtp.ts with the settings' SMTP server), when email targets exist. */
  sendMail?: (to: string, subject: string, text: string, signal: AbortSignal) => Promise<void>;
}

export interface DeliveryResult {
  target: string;
  ok: boolean;
  tries: number;
  error?: string;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

function retryBase(env: NodeJS.ProcessEnv): number {
  const n = Number(env.DBS_ALERT_RETRY_MS);
  return Number.isFinite(n) && n >= 0 && env.DBS_ALERT_RETRY_MS !== undefined && env.DBS_ALERT_RETRY_MS !== '' ? n : 1000;
}

/** Runs `once` up to DELIVERY_TRIES times with 1x, 2x, 4x the base between tries. */
async function withRetries(label: string, e: DeliveryEnv, once: (signal: AbortSignal) => Promise<void>, tries = DELIVERY_TRIES): Promise<DeliveryResult> {
  const base = retryBase(e.env);
  let last = '';
  for (let i = 0; i < tries; i++) {
    if (i > 0) await sleep(base * 2 ** (i - 1), e.signal);
    if (e.signal.aborted) return { target: label, ok: false, tries: i, error: 'interrupted' };
    try {
      await once(AbortSignal.any([e.signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]));
      return { target: label, ok: true, tries: i + 1 };
    } catch (err) {
      last = describeError(err);
    }
  }
  return { target: label, ok: false, tries, error: last };
}

/** The signature header value of a body: `sha256=<hex of HMAC-SHA256(secret, body)>`. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

async function post(url: string, body: string, event: string, e: DeliveryEnv, signal: AbortSignal): Promise<void> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': `dbs/${VERSION}`,
    'x-dbs-event': event,
    'x-dbs-delivery': randomUUID(),
  };
  if (e.secret) headers['x-dbs-signature'] = signature(e.secret.reveal(), body);
  const res = await fetch(url, { method: 'POST', body, headers, signal, redirect: 'error' });
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

async function get(url: string, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { method: 'GET', headers: { 'user-agent': `dbs/${VERSION}` }, signal });
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

async function runCommand(path: string, body: string, event: string, signal: AbortSignal): Promise<void> {
  const r = await execaChild(path, [], {
    input: body,
    env: childEnv({ DBS_ALERT_EVENT: event }),
    timeout: COMMAND_TIMEOUT_MS,
    cancelSignal: signal,
    reject: false,
    stdout: 'ignore',
    stderr: 'pipe',
  });
  if (r.exitCode !== 0) {
    const tail = String(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${r.timedOut ? `timed out after ${COMMAND_TIMEOUT_MS / 1000}s` : r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`}${tail ? `: ${tail}` : ''}`);
  }
}

export interface Notification {
  /** alert.firing, alert.resolved, alert.test */
  event: string;
  /** The JSON body (webhooks, commands, the attachment of a mail). */
  payload: Record<string, unknown>;
  /** One line for people: a mail's subject. */
  subject: string;
}

/** Sends a notification to every target (not pings) at once; one result per target. */
export async function deliver(targets: readonly Target[], n: Notification, e: DeliveryEnv): Promise<DeliveryResult[]> {
  const body = JSON.stringify(n.payload);
  return Promise.all(
    targets
      .filter((t) => t.kind !== 'ping')
      .map((t) => {
        const label = targetLabel(t);
        if (t.kind === 'webhook') return withRetries(label, e, (s) => post(t.url, body, n.event, e, s));
        if (t.kind === 'command') return withRetries(label, e, (s) => runCommand(t.path, body, n.event, s));
        if (t.kind === 'email') {
          if (!e.sendMail) return Promise.resolve({ target: label, ok: false, tries: 0, error: 'no SMTP server in the settings (smtp.host, smtp.from)' });
          const send = e.sendMail;
          return withRetries(label, e, (s) => send(t.address, n.subject, `${n.subject}\n\n${JSON.stringify(n.payload, null, 2)}\n`, s));
        }
        return Promise.resolve({ target: label, ok: true, tries: 0 });
      }),
  );
}

/** healthchecks.io-style pings: GET URL/start, URL (success), URL/fail. Start pings get one try. */
export async function ping(targets: readonly Target[], what: 'start' | 'success' | 'fail', e: DeliveryEnv): Promise<DeliveryResult[]> {
  return Promise.all(
    targets
      .filter((t): t is Extract<Target, { kind: 'ping' }> => t.kind === 'ping')
      .map((t) => {
        const url = what === 'success' ? t.url : `${t.url.replace(/\/+$/, '')}/${what}`;
        return withRetries(`${targetLabel(t)} (${what})`, e, (s) => get(url, s), what === 'start' ? 1 : DELIVERY_TRIES);
      }),
  );
}
