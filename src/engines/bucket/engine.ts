// The bucket engine: object storage sources s3://BUCKET/PREFIX (see descriptor.ts for the
// flags; backup.ts and restore.ts for the data path and the format). It talks S3 itself with
// @aws-sdk/client-s3 (this module is loaded only when a bucket is backed up or restored).
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DbsError } from '../../errors.js';
import type { Egress, Endpoint, Engine, EngineRunContext, ProbeInfo, RestoreOutcome, ToolInfo } from '../types.js';
import { backupBucket, checkBucket, folderPrefix } from './backup.js';
import { createBucketClient, mapS3Error, type ClientNet } from './client.js';
import { restoreBucket } from './restore.js';
import type { BucketBackupOutcome, BucketBackupRequest, BucketFacts, BucketRestoreOptions, BucketRestoreRequest, BucketSelection } from './types.js';

function bucketOf(ep: Endpoint): string {
  if (!ep.host) throw new DbsError('INVALID_ARGUMENT', `${ep.url} names no bucket`, { hint: 'use s3://BUCKET/PREFIX' });
  return ep.host;
}

export class BucketEngine implements Engine<BucketSelection, BucketFacts, BucketRestoreOptions> {
  readonly kind = 'bucket' as const;
  readonly types = ['snapshot', 'incremental'] as const;

  /** Network settings for every client this engine makes; a run's gateway address (ctx.egress) wins. */
  constructor(readonly net: ClientNet = {}) {}

  #net(egress: Egress | undefined): ClientNet {
    return egress?.localAddress ? { ...this.net, localAddress: egress.localAddress } : this.net;
  }

  async tools(): Promise<ToolInfo[]> {
    const { readFileSync } = await import('node:fs');
    const { createRequire } = await import('node:module');
    let version: string | undefined;
    try {
      const path = createRequire(import.meta.url).resolve('@aws-sdk/client-s3/package.json');
      version = (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version;
    } catch {
      version = undefined;
    }
    return [{ name: 'AWS SDK for JavaScript (built in)', ...(version ? { version } : {}), found: true, purpose: 's3 bucket snapshots and incrementals' }];
  }

  async probe(source: Endpoint, selection: BucketSelection, ctx: { signal: AbortSignal; egress?: Egress }): Promise<ProbeInfo> {
    const bucket = bucketOf(source);
    const prefix = folderPrefix(source.path);
    const where = `s3://${bucket}/${prefix} @ ${selection.endpoint}`;
    const client = createBucketClient({ ...selection, secretKey: source.password }, this.#net(ctx.egress));
    try {
      await checkBucket(client, bucket, where, ctx.signal, source.password);
      // Listing is what a backup needs first: prove it is allowed.
      try {
        await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: 1 }), { abortSignal: ctx.signal });
      } catch (e) {
        throw mapS3Error(e, `listing ${where}`, where, source.password, ctx.signal);
      }
      return { flavor: 's3', serverVersion: `S3 at ${new URL(selection.endpoint).host}`, problems: [], facts: {} };
    } finally {
      client.destroy();
    }
  }

  async backup(req: BucketBackupRequest, ctx: EngineRunContext): Promise<BucketBackupOutcome> {
    bucketOf(req.source);
    const client = createBucketClient({ ...req.selection, secretKey: req.source.password }, this.#net(ctx.egress));
    try {
      const facts = await backupBucket(client, req, ctx);
      return { serverVersion: `S3 at ${new URL(req.selection.endpoint).host}`, toolName: 'dbs bucket engine (ListObjectsV2 + GetObject -> pax tar)', facts };
    } finally {
      client.destroy();
    }
  }

  async restore(req: BucketRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    bucketOf(req.target);
    const o = req.options;
    const client = createBucketClient({ endpoint: o.endpoint, region: o.region, pathStyle: o.pathStyle, ...(o.accessKey ? { accessKey: o.accessKey } : {}), secretKey: req.target.password }, this.#net(ctx.egress));
    try {
      return await restoreBucket(client, req, ctx);
    } finally {
      client.destroy();
    }
  }
}
