// bin/dbs.js refuses an unsupported Node.js before it imports anything that could crash on it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const shim = new URL('../../bin/dbs.js', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
const required = /const REQUIRED = \[(\d+), (\d+)\]/.exec(readFileSync(shim, 'utf8'));

/** Runs the shim under this Node, with process.versions.node replaced before it runs. */
function runAs(version: string) {
  const fake = `data:text/javascript,Object.defineProperty(process,"versions",{value:{...process.versions,node:${JSON.stringify(version)}}})`;
  return spawnSync(process.execPath, ['--import', fake, shim, '--version'], { encoding: 'utf8', env: { ...process.env, DBS_HOME: '/nonexistent' } });
}

describe('the Node.js version check of bin/dbs.js', () => {
  it('requires what package.json engines says', () => {
    expect(required, 'REQUIRED in bin/dbs.js').not.toBeNull();
    expect(pkg.engines.node).toBe(`>=${required![1]}.${required![2]}`);
  });

  it('an older Node prints the required version and exits 2, importing nothing', () => {
    const r = runAs('20.1.0');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^dbs: needs Node\.js >= 22\.16, this is v20\.1\.0 /);
    expect(r.stderr).toMatch(/hint: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('the required version itself runs', () => {
    const r = runAs(`${required![1]}.${required![2]}.0`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^dbs \d+\.\d+\.\d+ \(commit /);
  });

  // The machine's own older Node (Debian's v20), where there is one: the real crash the check replaces.
  const system = '/usr/bin/node';
  const systemMajor = existsSync(system) ? Number(execFileSync(system, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim()) : undefined;
  it.runIf(systemMajor !== undefined && systemMajor < Number(required?.[1]))(`the system ${system} (v${systemMajor}) is refused with exit 2`, () => {
    const r = spawnSync(system, [shim, 'plan', 'list'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/needs Node\.js >= 22\.16/);
    expect(r.stderr).not.toMatch(/TypeError/);
  });
});
