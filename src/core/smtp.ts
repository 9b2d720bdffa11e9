// A minimal SMTP client (RFC 5321) for `email:` alert targets: EHLO, STARTTLS or implicit TLS,
// AUTH PLAIN, MAIL FROM, RCPT TO, DATA (dot-stuffed), QUIT. One text/plain message per
// connection. Chosen over nodemailer: alerts send a few short plain-text mails, and this is
// ~120 lines with no dependency; nodemailer would add a large package for the same.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { SmtpSettings } from '../config.js';
import type { Context } from './context.js';
import { resolveSecretRef } from './credentials.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

class Conn {
  private buf = '';
  private waiters: ((line: string | Error) => void)[] = [];
  private lines: string[] = [];
  private failure?: Error;

  constructor(public sock: Socket | TLSSocket) {
    this.attach(sock);
  }

  attach(sock: Socket | TLSSocket): void {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const w of this.waiters.splice(0)) w(e);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('the SMTP server closed the connection')));
  }

  private line(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push((x) => (x instanceof Error ? reject(x) : resolve(x))));
  }

  /** Reads a (multi-line) reply; throws unless its code starts with `expect`. */
  async reply(expect: string): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line();
      out.push(l);
      if (!/^\d{3}-/.test(l)) break;
    }
    const last = out[out.length - 1];
    if (!last.startsWith(expect)) throw new Error(`SMTP: ${out.join(' / ')}`);
    return out;
  }

  async cmd(line: string, expect: string): Promise<string[]> {
    this.sock.write(`${line}\r\n`);
    return this.reply(expect);
  }
}

function open(s: SmtpSettings, socket?: Socket): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = s.security === 'tls' || socket ? tlsConnect({ host: s.host, port: s.port, servername: s.host, ...(socket ? { socket } : {}) }) : netConnect({ host: s.host, port: s.port });
    sock.once(s.security === 'tls' || socket ? 'secureConnect' : 'connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

/** Sends one mail through the configured server; rejects with the server's answer. */
export async function sendMail(s: SmtpSettings, ctx: Pick<Context, 'env'>, mail: Mail, signal: AbortSignal): Promise<void> {
  const password = s.passwordFrom ? resolveSecretRef(ctx, s.passwordFrom.startsWith('env:') ? { from: 'env', name: s.passwordFrom.slice(4) } : { from: 'file', path: s.passwordFrom.slice(5) }, 'SMTP password') : undefined;
  const sock = await open(s);
  const conn = new Conn(sock);
  const abort = () => conn.sock.destroy(new Error('interrupted'));
  signal.addEventListener('abort', abort, { once: true });
  try {
    await conn.reply('220');
    const me = hostname() || 'localhost';
    let ehlo = await conn.cmd(`EHLO ${me}`, '250');
    if (s.security === 'starttls') {
      if (!ehlo.some((l) => /^250[- ]STARTTLS/i.test(l))) throw new Error('SMTP: the server does not offer STARTTLS (set smtp.security to none to send in the clear)');
      await conn.cmd('STARTTLS', '220');
      sock.removeAllListeners('data');
      sock.removeAllListeners('close');
      sock.removeAllListeners('error');
      conn.attach(await open(s, sock as Socket));
      ehlo = await conn.cmd(`EHLO ${me}`, '250');
    }
    if (s.user && password) {
      const token = Buffer.from(`\0${s.user}\0${password.reveal()}`).toString('base64');
      await conn.cmd(`AUTH PLAIN ${token}`, '235');
    }
    await conn.cmd(`MAIL FROM:<${s.from}>`, '250');
    await conn.cmd(`RCPT TO:<${mail.to}>`, '25');
    await conn.cmd('DATA', '354');
    const headers = [
      `From: dbs <${s.from}>`,
      `To: <${mail.to}>`,
      `Subject: ${mail.subject.replace(/[\r\n]+/g, ' ')}`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <${randomUUID()}@${me}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
    ];
    const body = mail.text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    conn.sock.write(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.\r\n`);
    await conn.reply('250');
    await conn.cmd('QUIT', '221').catch(() => undefined);
  } finally {
    signal.removeEventListener('abort', abort);
    conn.sock.destroy();
  }
}
