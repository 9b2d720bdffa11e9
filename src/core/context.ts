// What a use case receives instead of process globals: settings, the catalog (opened on first
// use), the abort signal, the clock, and `report` for what it has to tell. No output and no
// prompts: core reports typed events (./events.ts) and takes decisions and secrets as input;
// the command side (src/context.ts) renders and asks. Fakes enter here.
import type { Settings } from '../config.js';
import type { PoolWrapper } from '../storage/wrap.js';
import { Catalog, type Clock } from '../store/catalog.js';
import type { Report } from './events.js';

export interface Context {
  readonly settings: Settings;
  readonly signal: AbortSignal;
  readonly clock: Clock;
  /** The environment, for values a user names explicitly (--secret-key-env VAR). */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** --yes: the user consented up front (restore over the source, replace a target file). */
  readonly yes: boolean;
  /** Driver wrappers applied to every pool core opens (core/pools.ts), first innermost: tests inject faults. */
  readonly poolWrappers?: readonly PoolWrapper[];
  catalog(): Catalog;
  /** Tells what happened, as a typed event; the caller decides whether and how it is shown. */
  readonly report: Report;
}

export interface OwnedContext extends Context {
  /** Closes the catalog if it was opened. */
  close(): void;
}

export function makeCoreContext(p: Omit<Context, 'catalog'>): OwnedContext {
  let catalog: Catalog | undefined;
  return {
    ...p,
    catalog() {
      if (!catalog) {
        catalog = Catalog.open(p.settings.home, p.clock);
        const t = catalog.homeState.tightened;
        if (t) p.report({ type: 'home.tightened', home: p.settings.home, from: t.from, to: t.to });
      }
      return catalog;
    },
    close() {
      catalog?.close();
      catalog = undefined;
    },
  };
}
