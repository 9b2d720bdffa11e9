// The README's second install route: `npm install -g .` from a checkout puts `dbs` on PATH.
// Installed into a throwaway prefix (npm links the checkout; nothing is downloaded), then run as
// a user would: by name from PATH, with the pinned Node 24 first on PATH (it works, and runs a
// real command against a fresh catalog), and with the machine's older system Node first (it says
// which Node it needs and exits 2, before loading anything).
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const checkout = new URL('../..', import.meta.url).pathname;
const prefix = mkdtempSync(join(tmpdir(), 'dbs-npm-g-'));
afterAll(() => rmSync(prefix, { recursive: true, force: true }));
const node24 = dirname(process.execPath);

describe('npm install -g from a checkout', () => {
  it('puts dbs on PATH; it runs under Node >= 22.16 and refuses an older node with exit 2', async () => {
    const npm = await execa('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', checkout], { reject: false, env: { PATH: `${node24}:${process.env.PATH}` } });
    expect(npm.exitCode, npm.stderr).toBe(0);
    const bin = join(prefix, 'bin', 'dbs');
    expect(existsSync(bin)).toBe(true);
    expect(lstatSync(bin).isSymbolicLink()).toBe(true);
    const home = join(prefix, 'home');
    // By name, from PATH, under the pinned Node.
    const v = await execa('dbs', ['--version'], { reject: false, env: { PATH: `${join(prefix, 'bin')}:${node24}:/usr/bin:/bin` }, extendEnv: false });
    expect(v.exitCode, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^dbs \d+\.\d+\.\d+/);
    const list = await execa('dbs', ['--home', home, '--json', 'plan', 'list'], { reject: false, env: { PATH: `${join(prefix, 'bin')}:${node24}:/usr/bin:/bin`, HOME: prefix }, extendEnv: false });
    expect(list.exitCode, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    // Under an older node first on PATH (the machine's /usr/bin/node is v20): exit 2, and why.
    const sys = await execa('/usr/bin/node', ['--version'], { reject: false });
    expect(sys.exitCode, 'this test needs the system node at /usr/bin/node').toBe(0);
    const [major, minor] = sys.stdout.replace(/^v/, '').split('.').map(Number) as [number, number];
    const old = major < 22 || (major === 22 && minor < 15);
    const r = await execa('dbs', ['--version'], { reject: false, env: { PATH: `${join(prefix, 'bin')}:/usr/bin:/bin` }, extendEnv: false });
    if (old) {
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`needs Node.js >= 22.16, this is ${sys.stdout.trim()}`);
    } else {
      expect(r.exitCode, r.stderr).toBe(0);
    }
  }, 120_000);
});
