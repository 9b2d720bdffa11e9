// The SQLite engine as core sees it, without loading it (see ../descriptor.ts). The same engine
// backs up dbs's own catalog: `--source catalog` (the `catalog` descriptor below).
import { decodeListSelection, jsonObject, wholeSelection, type EngineDescriptor, type TypeSpec } from '../descriptor.js';
import type { SqliteFacts, SqliteRestoreOptions, SqliteSelection } from './types.js';

const snapshot: TypeSpec = {
  planOptions: [],
  restore: { targets: ['--to'], options: ['--replace'], streamsIntoTarget: false, targetHint: '--to sqlite:///PATH' },
};

export const sqliteDescriptor: EngineDescriptor<SqliteSelection, SqliteFacts, SqliteRestoreOptions> = {
  kind: 'sqlite',
  title: 'SQLite',
  endpoint: { schemes: ['sqlite'], form: 'file' },
  doctor: true,
  defaultType: 'snapshot',
  types: { snapshot },
  tools: [],
  parseSelection(i) {
    return wholeSelection('sqlite', i);
  },
  decodeSelection: decodeListSelection,
  decodeFacts: jsonObject,
  // For file targets --yes is the consent to replace an existing file.
  parseRestore: (f) => ({ options: { replace: Boolean(f.replace) || f.yes }, renames: false }),
  async load() {
    const { SqliteEngine } = await import('./engine.js');
    return new SqliteEngine();
  },
};

/** dbs's own catalog, backed up by the SQLite engine and restored into a sqlite:// file. */
export const catalogDescriptor: EngineDescriptor<SqliteSelection, SqliteFacts, SqliteRestoreOptions> = {
  ...sqliteDescriptor,
  kind: 'catalog',
  title: 'the dbs catalog',
  endpoint: { schemes: [], form: 'file' },
  catalogSource: 'catalog',
  restoresInto: 'sqlite',
  doctor: false,
  parseSelection: (i) => wholeSelection('catalog', i),
};
