// node-cron, loaded on first use (validation at plan create/update, expressions that
// core/cron-fields.ts does not parse, and the matcher for L/W/#). A read-only command over simple
// schedules never loads it. The executable's build (scripts/build-exe.mjs) replaces this module
// with a static import of the bundled node-cron.
import { createRequire } from 'node:module';
import type * as NodeCron from 'node-cron';

let lib: typeof NodeCron | undefined;

export function loadCron(): typeof NodeCron {
  return (lib ??= createRequire(import.meta.url)('node-cron') as typeof NodeCron);
}
