// The one place that maps a source kind to its engine; engines load lazily.
import { DbsError } from '../errors.js';
import type { Engine, SourceKind } from './types.js';

export const ENGINE_KINDS: readonly SourceKind[] = ['mysql', 'redis', 'sqlite', 'catalog'];

export async function getEngine(kind: SourceKind | string): Promise<Engine> {
  switch (kind) {
    case 'mysql': {
      const { MysqlEngine } = await import('./mysql/engine.js');
      return new MysqlEngine();
    }
    case 'redis': {
      const { RedisEngine } = await import('./redis/engine.js');
      return new RedisEngine();
    }
    case 'sqlite':
    case 'catalog': {
      const { SqliteEngine } = await import('./sqlite/engine.js');
      return new SqliteEngine();
    }
    default:
      throw new DbsError('INVALID_ARGUMENT', `no engine for ${JSON.stringify(kind)} sources yet`, { hint: `supported: ${ENGINE_KINDS.join(', ')}` });
  }
}
