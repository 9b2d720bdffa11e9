// What a command receives instead of process globals: settings, the catalog (opened on
// first use), output, prompts, the abort signal and the clock. Fakes enter here.
import type { Settings } from './config.js';
import type { Output } from './output/output.js';
import type { Prompter } from './output/prompt.js';
import type { PoolWrapper } from './storage/wrap.js';
import { Catalog, type Clock } from './store/catalog.js';

export interface Context {
  readonly settings: Settings;
  readonly out: Output;
  readonly prompt: Prompter;
  readonly signal: AbortSignal;
  readonly clock: Clock;
  /** The environment, for values a user names explicitly (--secret-key-env VAR). */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** --yes: assume yes to confirmations. */
  readonly yes: boolean;
  /** Driver wrappers applied to every pool core opens (core/pools.ts), first innermost: tests inject faults. */
  readonly poolWrappers?: readonly PoolWrapper[];
  catalog(): Catalog;
  /** Set by a command that printed its result but must still exit non-zero. */
  exitCode: number;
  close(): void;
}

export function makeContext(p: Omit<Context, 'catalog' | 'close' | 'exitCode'>): Context {
  let catalog: Catalog | undefined;
  return {
    ...p,
    exitCode: 0,
    catalog() {
      if (!catalog) {
        catalog = Catalog.open(p.settings.home, p.clock);
        const t = catalog.homeState.tightened;
        if (t) p.out.warn(`the dbs home ${p.settings.home} was readable by others (mode ${t.from.toString(8).padStart(4, '0')}); changed it to ${t.to.toString(8).padStart(4, '0')}: it holds passwords and keys`);
      }
      return catalog;
    },
    close() {
      catalog?.close();
      catalog = undefined;
    },
  };
}
