// Prompts (@inquirer/prompts), only on a TTY without --yes. Loaded lazily.
import type { Readable, Writable } from 'node:stream';

export interface Prompter {
  /** False when no prompt may be shown (no TTY, --yes, --json): callers then need a flag. */
  readonly enabled: boolean;
  password(message: string): Promise<string>;
  input(message: string, defaultValue?: string): Promise<string>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
}

/**
 * `enabled` and `input` are asked for only when a command wants to prompt: the first read of
 * process.stdin makes its stream (net or tty), a cost every short command would pay for nothing.
 */
export function makePrompter(enabled: () => boolean, input: () => Readable, output: Writable, signal: AbortSignal): Prompter {
  let on: boolean | undefined;
  const ctx = () => ({ input: input(), output, signal, clearPromptOnDone: false });
  return {
    get enabled() {
      return (on ??= enabled());
    },
    async password(message) {
      const { password } = await import('@inquirer/prompts');
      return password({ message, mask: true }, ctx());
    },
    async input(message, defaultValue) {
      const { input: ask } = await import('@inquirer/prompts');
      return ask({ message, default: defaultValue }, ctx());
    },
    async confirm(message, defaultValue = false) {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: defaultValue }, ctx());
    },
  };
}
