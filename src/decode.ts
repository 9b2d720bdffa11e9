// Small hand-written decoders for data dbs reads back from its catalog and its pools (JSON
// columns, manifests): each returns a typed value or throws a DbsError (INVALID_RECORD) that
// names the object and the field, instead of a cast that lets a bad record fail later.
import { DbsError } from './errors.js';

export type JsonObject = Record<string, unknown>;

export function invalid(what: string, problem: string): DbsError {
  return new DbsError('INVALID_RECORD', `${what}: ${problem}`, {
    hint: 'the record was changed outside dbs or by a newer dbs; restore the catalog from a copy or recreate the object',
  });
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}` : `a ${typeof v}`;
}

export function object(v: unknown, what: string): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(what, `expected an object, got ${describe(v)}`);
  return v as JsonObject;
}

export function array(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(what, `expected an array, got ${describe(v)}`);
  return v;
}

export function string(o: JsonObject, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw invalid(what, `${key}: expected a string, got ${describe(v)}`);
  return v;
}

export function optString(o: JsonObject, key: string, what: string): string | undefined {
  return o[key] === undefined ? undefined : string(o, key, what);
}

export function nullableString(o: JsonObject, key: string, what: string): string | null {
  return o[key] === null ? null : string(o, key, what);
}

export function boolean(o: JsonObject, key: string, what: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') throw invalid(what, `${key}: expected true or false, got ${describe(v)}`);
  return v;
}

export function optBoolean(o: JsonObject, key: string, what: string): boolean | undefined {
  return o[key] === undefined ? undefined : boolean(o, key, what);
}

/** A finite number, at least `min` when given; integers only with `integer`. */
export function number(o: JsonObject, key: string, what: string, opts: { min?: number; integer?: boolean } = {}): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min)) {
    throw invalid(what, `${key}: expected ${opts.integer ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got ${describe(v)}${typeof v === 'number' ? ` ${v}` : ''}`);
  }
  return v;
}

export function optNumber(o: JsonObject, key: string, what: string, opts: { min?: number; integer?: boolean } = {}): number | undefined {
  return o[key] === undefined ? undefined : number(o, key, what, opts);
}

export function oneOf<T extends string>(o: JsonObject, key: string, values: readonly T[], what: string): T {
  const v = string(o, key, what);
  if (!(values as readonly string[]).includes(v)) throw invalid(what, `${key}: expected one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function stringArray(o: JsonObject, key: string, what: string): string[] {
  const a = array(o[key], `${what}: ${key}`);
  for (const x of a) if (typeof x !== 'string') throw invalid(what, `${key}: expected strings, got ${describe(x)}`);
  return a as string[];
}
