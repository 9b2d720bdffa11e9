// One error type for everything dbs reports to a user. Each error has a stable code (scripts
// may match on it), an exit code from the documented table, a message that names the object,
// and a hint that says how to fix it. Only src/main.ts turns these into a process exit.

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  locked: 5,
  unreachable: 6,
  auth: 7,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

// Stable error codes, grouped by the exit code they map to. Add codes; never rename them.
const codes = {
  FAILED: ExitCode.failure,
  INTERNAL: ExitCode.failure,
  BACKUP_FAILED: ExitCode.failure,
  RESTORE_FAILED: ExitCode.failure,
  VERIFY_FAILED: ExitCode.failure,
  COPY_FAILED: ExitCode.failure,
  /** A delete that could not remove every copy (a pool did not answer): the rest stays "deleting" and is retried. */
  DELETE_PENDING: ExitCode.failure,
  TOOL_MISSING: ExitCode.failure,
  POOL_CHECK_FAILED: ExitCode.failure,
  IO_ERROR: ExitCode.failure,
  INVALID_RECORD: ExitCode.failure,
  /** A secret given by reference (--password-from, --secret-key-from) could not be read at its use: variable unset or empty, file missing, unreadable or empty. */
  SECRET_UNAVAILABLE: ExitCode.failure,
  USAGE: ExitCode.usage,
  INVALID_ARGUMENT: ExitCode.usage,
  INVALID_CONFIG: ExitCode.usage,
  INVALID_NAME: ExitCode.usage,
  INVALID_PATH: ExitCode.usage,
  /** An encrypted backup was to be read without an identity (--identity-file, DBS_IDENTITY_FILE). */
  IDENTITY_REQUIRED: ExitCode.usage,
  NOT_FOUND: ExitCode.notFound,
  POOL_NOT_FOUND: ExitCode.notFound,
  PLAN_NOT_FOUND: ExitCode.notFound,
  BACKUP_NOT_FOUND: ExitCode.notFound,
  BACKUP_MISSING: ExitCode.notFound,
  TASK_NOT_FOUND: ExitCode.notFound,
  RESTORE_NOT_FOUND: ExitCode.notFound,
  OBJECT_NOT_FOUND: ExitCode.notFound,
  SOURCE_NOT_FOUND: ExitCode.notFound,
  ALREADY_EXISTS: ExitCode.conflict,
  REFUSED: ExitCode.conflict,
  IN_USE: ExitCode.conflict,
  LOCKED: ExitCode.locked,
  POOL_UNREACHABLE: ExitCode.unreachable,
  SOURCE_UNREACHABLE: ExitCode.unreachable,
  POOL_AUTH: ExitCode.auth,
  SOURCE_AUTH: ExitCode.auth,
  PERMISSION_DENIED: ExitCode.auth,
  /** The identity given is not one of the recipients an encrypted backup was encrypted to. */
  IDENTITY_MISMATCH: ExitCode.auth,
  INTERRUPTED: ExitCode.interrupted,
} as const satisfies Record<string, ExitCodeValue>;

export type ErrorCode = keyof typeof codes;

/** The documented exit code of an error code (for results that carry an error instead of throwing it). */
export function exitCodeOf(code: ErrorCode): ExitCodeValue {
  return codes[code];
}

export interface DbsErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra machine-readable facts for --json (never secrets). */
  details?: Record<string, unknown>;
}

export class DbsError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: DbsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DbsError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): ExitCodeValue {
    return codes[this.code];
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
      exitCode: this.exitCode,
    };
  }
}

export function isDbsError(e: unknown): e is DbsError {
  return e instanceof DbsError;
}

export function exitCodeFor(code: ErrorCode): ExitCodeValue {
  return codes[code];
}

/** True when the error (or one of its causes) comes from an AbortSignal. */
export function isAbort(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 8; depth++) {
    const err = cur as { name?: string; code?: string; cause?: unknown };
    if (err.name === 'AbortError' || err.code === 'ABORT_ERR') return true;
    if (err instanceof DbsError && err.code === 'INTERRUPTED') return true;
    cur = err.cause;
  }
  return false;
}

/** A short, single-line description of any thrown value, for logs and task records. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
