// Restores a backup into a target, recorded as a restore. The data streams pool -> sha256
// check -> decompress -> engine (-> client), with no temp copy of a streamable backup.
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import type { Context } from './context.js';
import type { Decide } from './events.js';
import { DbsError, describeError, isAbort } from '../errors.js';
import { splitList } from '../engines/descriptor.js';
import { descriptorOf, descriptorOrThrow } from '../engines/registry.js';
import type { BackupType, Endpoint } from '../engines/types.js';
import { redactText, type Secret } from '../secret.js';
import { newId, type BackupRecord, type PoolRecord, type RestoreRecord } from '../store/catalog.js';
import { presentFlags, checkRestoreOptions, typeSpecOf } from './applicable.js';
import { artifactReaders, proveArtifactsWhole } from './artifacts.js';
import { makeScratch } from './scratch.js';
import { findBackupOrThrow } from './backups.js';
import { chainOf, openChain } from './chains.js';
import { parseEndpoint } from './endpoints.js';
import { identitiesFor } from './identity.js';
import { backupManifest } from './manifest.js';
import { egressOf } from './gateway.js';
import { checkPoolManifest } from './pool-manifest.js';
import { openReadCopy } from './copies.js';
import { reportFallback } from './backups.js';
import { Sampler } from './samples.js';
import { withTaskTag } from '../pipeline/child.js';
import type { PoolDriver } from '../storage/types.js';

export interface RestoreInput {
  backup: string;
  /** A server or file URL. */
  to?: string;
  /** Redis snapshots: a directory to write dump.rdb into. */
  toDir?: string;
  /** Physical MySQL backups: an empty directory to become a datadir. */
  toDatadir?: string;
  /** Physical MySQL backups: start a server on the restored datadir on this port. */
  startPort?: number;
  password?: Secret;
  /** The flag the password came from (--password-env / --password-file; an S3 target's --secret-key-env / --secret-key-file), if any. */
  passwordFlag?: '--password-env' | '--password-file' | '--password-from' | '--secret-key-env' | '--secret-key-file' | '--secret-key-from';
  /** Asks for the target password; called only when the backup's target takes one. */
  getPassword?: () => Promise<Secret | undefined>;
  /** Answers the question of restoring over the source (without it and without --yes: no). */
  decide?: Decide;
  /** SRC:DST */
  database?: string;
  tables?: string;
  replace?: boolean;
  flush?: boolean;
  /** --path (repeatable): restore only these entries. */
  paths?: string[];
  /** S3 bucket targets: endpoint URL, region, access key id (the secret key is the password). */
  endpoint?: string;
  region?: string;
  accessKey?: string;
  /** Encrypted backups: the age identity file (else the file DBS_IDENTITY_FILE names). */
  identityFile?: string;
  onProgress?: (bytes: number) => void;
  /** Read the copy in this pool (default: the primary, or a replica when its pool is offline). */
  fromPool?: string;
}

/** The restore flags a request gives, as the user typed them. */
function givenFlags(i: RestoreInput): string[] {
  return presentFlags([
    ['--to', i.to],
    ['--to-dir', i.toDir],
    ['--to-datadir', i.toDatadir],
    ['--start', i.startPort],
    ['--database', i.database],
    ['--tables', i.tables],
    ['--replace', i.replace || undefined],
    ['--flush', i.flush || undefined],
    ['--path', i.paths?.length ? i.paths : undefined],
    ['--password-env', i.passwordFlag === '--password-env' || undefined],
    ['--password-file', i.passwordFlag === '--password-file' || undefined],
    ['--password-from', i.passwordFlag === '--password-from' || undefined],
    ['--secret-key-env', i.passwordFlag === '--secret-key-env' || undefined],
    ['--secret-key-file', i.passwordFlag === '--secret-key-file' || undefined],
    ['--secret-key-from', i.passwordFlag === '--secret-key-from' || undefined],
    ['--endpoint', i.endpoint],
    ['--region', i.region],
    ['--access-key', i.accessKey],
  ]);
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|0:0:0:0:0:0:0:1)$/i;

/** Two endpoints name the same server (loopback names are one host). */
function sameServer(a: Endpoint, b: Endpoint): boolean {
  const host = (h: string | undefined) => (h && LOOPBACK.test(h) ? 'loopback' : (h ?? '').toLowerCase());
  if (a.params.socket || b.params.socket) return a.params.socket === b.params.socket;
  return host(a.host) === host(b.host) && a.port === b.port;
}

/**
 * Before a restore touches anything: the pool answers, and the manifest of the backup (and of
 * every backup of its chain) is in it and agrees with the catalog. Chains never span pools:
 * every link is read from the same pool.
 */
async function checkBackupInPool(ctx: Context, b: BackupRecord, pool: PoolRecord, driver: PoolDriver): Promise<void> {
  const catalog = ctx.catalog();
  for (const link of chainOf(catalog, b)) {
    const mc = await checkPoolManifest(ctx, driver, link, pool.id);
    if (mc.ok) continue;
    const which = link.id === b.id ? `backup ${b.id}` : `backup ${link.id}, which ${b.id} builds on,`;
    if (mc.missing) {
      throw new DbsError('BACKUP_MISSING', `${which} no longer exists in pool ${pool.name}: ${mc.problem}; nothing was restored`, {
        hint: 'a backup exists only while its manifest is in the pool; restore another backup (see: dbs backup list)',
      });
    }
    throw new DbsError('VERIFY_FAILED', `${which} is damaged: ${mc.problem}; nothing was restored`, { hint: 'restore another backup; run dbs backup verify on the others' });
  }
}

export async function runBackupRestore(i: RestoreInput, ctx: Context): Promise<RestoreRecord> {
  const catalog = ctx.catalog();
  const b = findBackupOrThrow(catalog, i.backup);
  const m = backupManifest(b);
  // Every option is checked against the engine's declaration for this backup type before
  // anything connects: one that does not apply is a usage error, never ignored.
  const spec = checkRestoreOptions(b.sourceKind, b.backupType, givenFlags(i));
  const d = descriptorOrThrow(b.sourceKind);
  const dir = i.toDir ?? i.toDatadir;
  if (dir !== undefined && !isAbsolute(dir)) throw new DbsError('INVALID_PATH', `${i.toDir !== undefined ? '--to-dir' : '--to-datadir'} ${JSON.stringify(dir)} must be an absolute path`, { hint: 'e.g. /var/lib/restore' });
  if (dir !== undefined) {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      throw new DbsError('INVALID_PATH', `${i.toDir !== undefined ? '--to-dir' : '--to-datadir'} ${JSON.stringify(dir)} is not a directory`, { hint: 'name a new or empty directory' });
    }
  }
  const target = i.to !== undefined ? parseEndpoint(i.to, '--to') : { kind: b.sourceKind as Endpoint['kind'], url: `file://${dir}`, path: dir, params: {} };
  const compatible = target.kind === b.sourceKind || target.kind === d.restoresInto;
  if (!compatible) {
    throw new DbsError('INVALID_ARGUMENT', `backup ${b.id} is a ${b.sourceKind} backup; --to is a ${target.kind} target`, { hint: `restore it into a ${b.sourceKind}:// target` });
  }
  if (spec.options.includes('--password-env') || spec.options.includes('--secret-key-env')) {
    const pw = i.password ?? (await i.getPassword?.());
    if (pw) target.password = pw;
  }
  // The engine's descriptor makes its restore options of the flags and checks them against
  // what the backup holds (a database to rename, the tables asked for).
  const selection = d.decodeSelection(m.selection, `the selection of backup ${b.id}`);
  const facts = d.decodeFacts(m.facts, `the facts of backup ${b.id}`);
  const { options, renames } = d.parseRestore(
    { toDir: i.toDir, toDatadir: i.toDatadir, startPort: i.startPort, database: i.database, tables: i.tables, replace: i.replace, flush: i.flush, paths: i.paths, endpoint: i.endpoint, region: i.region, accessKey: i.accessKey, yes: ctx.yes },
    { id: b.id, type: b.backupType as BackupType, selection, facts },
  );
  // Restoring over the source itself, under the same names, needs an explicit yes.
  const src = parseEndpoint(m.source.url);
  const fileTarget = descriptorOf(target.kind)?.endpoint.form === 'file';
  const overSource = i.to !== undefined && (fileTarget ? src.path === target.path : sameServer(src, target) && (src.path ?? '') === (target.path ?? ''));
  if (overSource && !renames) {
    const ok = ctx.yes || (await i.decide?.({ type: 'restore.over-source', backup: b.id, target: target.url })) === true;
    if (!ok) {
      throw new DbsError('REFUSED', `${target.url} is the source of backup ${b.id}; restoring would overwrite it`, {
        hint: 'pass --yes to restore over the source, or restore under another name with --database SRC:DST',
      });
    }
  }
  // Encrypted: the identity is there and fits, before anything connects.
  const identities = await identitiesFor(ctx, { identityFile: i.identityFile, flag: '--identity-file', action: 'restoring it' }, chainOf(catalog, b));
  const engine = await d.load();
  // --from-pool, else the primary copy, else a replica when the primary's pool is offline.
  const { pool, driver, fellBackFrom } = await openReadCopy(ctx, b, i.fromPool);
  if (fellBackFrom) reportFallback(ctx, b, pool.name, fellBackFrom);
  try {
    await checkBackupInPool(ctx, b, pool, driver);
  } catch (e) {
    await driver.close();
    throw e;
  }
  const record = catalog.insertRestore({
    id: newId('restore'),
    backupId: b.id,
    planId: b.planId,
    status: 'running',
    target: target.url,
    options: { database: i.database, tables: i.tables ? splitList(i.tables) : undefined, replace: Boolean(i.replace), flush: Boolean(i.flush), ...(i.paths?.length ? { paths: i.paths } : {}) },
    pid: process.pid,
    host: hostname(),
  });
  // Samples while it runs (core/samples.ts); its programs carry DBS_TASK=<restore id>.
  return withTaskTag(record.id, async () => {
    // Started just before the try below, whose finally stops it (nothing before may leave it running).
    const sampler = new Sampler({ catalog, runId: record.id, intervalMs: ctx.settings.sampleSeconds * 1000 });
    const fromPool = (n: number) => sampler.addBytesIn(n);
    const onProgress = (raw: number) => {
      sampler.bytesOut(raw);
      i.onProgress?.(raw);
    };
    const redact = (s: string) => redactText(s, [target.password]);
    const tmpDir = await makeScratch(ctx, 'restore');
    // A type that forms chains is restored from its chain (for a full backup: itself alone).
    const opened = typeSpecOf(b.sourceKind, b.backupType).spec.chain ? await openChain(ctx, d, chainOf(catalog, b), onProgress, identities, pool.id, fromPool) : undefined;
    sampler.start();
    try {
      if (spec.streamsIntoTarget && !opened) {
        // This engine writes into the live target as it reads: the artifacts must be known whole
        // (size, then sha256) before the first byte goes there.
        try {
          await proveArtifactsWhole(driver, m.artifacts, ctx.signal, fromPool);
        } catch (e) {
          if (!(e instanceof DbsError) || e.code !== 'VERIFY_FAILED') throw e;
          throw new DbsError('RESTORE_FAILED', `backup ${b.id} is damaged; nothing was written to ${target.url}: ${e.message}`, { hint: e.hint, cause: e });
        }
      }
      const out = await engine.restore(
        {
          target,
          type: b.backupType as BackupType,
          selection,
          facts,
          ...(opened ? { chain: opened.links } : {}),
          artifacts: opened ? opened.links.at(-1)!.artifacts : artifactReaders(driver, m.artifacts, ctx.signal, onProgress, identities, fromPool),
          options,
        },
        { signal: ctx.signal, tmpDir, ...egressOf(ctx), log: (line) => ctx.report({ type: 'restore.tool-output', line: redact(line) }) },
      );
      catalog.updateRestore(record.id, { status: 'succeeded', endedAt: ctx.clock().toISOString(), bytes: out.bytes, options: { ...record.options, result: out.facts } });
      catalog.updateRestore(record.id, sampler.stop());
      catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'restore.succeeded', level: 'info', message: `restored ${b.id} into ${target.url} from pool ${pool.name}` });
      return catalog.getRestore(record.id)!;
    } catch (e) {
      const interrupted = isAbort(e) || ctx.signal.aborted;
      const err = e instanceof DbsError ? e : new DbsError(interrupted ? 'INTERRUPTED' : 'RESTORE_FAILED', `restore of ${b.id} failed: ${redact(describeError(e))}`, { cause: e });
      catalog.updateRestore(record.id, { status: interrupted ? 'interrupted' : 'failed', endedAt: ctx.clock().toISOString(), errorCode: err.code, errorMessage: redact(err.message) });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'restore.failed', level: 'error', message: redact(err.message) });
      throw interrupted ? e : err;
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
      await opened?.close();
      await driver.close();
      try {
        catalog.updateRestore(record.id, sampler.stop());
      } catch {
        // the catalog is gone or closed: the restore row says what it can
      }
    }
  });
}

export function runRestoreList(o: { backup?: string }, ctx: Context): RestoreRecord[] {
  return ctx.catalog().listRestores({ backupId: o.backup });
}

export function runRestoreShow(o: { restore: string }, ctx: Context): RestoreRecord {
  const r = ctx.catalog().getRestore(o.restore);
  if (!r) throw new DbsError('RESTORE_NOT_FOUND', `restore ${JSON.stringify(o.restore)} not found`, { hint: 'see the restores with: dbs restore list' });
  return r;
}
