// Durations a user gives: "90s", "15m", "26h", "7d", "2w", "1h30m" (list ages, alert rules).
import { DbsError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a duration such as "26h" or "1h30m"; a unit is required; exit 2 naming the flag. */
export function parseDuration(s: string, flag: string): number {
  const t = s.trim().toLowerCase();
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/g)];
  const whole = parts.map((p) => p[0]).join('').replace(/\s+/g, '') === t.replace(/\s+/g, '') && parts.length > 0;
  const ms = parts.reduce((n, p) => n + Number(p[1]) * UNIT_MS[p[2]], 0);
  if (!whole || !Number.isFinite(ms) || ms <= 0) {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(s)} is not a duration`, { hint: 'a number with a unit (s, m, h, d, w), e.g. 30m, 26h, 7d, 1h30m' });
  }
  return ms;
}
