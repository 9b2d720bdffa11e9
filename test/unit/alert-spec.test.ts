// core/alerts.ts as `dbs apply` will use it: plain specs in, every problem out; rule parsing.
import { describe, expect, it } from 'vitest';
import { parseRule, parseTarget, validateAlertSpec, type AlertSpec } from '../../src/core/alerts.js';
import { signature } from '../../src/core/notify.js';

describe('validateAlertSpec', () => {
  it('a valid spec has no problems', () => {
    expect(validateAlertSpec({ name: 'a', plan: 'p', rules: ['failed', 'no-success-for 26h'], targets: ['webhook:https://example.com/h'], secretFrom: 'env:S' })).toEqual([]);
    expect(validateAlertSpec({ name: 'a', allPlans: true, rules: ['missed>5m'], targets: ['ping:https://hc-ping.com/x'] })).toEqual([]);
  });

  it('lists every problem at once, also of data that is not text (YAML)', () => {
    const spec = { name: '', plan: 'p', allPlans: true, rules: ['bogus', 42], targets: 'webhook:x', secretFrom: 'VAR' } as unknown as AlertSpec;
    const p = validateAlertSpec(spec);
    expect(p).toEqual([
      expect.stringMatching(/name is empty/),
      expect.stringMatching(/exclusive/),
      expect.stringMatching(/targets must be a list/),
      expect.stringMatching(/unknown rule/),
      expect.stringMatching(/a rule must be text/),
      expect.stringMatching(/env:VAR or file:PATH/),
    ]);
  });
});

describe('rules and targets', () => {
  it('parses each rule kind into its threshold', () => {
    expect(parseRule('failed')).toEqual({ kind: 'failed', text: 'failed' });
    expect(parseRule('missed')).toMatchObject({ kind: 'missed', graceMs: 600_000 });
    expect(parseRule('missed>2m')).toMatchObject({ kind: 'missed', graceMs: 120_000 });
    expect(parseRule('no-success-for 26h')).toMatchObject({ kind: 'no-success-for', ms: 26 * 3_600_000 });
    expect(parseRule('duration>1h30m')).toMatchObject({ kind: 'duration', ms: 5_400_000 });
    expect(parseRule('cpu>80%')).toMatchObject({ kind: 'cpu', pct: 80 });
    expect(parseRule('mem>2GiB')).toMatchObject({ kind: 'mem', bytes: 2 * 1024 ** 3 });
    expect(parseRule('out<1MiB/s')).toMatchObject({ kind: 'out', bytesPerSecond: 1024 ** 2 });
    for (const bad of ['cpu>0%', 'cpu>80', 'mem>-1GiB', 'out<0B/s', 'duration>', 'failed!', 'no-success-for']) expect(() => parseRule(bad), bad).toThrow();
  });

  it('targets: http(s) URLs only, absolute executable commands', () => {
    expect(parseTarget('webhook:https://example.com/x?y=1')).toEqual({ kind: 'webhook', url: 'https://example.com/x?y=1' });
    expect(parseTarget('command:/bin/sh')).toEqual({ kind: 'command', path: '/bin/sh' });
    expect(parseTarget('email:a@b.example')).toEqual({ kind: 'email', address: 'a@b.example' });
    for (const bad of ['webhook:javascript:alert(1)', 'ping:ftp://x/', 'command:/etc/passwd', 'command:sh', 'sms:+1']) expect(() => parseTarget(bad), bad).toThrow();
  });

  it('the signature is HMAC-SHA256 of the body, hex, with a sha256= prefix', () => {
    // RFC 4231 test case 2.
    expect(signature('Jefe', 'what do ya want for nothing?')).toBe('sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});
