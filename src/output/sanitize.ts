// Human output shows user- and server-supplied text (names, remarks, URLs, error messages
// from servers and tools) without letting it drive the terminal: control characters become
// visible escapes (ESC -> \x1b), so a remark cannot clear the screen, retitle the window,
// move the cursor or forge lines. --json output is not touched (JSON escapes them itself).

// C0 controls but tab/newline, DEL, C1 controls, and the Unicode bidi overrides/isolates
// (which reorder what is shown, "Trojan Source").
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_OR_NEWLINE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function escape(c: string): string {
  const n = c.codePointAt(0)!;
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** Text for a line-oriented block: keeps newlines and tabs, escapes every other control character. */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

/** One value in a table cell or a `Key: value` line: newlines and tabs are escaped too. */
export function printableValue(text: string): string {
  return text.replace(UNSAFE_OR_NEWLINE, escape);
}
