// Sticky failover's host list: parsing, URLs keep their credentials, one move per failed host.
import t from 'tap';
import { DbHosts, hostOfUrl, parseDbHost, urlForHost } from '../../../service/store/db-hosts.js';

t.test('host:port, a bare host and bracketed IPv6 parse; junk does not', async (t) => {
  t.same(parseDbHost('db1:3311'), { host: 'db1', port: 3311 });
  t.same(parseDbHost(' db1 '), { host: 'db1', port: 3306 });
  t.same(parseDbHost('[::1]:3312'), { host: '::1', port: 3312 });
  for (const bad of ['', 'db1:', 'db1:70000', 'a b:1', 'user@db1:1', 'db1:1/x']) t.equal(parseDbHost(bad), undefined, bad);
});

t.test('a host replaces db_url\'s host and port only: user, password, database and options stay', async (t) => {
  const url = 'mysql://sca:s%40cret@db0:3306/sca?charset=utf8mb4';
  t.equal(urlForHost(url, { host: '10.0.0.2', port: 3312 }), 'mysql://sca:s%40cret@10.0.0.2:3312/sca?charset=utf8mb4');
  t.equal(urlForHost(url, { host: '::1', port: 3313 }), 'mysql://sca:s%40cret@[::1]:3313/sca?charset=utf8mb4');
  t.same(hostOfUrl(url), { host: 'db0', port: 3306 });
  t.same(hostOfUrl('mysql://u@db9/x'), { host: 'db9', port: 3306 });
});

t.test('failures reported for one choice of host move the store once, in order, and wrap around', async (t) => {
  const h = new DbHosts([{ host: 'a', port: 1 }, { host: 'b', port: 2 }, { host: 'c', port: 3 }]);
  const g = h.generation;
  t.ok(h.failed(g), 'the first failure moves');
  t.notOk(h.failed(g), 'a second connection failing on the old host moves nothing more');
  t.equal(h.describe(), 'b:2');
  h.failed(h.generation);
  h.failed(h.generation);
  t.equal(h.describe(), 'a:1', 'after the last host, the first again');
  const single = new DbHosts([{ host: 'a', port: 1 }]);
  t.notOk(single.failed(single.generation), 'one host: nowhere to go');
});
