// The engines: one line each. A descriptor loads without its engine (see descriptor.ts);
// `load()` imports the engine on first use.
import { DbsError } from '../errors.js';
import type { AnyEngineDescriptor } from './descriptor.js';
import { dirDescriptor } from './dir/descriptor.js';
import { bucketDescriptor } from './bucket/descriptor.js';
import { mysqlDescriptor } from './mysql/descriptor.js';
import { redisDescriptor } from './redis/descriptor.js';
import { catalogDescriptor, sqliteDescriptor } from './sqlite/descriptor.js';

export const DESCRIPTORS: readonly AnyEngineDescriptor[] = [
  mysqlDescriptor,
  redisDescriptor,
  sqliteDescriptor,
  catalogDescriptor,
  dirDescriptor,
  bucketDescriptor,
];

export const ENGINE_KINDS: readonly string[] = DESCRIPTORS.map((d) => d.kind);

export function descriptorOf(kind: string): AnyEngineDescriptor | undefined {
  return DESCRIPTORS.find((d) => d.kind === kind);
}

export function descriptorOrThrow(kind: string): AnyEngineDescriptor {
  const d = descriptorOf(kind);
  if (!d) throw new DbsError('INVALID_ARGUMENT', `no engine for ${JSON.stringify(kind)} sources yet`, { hint: `supported: ${ENGINE_KINDS.join(', ')}` });
  return d;
}

/** The descriptor of a URL scheme (without the colon). */
export function descriptorOfScheme(scheme: string): AnyEngineDescriptor | undefined {
  return DESCRIPTORS.find((d) => d.endpoint.schemes.includes(scheme));
}

/** The engine of a source kind, imported on first use. */
export function getEngine(kind: string): ReturnType<AnyEngineDescriptor['load']> {
  return descriptorOrThrow(kind).load();
}
