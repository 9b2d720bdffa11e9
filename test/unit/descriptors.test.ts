// Engine descriptors: what core reads instead of branching on engine kinds. Checked here
// without any server: each descriptor agrees with its engine, decodes what the catalog holds,
// and refuses what it cannot have written.
import { describe, expect, it } from 'vitest';
import { parseEndpoint } from '../../src/core/endpoints.js';
import { DESCRIPTORS, descriptorOrThrow } from '../../src/engines/registry.js';
import { DbsError } from '../../src/errors.js';

function errorOf(fn: () => unknown): DbsError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DbsError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('engine descriptors', () => {
  it.each(DESCRIPTORS.map((d) => [d.kind, d] as const))('%s: declares the backup types its engine implements, and a valid chain', async (_kind, d) => {
    const engine = await d.load();
    expect(Object.keys(d.types).sort()).toEqual([...engine.types].sort());
    expect(d.types[d.defaultType]).toBeDefined();
    for (const spec of Object.values(d.types)) {
      if (spec?.chain?.role === 'increment') expect(d.types[spec.chain.full]?.chain).toEqual({ role: 'full' });
      expect(spec?.restore.targets.length).toBeGreaterThan(0);
    }
  });

  it('every URL scheme belongs to one engine, and a parsed URL names that engine', () => {
    const schemes = DESCRIPTORS.flatMap((d) => d.endpoint.schemes);
    expect(new Set(schemes).size).toBe(schemes.length);
    expect(parseEndpoint('mariadb://db1').url).toBe('mysql://root@db1:3306');
    expect(errorOf(() => parseEndpoint('postgres://h')).hint).toBe(`use one of ${schemes.join(', ')}`);
  });

  it('a selection round-trips through the catalog shape; a damaged one is refused, not cast', () => {
    const mysql = descriptorOrThrow('mysql');
    const sel = mysql.parseSelection({ databases: 'shop,crm', tables: 'x.t' }, 'logical');
    expect(mysql.decodeSelection(JSON.parse(JSON.stringify(sel)), 'plan p')).toEqual({ databases: ['shop', 'crm'], all: false, tables: ['x.t'] });
    expect(mysql.parseSelection({}, 'physical')).toEqual({ databases: [], all: true, tables: [] });
    const redis = descriptorOrThrow('redis');
    expect(redis.decodeSelection({ databases: ['0'], all: false, tables: [], match: 'user:*' }, 'plan r')).toEqual({ databases: ['0'], all: false, tables: [], match: 'user:*' });
    for (const [d, bad] of [
      [mysql, { databases: 'shop', all: false, tables: [] }],
      [mysql, { databases: [], tables: [] }],
      [mysql, null],
      [redis, { databases: [], all: true, tables: [], match: 3 }],
    ] as const) {
      const e = errorOf(() => d.decodeSelection(bad, 'the selection of plan p'));
      expect(e.code).toBe('INTERNAL');
      expect(e.message).toMatch(/^the selection of plan p is not valid/);
    }
    expect(errorOf(() => mysql.decodeFacts({ databases: 'shop' }, 'the facts of backup b')).message).toMatch(/databases is not a list/);
  });

  it('restore options are made and checked by the engine: a rename must name a database of the backup', () => {
    const mysql = descriptorOrThrow('mysql');
    const backup = { id: 'b-1', type: 'logical' as const, selection: { databases: ['shop'], all: false, tables: [] }, facts: { databases: ['shop'], tables: ['shop.orders'] } };
    expect(mysql.parseRestore({ database: 'shop:shop2', yes: false }, backup)).toEqual({ options: { renameDatabase: { from: 'shop', to: 'shop2' }, replace: false }, renames: true });
    expect(errorOf(() => mysql.parseRestore({ database: 'crm:x', yes: false }, backup)).code).toBe('NOT_FOUND');
    expect(errorOf(() => mysql.parseRestore({ tables: 'shop.nope', yes: false }, backup)).message).toBe('backup b-1 holds no table shop.nope');
    // A file target: --yes is the consent to replace the file.
    const sqlite = descriptorOrThrow('sqlite');
    expect(sqlite.parseRestore({ yes: true }, { ...backup, type: 'snapshot' }).options).toEqual({ replace: true });
  });
});
