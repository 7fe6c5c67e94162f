import t from 'tap';
import { NetstringDecoder, encodeNetstring } from '../../../service/kamailio/netstring.js';

t.test('frames round-trip, whole or split at any byte, UTF-8 lengths in bytes', async (t) => {
  const payloads = ['{"a":1}', '', 'é€ ünïcode', 'x'.repeat(70000)];
  const wire = Buffer.concat(payloads.map(encodeNetstring));
  t.equal(encodeNetstring('é').toString('latin1').split(':')[0], '2', 'the length counts bytes');
  for (const step of [1, 3, 7, 4096, wire.length]) {
    const d = new NetstringDecoder();
    const got: string[] = [];
    let errors = 0;
    for (let i = 0; i < wire.length; i += step) {
      const r = d.push(wire.subarray(i, i + step));
      if (r.error) errors++;
      got.push(...r.frames);
    }
    t.equal(errors, 0);
    t.same(got, payloads, `chunks of ${step}`);
  }
});

t.test('a corrupt stream is reported, not thrown', async (t) => {
  for (const bad of ['abc:xyz,', '3:abcd', '99999999999:x', 'x'.repeat(20)]) {
    const r = new NetstringDecoder(1024).push(Buffer.from(bad));
    t.equal(r.error?.kind, 'netstring', bad.slice(0, 12));
  }
  const big = new NetstringDecoder(10).push(Buffer.from('11:hello world,'));
  t.match(big.error?.detail, /over the limit/);
  const before = new NetstringDecoder().push(Buffer.from('2:ok,3:bad!'));
  t.same(before.frames, ['ok'], 'frames before the corruption are kept');
  t.equal(before.error?.detail, 'missing trailing comma');
});
