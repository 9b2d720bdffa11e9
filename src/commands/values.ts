// Option values parsed the same way by commander (commands/options.ts) and by the fast path of
// the short commands (commands/short.ts), which loads no commander.
import { DbsError } from '../errors.js';

export interface NumberSpec {
  min: number;
  max: number;
  /** Whole numbers only (default true). */
  integer?: boolean;
  /** Example for the hint, e.g. "--limit 20". */
  example?: string;
}

/** Parses a numeric option value: a plain decimal number within [min, max]; else exit 2 naming the flag. */
export function parseNumber(value: string, flag: string, spec: NumberSpec): number {
  const integer = spec.integer ?? true;
  const s = value.trim();
  const ok = integer ? /^\d+$/.test(s) : /^\d+(\.\d+)?$/.test(s);
  const n = ok ? Number(s) : NaN;
  if (!ok || !Number.isFinite(n) || n < spec.min || n > spec.max || (integer && !Number.isSafeInteger(n))) {
    const what = integer ? 'a whole number' : 'a number';
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)} must be ${what} from ${spec.min} to ${spec.max}`, {
      hint: `e.g. ${spec.example ?? `${flag} ${Math.max(spec.min, Math.min(spec.max, 1))}`}`,
    });
  }
  return n;
}
