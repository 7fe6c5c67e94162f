// CDR lines beside the database: CSV with the operator's fields, to a file and to syslog (through
// logger, received here on a datagram socket of the test's own).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cdrCsv, csvField } from '../../../service/cc/cdr.js';
import type { Cdr } from '../../../service/cc/types.js';
import { CdrLog } from '../../../service/store/cdr-log.js';

const cdr = (o: Partial<Cdr> = {}): Cdr => ({
  callId: 'c1@host', account: 'joe@example.com', from: '"Joe, Jr." <sip:joe@example.com>', to: 'sip:200@example.com', sourceIp: '192.0.2.10',
  startMs: Date.UTC(2026, 10, 25, 12, 0, 0), connectMs: Date.UTC(2026, 10, 25, 12, 0, 2), endMs: Date.UTC(2026, 10, 25, 12, 1, 2),
  setupSeconds: 2, durationSeconds: 60, billableSeconds: 60, connectFee: 5, amount: 65, ratePrefix: '31', cause: 'caller', code: undefined, ...o,
});
const quiet = { error: () => undefined, warn: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('CSV: the chosen fields in order, times ISO 8601, fields with commas or quotes quoted', async (t) => {
  t.equal(cdrCsv(cdr(), ['call_id', 'from', 'start', 'duration', 'amount', 'cause', 'code']),
    'c1@host,"""Joe, Jr."" <sip:joe@example.com>",2026-11-25T12:00:00.000Z,60,65,caller,');
  t.equal(csvField('a\r\nb'), '"a  b"', 'a line break never splits a CDR line');
});

t.test('CDRs go to the file as they are written, appended', async (t) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'cdr-')), 'sub', 'cdr.csv');
  const out = new CdrLog({ file, syslog: false, syslogSocket: '/dev/log', syslogTag: 'x', fields: ['call_id', 'account', 'billable_seconds', 'amount', 'cause'], log: quiet });
  out.write([cdr(), cdr({ callId: 'c2', cause: 'credit', amount: 0 })]);
  out.write([]);
  await out.close();
  t.equal(readFileSync(file, 'utf8'), 'c1@host,joe@example.com,60,65,caller\nc2,joe@example.com,60,0,credit\n');
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
  for (let i = 0; i < 50; i++) { try { readFileSync(sock); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') break; } await sleep(20); }
  const out = new CdrLog({ file: '', syslog: true, syslogSocket: sock, syslogTag: 'sca-cc-cdr', fields: ['call_id', 'amount'], log: quiet });
  out.write([cdr()]);
  let text = '';
  for (let i = 0; i < 100 && !text.includes('c1@host,65'); i++) { await sleep(20); try { text = readFileSync(got, 'utf8'); } catch { /* not yet */ } }
  await out.close();
  t.match(text, /<134>.*sca-cc-cdr.*: c1@host,65/, 'local0.info, tagged');
});
