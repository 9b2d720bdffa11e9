// A secret for a command: from --<flag>-env / --<flag>-file (core/credentials.ts), else asked
// on the terminal when a prompt may be shown. Core only ever receives the secret.
import type { CommandContext } from '../context.js';
import { secretFromFlags, type SecretFlags } from '../core/credentials.js';
import { DbsError } from '../errors.js';
import { Secret } from '../secret.js';

/** Returns undefined when nothing was given, nothing typed and `required` is false. */
export async function resolveSecret(
  ctx: CommandContext,
  flags: SecretFlags,
  o: { flag: string; what: string; required: boolean; promptMessage?: string },
): Promise<Secret | undefined> {
  const given = secretFromFlags(ctx, flags, o);
  if (given) return given;
  if (ctx.prompt.enabled) {
    const v = await ctx.prompt.password(o.promptMessage ?? `${o.what}:`);
    if (!v && o.required) throw new DbsError('USAGE', `no ${o.what} given`, { hint: `pass --${o.flag}-env VAR or --${o.flag}-file F` });
    return v ? new Secret(v) : undefined;
  }
  if (o.required) {
    throw new DbsError('USAGE', `the ${o.what} is missing`, {
      hint: `pass --${o.flag}-env VAR or --${o.flag}-file F (prompting needs a terminal)`,
    });
  }
  return undefined;
}
