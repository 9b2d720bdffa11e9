// `dbs doctor`: what this machine has for each engine, and where dbs keeps its state.
import type { Context } from './context.js';
import { DESCRIPTORS } from '../engines/registry.js';
import type { ToolInfo } from '../engines/types.js';
import { VERSION } from '../version.js';
import { findOnPath } from '../which.js';
import { versionOutput } from '../pipeline/child.js';

export interface DoctorResult {
  dbs: string;
  node: string;
  home: string;
  configFile: string | null;
  catalog: { path: string; schemaVersion: number };
  engines: { kind: string; tools: ToolInfo[]; error?: string }[];
  /** Programs the backup data path uses when they are there; without them it is slower, not broken. */
  dataPath: ToolInfo[];
  ok: boolean;
}

const DATA_PATH_TOOLS: [string, string][] = [
  ['zstd', 'zstd compression in its own process (else in Node, slower)'],
  ['pzstd', 'framed zstd: the dump check reads only the first and last frames (else a full decompressed copy)'],
  ['stdbuf', 'large output buffers for mariadb-dump/mysqldump (else one write per 4 KiB)'],
  ['setpriv', 'makes every program dbs starts die with dbs (else recovery ends them later), and lets pzstd write local pool files itself'],
];

async function describe(name: string, purpose: string): Promise<ToolInfo> {
  const path = findOnPath(name);
  if (!path) return { name, found: false, purpose };
  return { name, path, found: true, version: /\d+\.\d+(\.\d+)?/.exec(await versionOutput(path))?.[0], purpose };
}

export async function runDoctor(_o: object, ctx: Context): Promise<DoctorResult> {
  const catalog = ctx.catalog();
  const engines: DoctorResult['engines'] = [];
  for (const { kind, doctor, load } of DESCRIPTORS) {
    if (!doctor) continue;
    try {
      const e = await load();
      engines.push({ kind, tools: await e.tools() });
    } catch (err) {
      engines.push({ kind, tools: [], error: (err as Error).message });
    }
  }
  return {
    dbs: VERSION,
    node: process.version,
    home: ctx.settings.home,
    configFile: ctx.settings.configFile ?? null,
    catalog: { path: catalog.path, schemaVersion: catalog.schemaVersion() },
    engines,
    dataPath: await Promise.all(DATA_PATH_TOOLS.map(([name, purpose]) => describe(name, purpose))),
    ok: engines.every((e) => !e.error),
  };
}
