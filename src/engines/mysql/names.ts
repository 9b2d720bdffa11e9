// MySQL/MariaDB names checked before anything connects (exit 2 instead of a server error).
import { DbsError } from '../../errors.js';

/** MariaDB allows user names of up to 80 characters (MySQL 32). */
export const MYSQL_USER_MAX = 80;

/**
 * A MySQL/MariaDB database or table name: 1-64 characters, no NUL, not ending in a space
 * (the server's rules); refused here with exit 2 instead of failing at the server.
 */
export function mysqlIdentifier(name: string, what: 'database' | 'table', flag: string): string {
  const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
  if (name.length === 0 || name.length > 64 || name.includes('\0') || name.endsWith(' ')) {
    throw new DbsError('INVALID_NAME', `${flag}: the MySQL ${what} name ${shown} is not valid (${name.length} characters)`, {
      hint: `a ${what} name has 1-64 characters and does not end with a space`,
    });
  }
  return name;
}

/** A db.table name of a flag. */
export function isTableName(t: string): boolean {
  return /^[^.\s]+\.[^.\s]+$/.test(t);
}
