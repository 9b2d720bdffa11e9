// Checks the options a user gave against what the engine declares for the backup type
// (its descriptor, src/engines/<kind>/descriptor.ts), before anything connects. One rule for every option of every
// engine: an option that does not apply is a usage error naming the option and the type.
import { DbsError } from '../errors.js';
import type { AnyEngineDescriptor, RestoreSpec, TypeSpec } from '../engines/descriptor.js';
import { descriptorOrThrow } from '../engines/registry.js';

/** The flags of a [flag, value] list that were given (value not undefined). */
export function presentFlags(f: ReadonlyArray<readonly [string, unknown]>): string[] {
  return f.filter(([, v]) => v !== undefined).map(([k]) => k);
}

function describeType(kind: string, type: string): string {
  return `a ${kind} ${type} backup`;
}

export function typeSpecOf(kind: string, type: string): { descriptor: AnyEngineDescriptor; spec: TypeSpec } {
  const descriptor = descriptorOrThrow(kind);
  const spec = descriptor.types[type as keyof AnyEngineDescriptor['types']];
  if (!spec) {
    throw new DbsError('INVALID_ARGUMENT', `--type ${JSON.stringify(type)} is not supported for ${kind} sources`, {
      hint: `use one of: ${Object.keys(descriptor.types).join(', ')}`,
    });
  }
  return { descriptor, spec };
}

/** Plan options (selection, chain options) given for a plan of this kind and type. */
export function checkPlanOptions(kind: string, type: string, given: readonly string[]): void {
  const { spec } = typeSpecOf(kind, type);
  const wrong = given.filter((f) => !(spec.planOptions as readonly string[]).includes(f));
  if (wrong.length > 0) {
    throw new DbsError('USAGE', `${wrong.join(', ')} ${wrong.length > 1 ? 'do' : 'does'} not apply to ${describeType(kind, type)} plan`, {
      hint: spec.planOptions.length ? `options of ${describeType(kind, type)} plan: ${spec.planOptions.join(', ')}` : `${describeType(kind, type)} plan takes no selection options; drop ${wrong.join(', ')}`,
      details: { options: wrong, sourceKind: kind, backupType: type },
    });
  }
}

/**
 * Restore flags given for a backup of this kind and type: exactly one target of the type's
 * targets, and only the type's options. Returns the type's restore spec.
 */
export function checkRestoreOptions(kind: string, type: string, given: readonly string[]): RestoreSpec {
  const { spec } = typeSpecOf(kind, type);
  const r = spec.restore;
  const allowed = new Set<string>([...r.targets, ...r.options]);
  const wrong = given.filter((f) => !allowed.has(f));
  const what = describeType(kind, type);
  if (wrong.length > 0) {
    throw new DbsError('USAGE', `${wrong.join(', ')} ${wrong.length > 1 ? 'do' : 'does'} not apply to restoring ${what}`, {
      hint: `restore it with ${r.targetHint}${r.options.length ? `; its options: ${r.options.join(', ')}` : ''}`,
      details: { options: wrong, sourceKind: kind, backupType: type },
    });
  }
  const targets = given.filter((f) => (r.targets as readonly string[]).includes(f));
  if (targets.length !== 1) {
    throw new DbsError('USAGE', `say where to restore ${what}: ${r.targetHint}`, {
      hint: 'dbs never restores into a default target',
      details: { sourceKind: kind, backupType: type },
    });
  }
  return r;
}
