// The run's server coordinator (test/support/shared-servers.ts), with fake starters: each
// server starts once however many files ask, a failed start fails every asker with the same
// message, and teardown stops exactly what started.
import { afterEach, describe, expect, it } from 'vitest';
import { serveSharedServers, SharedServers, type Started, type Starters } from '../support/shared-servers.js';
import type { ServerName } from '../support/types.js';

function fakes() {
  const calls: Record<ServerName, number> = { mariadb: 0, redis: 0, s3: 0 };
  const stopped: ServerName[] = [];
  const ok = <N extends ServerName>(name: N, info: Started<N>['info']) => async (): Promise<Started<N>> => {
    calls[name]++;
    await new Promise((r) => setTimeout(r, 20));
    return { info, ms: 20, stop: async () => void stopped.push(name) };
  };
  const starters: Starters = {
    mariadb: ok('mariadb', { host: '127.0.0.1', port: 1, socket: '/s', datadir: '/d', user: 'root', password: '', version: 'x' }),
    redis: ok('redis', { host: '127.0.0.1', port: 2, version: '7' }),
    s3: async () => {
      calls.s3++;
      throw new Error('radosgw exited with code 1');
    },
  };
  return { calls, stopped, starters };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('shared servers', () => {
  it('starts a server once for concurrent and later askers; stops only what started', async () => {
    const f = fakes();
    const s = new SharedServers(f.starters);
    const [a, b] = await Promise.all([s.ensure('mariadb'), s.ensure('mariadb')]);
    expect((await s.ensure('mariadb')).info).toBe(a.info);
    expect(b.info.port).toBe(1);
    expect(f.calls).toEqual({ mariadb: 1, redis: 0, s3: 0 });
    await s.stopAll();
    expect(f.stopped).toEqual(['mariadb']);
    await expect(s.ensure('redis')).rejects.toThrow(/after teardown/);
  });

  it('a server that cannot start fails every asker with its reason, and is tried once', async () => {
    const f = fakes();
    const s = new SharedServers(f.starters);
    await expect(s.ensure('s3')).rejects.toThrow('test bed: S3 (Ceph RGW) could not start: radosgw exited with code 1');
    await expect(s.ensure('s3')).rejects.toThrow(/radosgw exited with code 1/);
    expect(f.calls.s3).toBe(1);
    await s.stopAll();
    expect(f.stopped).toEqual([]);
  });

  it('serves start requests over HTTP with a token; unknown names and tokens are refused', async () => {
    const f = fakes();
    const s = new SharedServers(f.starters);
    const http = await serveSharedServers(s);
    closers.push(() => http.close(), () => s.stopAll());
    const good = await fetch(`${http.url}/start/redis`);
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ ok: true, info: { port: 2 } });
    const failed = await fetch(`${http.url}/start/s3`);
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ ok: false, error: 'test bed: S3 (Ceph RGW) could not start: radosgw exited with code 1' });
    expect((await fetch(`${http.url}/start/postgres`)).status).toBe(400);
    expect((await fetch(`${http.url.replace(/[0-9a-f]+$/, 'ffff')}/start/redis`)).status).toBe(404);
    expect(f.calls).toEqual({ mariadb: 0, redis: 1, s3: 1 });
  });
});
