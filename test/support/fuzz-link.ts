// The link fuzz target: the whole service (buildApp) behind a fake Kamailio, fed frames.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp } from '../../service/app.js';
import { loadConfig } from '../../service/config.js';
import { fakeKamailio, until } from './fake-kamailio.js';

export async function linkTarget(): Promise<{ feed: (frames: string[]) => Promise<{ answered: number; expected: number; connected: boolean; stateChanged: boolean }>; close: () => Promise<void> }> {
  const k = await fakeKamailio();
  const dir = mkdtempSync(path.join(tmpdir(), 'fuzz-link-'));
  const cfg = loadConfig({ env: {}, overrides: { evapi_address: [`127.0.0.1:${k.port}`], http_port: 0, log_level: 'silent', db_url: `sqlite:${dir}/s.sqlite`, call_control_socket: '', cc_jsonrpc_address: 'udp:127.0.0.1:9' } });
  if (!cfg.ok) throw new Error(cfg.error);
  const app = buildApp(cfg.config, { clock: () => 1000 });
  await app.start();
  await until(() => app.link.connected === 1);
  const state = () => JSON.stringify([app.sca.engine.listSubscriptions(1000), app.sca.engine.listAppearances(), app.cc.engine.callsOf()]);
  return {
    /**
     * Sends the frames; resolves when every request got its one answer. A notification (a method
     * and no id) gets none when it is carried out, an error when it is refused: at most one.
     * `answered` counts the answers beyond those notifications could have had, at most.
     */
    async feed(frames) {
      const before = state();
      const start = k.received.length;
      let expected = 0;
      let notifications = 0;
      for (const f of frames) {
        k.sendRaw(f);
        let v: unknown;
        try { v = JSON.parse(f); } catch { expected++; continue; } // a parse error is answered too
        if (v === null || typeof v !== 'object' || Array.isArray(v)) { expected++; continue; }
        const o = v as { method?: unknown; result?: unknown; error?: unknown };
        // A response (to our ping) is taken, not answered; anything else gets one answer.
        if (o.method === undefined && (o.result !== undefined || o.error !== undefined)) continue;
        if (typeof o.method === 'string' && !('id' in o)) { notifications++; continue; }
        expected++;
      }
      await until(() => k.received.length - start >= expected, 20_000);
      await new Promise((r) => setTimeout(r, 200)); // late answers would show here
      const got = k.received.length - start;
      const answered = got >= expected && got <= expected + notifications ? expected : got;
      return { answered, expected, connected: app.link.connected === 1, stateChanged: state() !== before };
    },
    async close() {
      await app.stop();
      await k.close();
    },
  };
}
