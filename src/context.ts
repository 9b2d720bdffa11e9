// What a command receives: the core context (settings, catalog, signal, clock; see
// src/core/context.ts) plus the terminal side that core never sees: output, prompts and the
// exit code. Core's events are rendered here (commands/report.ts).
import type { Settings } from './config.js';
import { makeCoreContext, type Context } from './core/context.js';
import type { Output } from './output/output.js';
import type { Prompter } from './output/prompt.js';
import type { PoolWrapper } from './storage/wrap.js';
import type { Clock } from './store/catalog.js';
import { renderEvent } from './commands/report.js';

export interface CommandContext extends Context {
  readonly out: Output;
  readonly prompt: Prompter;
  /** Set by a command that printed its result but must still exit non-zero. */
  exitCode: number;
  close(): void;
}

export interface CommandContextInput {
  settings: Settings;
  out: Output;
  prompt: Prompter;
  signal: AbortSignal;
  clock: Clock;
  env: NodeJS.ProcessEnv;
  cwd: string;
  yes: boolean;
  poolWrappers?: readonly PoolWrapper[];
}

export function makeContext(p: CommandContextInput): CommandContext {
  const { out, prompt, ...rest } = p;
  const core = makeCoreContext({ ...rest, report: (e) => renderEvent(out, e) });
  return { ...core, out, prompt, exitCode: 0 };
}
