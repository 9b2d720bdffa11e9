// The example systemd units pass `systemd-analyze verify` and score OK in `systemd-analyze
// security` (offline: no systemd needs to run as PID 1); the cron file and the Kubernetes
// CronJob call the installed executable and carry the hardening the README promises.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/testbed.js';

const examples = new URL('../../examples/', import.meta.url).pathname;
const unitDir = join(examples, 'systemd');
const units = readdirSync(unitDir).filter((f) => /\.(service|timer)$/.test(f));
const read = (f: string) => readFileSync(join(examples, f), 'utf8');

/** The units in a temp dir, with the executable path pointing at a program that exists here. */
function stagedUnits(): string {
  const dir = tempDir('units');
  for (const u of units) {
    const text = readFileSync(join(unitDir, u), 'utf8').replaceAll('/usr/local/bin/dbs', '/bin/true');
    writeFileSync(join(dir, u), text);
  }
  // A template is verified as an instance.
  copyFileSync(join(dir, 'dbs-failure@.service'), join(dir, 'dbs-failure@dbs.service.service'));
  return dir;
}

describe('examples/systemd', () => {
  it('every unit calls the installed executable and passes systemd-analyze verify', () => {
    for (const u of ['dbs.service', 'dbs-due.service']) expect(read(`systemd/${u}`)).toMatch(/^ExecStart=\/usr\/local\/bin\/dbs /m);
    const dir = stagedUnits();
    const list = ['dbs.service', 'dbs-due.service', 'dbs-due.timer', 'dbs-failure@dbs.service.service'];
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...list.map((u) => `./${u}`)], { cwd: dir, encoding: 'utf8' });
    expect(r.error, 'systemd-analyze is needed (Debian package systemd)').toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  for (const u of ['dbs.service', 'dbs-due.service']) {
    it(`${u} is hardened: the issue's settings, and systemd-analyze security says OK`, () => {
      const text = read(`systemd/${u}`);
      for (const line of ['User=dbs', 'StateDirectory=dbs', 'CacheDirectory=dbs', 'ProtectSystem=strict', 'NoNewPrivileges=true', 'PrivateTmp=true', 'Nice=10', 'IOSchedulingClass=best-effort', 'OnFailure=dbs-failure@%n.service']) {
        expect(text, line).toContain(`\n${line}\n`);
      }
      const dir = stagedUnits();
      const out = execFileSync('systemd-analyze', ['security', '--offline=true', '--threshold=20', `./${u}`], { cwd: dir, encoding: 'utf8' });
      const score = Number(/Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(out)?.[1]);
      expect(score).toBeLessThanOrEqual(2.0);
      expect(out).toMatch(/: [\d.]+ OK/);
    });
  }
});

describe('examples/cron and examples/kubernetes', () => {
  it('the cron file runs the installed executable as the dbs user', () => {
    expect(read('cron/dbs')).toMatch(/^\* \* \* \* \* dbs \/usr\/local\/bin\/dbs --quiet plan run --due/m);
  });

  it('the CronJob runs as non-root on a read-only root filesystem, with a deadline and a pinned image', () => {
    const y = read('kubernetes/cronjob.yaml');
    expect(y).toMatch(/runAsNonRoot: true/);
    expect(y).toMatch(/readOnlyRootFilesystem: true/);
    expect(y).toMatch(/allowPrivilegeEscalation: false/);
    expect(y).toMatch(/activeDeadlineSeconds: \d+/);
    expect(y).toMatch(/drop: \["ALL"\]/);
    const image = /image: (\S+)/.exec(y)?.[1] ?? '';
    expect(image).toMatch(/:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$/);
    expect(image).not.toMatch(/:latest/);
    expect(y).toMatch(/command: \["\/usr\/local\/bin\/dbs"\]/);
  });
});
