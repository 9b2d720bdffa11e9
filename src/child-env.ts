// The environment of every program dbs runs (dump and backup tools, redis-cli, zstd, a
// restored mysqld): an allow-list, not dbs's own environment. dbs runs with passwords of
// other plans in its environment (--password-env VAR), cloud keys (AWS_SECRET_ACCESS_KEY)
// and whatever the operator's shell holds; no tool needs them. Credentials a tool does need
// are added by its engine: MySQL tools read an option file (--defaults-file), redis-cli
// gets REDISCLI_AUTH.

/** Locale, time zone, where to find programs and scratch space; nothing else passes. */
const ALLOWED = /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|LD_LIBRARY_PATH)$/;

export function childEnv(extra: Record<string, string> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) if (v !== undefined && ALLOWED.test(k)) env[k] = v;
  return { ...env, ...extra };
}
