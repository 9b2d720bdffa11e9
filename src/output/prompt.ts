// Prompts (@inquirer/prompts), only on a TTY without --yes. Loaded lazily.
import type { Readable, Writable } from 'node:stream';

export interface Prompter {
  /** False when no prompt may be shown (no TTY, --yes, --json): callers then need a flag. */
  readonly enabled: boolean;
  password(message: string): Promise<string>;
  input(message: string, defaultValue?: string): Promise<string>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
}

export function makePrompter(enabled: boolean, input: Readable, output: Writable, signal: AbortSignal): Prompter {
  const ctx = { input, output, signal, clearPromptOnDone: false };
  return {
    enabled,
    async password(message) {
      const { password } = await import('@inquirer/prompts');
      return password({ message, mask: true }, ctx);
    },
    async input(message, defaultValue) {
      const { input: ask } = await import('@inquirer/prompts');
      return ask({ message, default: defaultValue }, ctx);
    },
    async confirm(message, defaultValue = false) {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: defaultValue }, ctx);
    },
  };
}
