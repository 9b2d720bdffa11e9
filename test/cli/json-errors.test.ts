// Scripts that pass --json get every error as one JSON line on stderr, usage errors found by
// the argument parser included (unknown options, missing arguments, bad choices, unknown
// commands, numbers out of range, repeated options): exit 2, nothing on stdout.
import { describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

const cases: [string, string[], RegExp][] = [
  ['an unknown option', ['plan', 'create', 'p', '--bogus'], /unknown option '--bogus'/],
  ['a missing argument', ['backup', 'restore'], /missing required argument 'backup'/],
  ['an unknown command', ['nosuch'], /unknown command 'nosuch'/],
  ['an invalid choice', ['plan', 'create', 'p', '--compress', 'bogus'], /argument 'bogus' is invalid/],
  ['an option missing its value', ['pool', 'bind', 'p', '--type'], /argument missing/],
  ['a number out of range', ['daemon', '--concurrency', '0'], /concurrency/],
  ['too many arguments', ['pool', 'list', 'extra'], /too many arguments/],
];

describe('usage errors under --json', () => {
  for (const [what, args, message] of cases) {
    it(`${what}: one JSON error line, exit 2, empty stdout`, async () => {
      const home = tempDir('home');
      const r = await dbs(['--json', ...args], { home });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ type: 'error', code: 'INVALID_ARGUMENT', exitCode: 2, message: expect.stringMatching(message) });
    });
  }

  it('without --json the same errors stay plain text', async () => {
    for (const [, args, message] of cases) {
      const r = await dbs(args, { home: tempDir('home') });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr).toMatch(message);
      expect(() => JSON.parse(r.stderr)).toThrow();
    }
  });
});
