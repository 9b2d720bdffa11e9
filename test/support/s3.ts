// A throwaway S3 server for tests: a one-node Ceph 16 (pacific) cluster - one ceph-mon, one
// memstore ceph-osd, radosgw with the beast frontend - without cephx, mgr or systemd, with
// every path (conf, keyring, run dir, logs, mon/osd data) under one temp data dir.
//
// Start-up measured on the 2-core dev VM (Debian 12, Ceph 16.2.15), from nothing to HTTP 200:
//   ~1.3-1.4 s alone, ~1.45-1.75 s in parallel with MariaDB and Redis (global setup).
//   Roughly: mkfs ~0.1 s, mon answering `osd new` ~0.25 s, osd up ~0.45 s, radosgw-admin user
//   create ~0.6 s, radosgw to HTTP 200 ~0.1 s. Every `ceph` CLI call costs ~0.2 s (Python).
// stop() ~0.4-0.5 s (radosgw ~0.25 s, osd ~0.08 s, mon ~0.03 s, rm of the dir).
// memstore: two 250 MiB objects raised the OSD's RSS from ~150 MB to ~860 MB; with the gc
// settings below the space came back ~4 s after DeleteObject.
//
// Settings that matter (see /work/shared/TESTBED.md): auth none AND ms_*_mode = crc (else
// radosgw loops on "get_initial_auth_request returned -13"); paxos propose interval 0.05
// (else start-up takes ~12 s); pool size 1 settings for a single OSD; NO rgw zone/zonegroup
// settings; an empty keyring; msgr2 only; mon/gateway ports outside 6800-7300 (OSD range);
// daemons run in the foreground (-f) as our direct children with stdio to a file, so we get
// their real PIDs and they inherit no fds. The OSD is stopped before the mon: an OSD whose mon
// is gone waits osd_mon_shutdown_timeout (5 s) before exiting.

import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  describeExit,
  freePort,
  makeGuardedDir,
  removeGuardedDir,
  retryOnPortClash,
  runTool,
  spawnDaemon,
  tailFile,
  waitFor,
  type DaemonProcess,
} from './ports.js';

export interface S3Server {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** https://127.0.0.1:PORT: the same gateway over TLS, with a certificate made for this run. */
  tlsEndpoint: string;
  /** The PEM of that certificate (self-signed for IP 127.0.0.1): trust it with NODE_EXTRA_CA_CERTS / AWS_CA_BUNDLE. */
  caFile: string;
  region: string;
  accessKey: string;
  secretKey: string;
  dataDir: string;
  pids: number[];
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
/**
 * memstore keeps objects in RAM (~1.6x their size); this is only a cap, allocated lazily.
 * DBS_TEST_MEMSTORE_MB raises it for benches that move gigabytes (bench/copies.bench.ts).
 */
const memstoreBytes = (): number => Number(process.env.DBS_TEST_MEMSTORE_MB ?? 4096) * 1024 * 1024;

function cephConf(d: string, fsid: string, monPort: number, rgwPort: number, tlsPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1

# no cephx; with auth none every messenger mode must be crc or radosgw loops on -13
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
# a taken mon port fails in ~1 s instead of 3 x 5 s (start then retries on a new port)
ms bind retry count = 1
ms bind retry delay = 1

# start-up: ~12 s -> ~1.5 s
paxos propose interval = 0.05

# one OSD
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
osd pool default pg autoscale mode = off
osd crush initial weight = 1
# a nearly full /tmp must not stop the mon
mon data avail crit = 0
mon data avail warn = 0

# every path under the data dir; nothing from /etc/ceph
run dir = ${d}/run
admin socket = ${d}/run/$name.asok
pid file = ${d}/run/$name.pid
log file = ${d}/log/$name.log
keyring = ${d}/keyring
crash dir = ${d}/crash
mon data = ${d}/mon
osd data = ${d}/osd
rgw data = ${d}/rgw
exec dir = ${d}/run

osd objectstore = memstore
memstore device bytes = ${memstoreBytes()}

[client.rgw]
# tcp_nodelay: without it beast leaves Nagle on, and a small response on a kept-alive connection
# (a manifest, a listing page) waits for the client's delayed ACK: 43 ms for an 18 KB object
# (curl, second request on one connection), 2 ms with it, as S3 and MinIO answer.
rgw frontends = beast endpoint=127.0.0.1:${rgwPort} ssl_endpoint=127.0.0.1:${tlsPort} ssl_certificate=${d}/tls/cert.pem ssl_private_key=${d}/tls/key.pem tcp_nodelay=1
# free deleted data within seconds instead of hours
rgw gc obj min wait = 2
rgw gc processor period = 2
rgw gc processor max time = 2
rgw crypt require ssl = false
rgw dynamic resharding = false
`;
}

/** The caller's environment without CEPH_ARGS/CEPH_CONF etc., which every Ceph tool reads. */
function cephEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CEPH_')) env[k] = v;
  return env;
}

function randomKey(len: number, alphabet: string): string {
  const bytes = randomBytes(len);
  let out = '';
  for (let i = 0; i < len; i++) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

export async function startS3(): Promise<S3Server> {
  return retryOnPortClash(() => startS3Once());
}

async function startS3Once(): Promise<S3Server> {
  const guard = await makeGuardedDir('s3');
  const dataDir = guard.dir;
  const conf = join(dataDir, 'ceph.conf');
  const procs: DaemonProcess[] = [];
  let stopped = false;

  const stopAll = async (): Promise<void> => {
    // radosgw first, then the OSD while the mon can still ack its shutdown, then the mon.
    // (~0.25 s, ~0.08 s, ~0.03 s here). A radosgw whose cluster is already gone ignores
    // SIGTERM, hence the short grace before SIGKILL.
    for (const p of [...procs].reverse()) {
      await p.stop({ graceMs: 5_000 }).catch(() => undefined);
    }
    procs.length = 0;
  };

  const logTails = async (): Promise<string> => {
    const files = [
      'log/mon.a.log', 'mon.out',
      'log/osd.0.log', 'osd.out',
      'log/client.rgw.log', 'rgw.out',
      'log/client.admin.log',
    ];
    const parts: string[] = [];
    for (const f of files) {
      if (existsSync(join(dataDir, f))) parts.push(`--- ${f} (tail) ---\n${await tailFile(join(dataDir, f), 15)}`);
    }
    return parts.join('\n');
  };

  const run = async (step: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> => {
    const r = await runTool(cmd, args, { timeoutMs, cwd: dataDir, env: cephEnv(), guard });
    if (r.exitCode !== 0) {
      const why = r.timedOut ? `timed out after ${timeoutMs} ms` : `failed (${r.exitCode ?? r.signal})`;
      throw new Error(`${step}: ${cmd} ${why}\n${r.all.split('\n').slice(-20).join('\n')}`);
    }
    return r.stdout;
  };

  const assertRunning = (): void => {
    for (const p of procs) {
      if (p.exited) {
        throw new Error(`${p.child.spawnfile} (pid ${p.pid}) ${describeExit(p.exited)}`);
      }
    }
  };

  try {
    const started = Date.now();
    const deadline = started + START_TIMEOUT_MS;
    const remaining = (): number => Math.max(1_000, deadline - Date.now());

    for (const sub of ['run', 'log', 'mon', 'osd', 'crash', 'rgw', 'tls']) await mkdir(join(dataDir, sub));
    // A throwaway certificate for the TLS endpoint (~20 ms): EC P-256, for IP 127.0.0.1, 2 days.
    await run('openssl req', 'openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=dbs-test-rgw', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dataDir, 'tls', 'key.pem'), '-out', join(dataDir, 'tls', 'cert.pem'),
    ]);
    await writeFile(join(dataDir, 'keyring'), '');
    const fsid = randomUUID();
    const monPort = await freePort();
    const rgwPort = await freePort();
    const tlsPort = await freePort();
    await writeFile(conf, cephConf(dataDir, fsid, monPort, rgwPort, tlsPort));

    // 1. mon
    await run('monmaptool', 'monmaptool', ['--create', '--clobber', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dataDir, 'monmap')]);
    await run('ceph-mon --mkfs', 'ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dataDir, 'monmap'), '--keyring', join(dataDir, 'keyring')]);
    procs.push(spawnDaemon('ceph-mon', ['-c', conf, '-i', 'a', '-f'], { outputFile: join(dataDir, 'mon.out'), cwd: dataDir, env: cephEnv(), guard }));

    // 2. osd: "osd new" with a fixed uuid is idempotent, so retry it until the mon answers.
    const osdUuid = randomUUID();
    const osdId = await waitFor(
      async () => (await run('ceph osd new', 'ceph', ['-c', conf, '--connect-timeout', '5', 'osd', 'new', osdUuid], 10_000)).trim(),
      { what: 'ceph-mon (ceph osd new)', timeoutMs: remaining(), intervalMs: 100, attemptTimeoutMs: 15_000, abortIf: assertRunning },
    );
    await run('ceph-osd --mkfs', 'ceph-osd', ['-c', conf, '-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
    procs.push(spawnDaemon('ceph-osd', ['-c', conf, '-i', osdId, '-f'], { outputFile: join(dataDir, 'osd.out'), cwd: dataDir, env: cephEnv(), guard }));
    await waitFor(
      async () => {
        const out = await run('ceph osd stat', 'ceph', ['-c', conf, '--connect-timeout', '5', 'osd', 'stat', '--format', 'json'], 10_000);
        const stat = JSON.parse(out) as { num_up_osds?: number; num_in_osds?: number };
        return stat.num_up_osds === 1 && stat.num_in_osds === 1;
      },
      { what: `ceph-osd.${osdId} (up and in)`, timeoutMs: remaining(), intervalMs: 100, attemptTimeoutMs: 15_000, abortIf: assertRunning },
    );

    // 3. user (this also creates the default realm/zonegroup/zone and their pools)
    const accessKey = randomKey(20, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789');
    const secretKey = randomKey(40, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
    await run('radosgw-admin user create', 'radosgw-admin', [
      '-c', conf, '-n', 'client.rgw', 'user', 'create',
      '--uid=dbs-test', '--display-name=dbs test',
      `--access-key=${accessKey}`, `--secret-key=${secretKey}`,
    ], remaining());

    // 4. gateway
    procs.push(spawnDaemon('radosgw', ['-c', conf, '-n', 'client.rgw', '-f'], { outputFile: join(dataDir, 'rgw.out'), cwd: dataDir, env: cephEnv(), guard }));
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor(
      async () => {
        const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        return true;
      },
      { what: `radosgw on ${endpoint}`, timeoutMs: remaining(), intervalMs: 50, abortIf: assertRunning },
    );

    const server: S3Server = {
      endpoint,
      tlsEndpoint: `https://127.0.0.1:${tlsPort}`,
      caFile: join(dataDir, 'tls', 'cert.pem'),
      region: 'us-east-1',
      accessKey,
      secretKey,
      dataDir,
      pids: procs.map((p) => p.pid),
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        await removeGuardedDir(guard);
      },
    };
    return server;
  } catch (err) {
    const tails = await logTails();
    await stopAll();
    await removeGuardedDir(guard).catch(() => undefined);
    throw new Error(`Ceph RGW (S3) did not start: ${(err as Error).message}\n${tails}`);
  }
}
