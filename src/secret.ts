// A secret value that prints as redacted everywhere (toString, JSON, util.inspect, template
// strings). Call reveal() only at the one place that hands it to a client library or a child
// process environment.

/** util.inspect.custom, without loading node:util (its module facade is a cost of every start-up). */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

export const REDACTED = '***';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get isEmpty(): boolean {
    return this.#value.length === 0;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [INSPECT](): string {
    return `Secret(${REDACTED})`;
  }
}

/**
 * Removes every occurrence of the given secrets from a text (an error message from a library,
 * a child's stderr). Short values are skipped: redacting "a" would mangle every message.
 */
export function redactText(text: string, secrets: Iterable<Secret | string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    const v = s instanceof Secret ? s.reveal() : s;
    if (!v || v.length < 4) continue;
    out = out.split(v).join(REDACTED);
  }
  return out;
}
