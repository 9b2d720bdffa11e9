// `dbs doctor`: what this machine has for each engine, and where dbs keeps its state.
import type { Context } from '../context.js';
import { ENGINE_KINDS, getEngine } from '../engines/registry.js';
import type { ToolInfo } from '../engines/types.js';
import { VERSION } from '../version.js';

export interface DoctorResult {
  dbs: string;
  node: string;
  home: string;
  configFile: string | null;
  catalog: { path: string; schemaVersion: number };
  engines: { kind: string; tools: ToolInfo[]; error?: string }[];
  ok: boolean;
}

export async function runDoctor(_o: object, ctx: Context): Promise<DoctorResult> {
  const catalog = ctx.catalog();
  const engines: DoctorResult['engines'] = [];
  for (const kind of ENGINE_KINDS.filter((k) => k !== 'catalog')) {
    try {
      const e = await getEngine(kind);
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
    ok: engines.every((e) => !e.error),
  };
}
