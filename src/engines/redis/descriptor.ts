// The Redis engine as core sees it, without loading it (see ../descriptor.ts).
import { DbsError } from '../../errors.js';
import { decodeListSelection, jsonObject, PLAN_PW, PW, splitList, type EngineDescriptor } from '../descriptor.js';
import type { RedisFacts, RedisRestoreOptions, RedisSelection } from './types.js';
import { redisDbIndex } from './names.js';

export const redisDescriptor: EngineDescriptor<RedisSelection, RedisFacts, RedisRestoreOptions> = {
  kind: 'redis',
  title: 'Redis',
  endpoint: {
    schemes: ['redis'],
    form: 'server',
    defaultPort: 6379,
    check(ep, flag) {
      if (ep.path !== undefined) redisDbIndex(ep.path, flag);
    },
  },
  doctor: true,
  defaultType: 'logical',
  types: {
    logical: {
      planOptions: ['--databases', '--match', ...PLAN_PW],
      restore: { targets: ['--to'], options: ['--replace', '--flush', ...PW], streamsIntoTarget: true, targetHint: '--to redis://HOST:PORT/DB' },
    },
    snapshot: {
      planOptions: [...PLAN_PW],
      restore: { targets: ['--to-dir'], options: ['--replace'], streamsIntoTarget: false, targetHint: '--to-dir DIR (dump.rdb is written there)' },
    },
  },
  tools: ['redis-cli', 'redis-check-rdb'],
  parseSelection(i) {
    const databases = splitList(i.databases);
    const tables = splitList(i.tables);
    if (i.databases !== undefined && databases.length === 0) throw new DbsError('INVALID_ARGUMENT', '--databases is empty', { hint: 'e.g. --databases shop,crm' });
    if (i.allDatabases && (databases.length || tables.length)) throw new DbsError('USAGE', '--all-databases cannot be combined with --databases or --tables', { hint: 'choose one' });
    for (const d of databases) redisDbIndex(d, '--databases');
    if (tables.length) throw new DbsError('USAGE', '--tables applies to MySQL sources only', { hint: 'use --match PATTERN for Redis' });
    return { databases, all: databases.length === 0, tables: [], ...(i.match ? { match: i.match } : {}) };
  },
  decodeSelection(json, where) {
    const s = decodeListSelection(json, where);
    const match = jsonObject(json, where).match;
    if (match !== undefined && typeof match !== 'string') throw new DbsError('INTERNAL', `${where} is not valid: match is not a pattern`);
    return { ...s, ...(match !== undefined ? { match } : {}) };
  },
  decodeFacts: jsonObject,
  parseRestore(f) {
    return {
      options: { replace: Boolean(f.replace), flush: Boolean(f.flush), ...(f.toDir !== undefined ? { toPath: f.toDir } : {}) },
      renames: false,
    };
  },
  async load() {
    const { RedisEngine } = await import('./engine.js');
    return new RedisEngine();
  },
};
