// The directory engine as core sees it, without loading it (see ../descriptor.ts):
// `--source dir:///ABSOLUTE/PATH`, types snapshot (a full image of the tree) and incremental
// (what changed since the newest backup of its chain), restored with --to-dir.
import { DbsError } from '../../errors.js';
import { jsonObject, stringList, type EngineDescriptor, type PlanOptionFlag, type SelectionFlags, type TypeSpec } from '../descriptor.js';
import type { BackupType } from '../types.js';
import type { DirFacts, DirRestoreOptions, DirSelection } from './types.js';

const SELECT: readonly PlanOptionFlag[] = ['--include', '--exclude', '--one-file-system', '--skip-unreadable'];
const restore = { targets: ['--to-dir'], options: ['--replace', '--path'], streamsIntoTarget: false, targetHint: '--to-dir DIR (a new or empty directory; --replace over an existing tree)' } as const;

const types: Partial<Record<BackupType, TypeSpec>> = {
  snapshot: { planOptions: SELECT, chain: { role: 'full' }, restore },
  incremental: { planOptions: [...SELECT, '--base-plan', '--auto-full'], chain: { role: 'increment', full: 'snapshot' }, readsParent: true, restore },
};

function globs(v: string[] | undefined, flag: string): string[] {
  for (const g of v ?? []) {
    if (g.trim() === '' || g.includes('\0')) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(g)} is not a glob`, { hint: `e.g. ${flag} '*.log' or ${flag} 'cache/**'` });
  }
  return (v ?? []).map((g) => g.replace(/^\.\//, '').replace(/\/+$/, ''));
}

function parseSelection(i: SelectionFlags): DirSelection {
  if (i.databases !== undefined || i.tables !== undefined || i.allDatabases || i.match !== undefined) {
    throw new DbsError('USAGE', '--databases/--tables/--match do not apply to dir sources', { hint: 'choose paths with --include/--exclude' });
  }
  return { include: globs(i.include, '--include'), exclude: globs(i.exclude, '--exclude'), oneFileSystem: Boolean(i.oneFileSystem), skipUnreadable: Boolean(i.skipUnreadable) };
}

function decodeSelection(json: unknown, where: string): DirSelection {
  const o = jsonObject(json, where);
  return { include: stringList(o.include ?? [], where, 'include'), exclude: stringList(o.exclude ?? [], where, 'exclude'), oneFileSystem: o.oneFileSystem === true, skipUnreadable: o.skipUnreadable === true };
}

/** A --path of a restore or ls: relative to the tree's root, no "..". */
export function cleanPath(p: string, flag = '--path'): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..') || p.includes('\0')) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(p)} must not contain ".."`, { hint: `a path inside the backed-up tree, e.g. ${flag} etc/app` });
  if (parts.length === 0) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(p)} names the whole tree`, { hint: `drop ${flag} to restore everything` });
  return parts.join('/');
}

export const dirDescriptor: EngineDescriptor<DirSelection, DirFacts, DirRestoreOptions> = {
  kind: 'dir',
  title: 'directory',
  endpoint: { schemes: ['dir'], form: 'file' },
  doctor: true,
  defaultType: 'snapshot',
  types,
  tools: [],
  parseSelection,
  decodeSelection,
  decodeFacts: (json, where) => jsonObject(json, where) as DirFacts,
  parseRestore: (f) => ({ options: { replace: Boolean(f.replace), paths: (f.paths ?? []).map((p) => cleanPath(p)) }, renames: false }),
  async load() {
    const { DirEngine } = await import('./engine.js');
    return new DirEngine();
  },
};
