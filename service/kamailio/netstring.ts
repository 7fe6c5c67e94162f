/** evapi framing (netstring_format=1): "<decimal byte length>:<payload>," in both directions. */

export const encodeNetstring = (payload: string): Buffer => Buffer.from(`${Buffer.byteLength(payload)}:${payload},`, 'utf8');

export type FrameError = { kind: 'netstring'; detail: string };

/**
 * Incremental decoder: feed TCP chunks, get whole payloads. A corrupt stream cannot be
 * resynchronised, so it is reported and the buffer dropped (the caller closes the connection).
 */
export class NetstringDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLength = 4 * 1024 * 1024) {}

  push(chunk: Buffer): { frames: string[]; error?: FrameError } {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: string[] = [];
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon < 0) {
        if (this.buf.length > 12) return this.corrupt(frames, 'no length prefix');
        return { frames };
      }
      const lenText = this.buf.subarray(0, colon).toString('latin1');
      if (!/^\d{1,10}$/.test(lenText)) return this.corrupt(frames, `bad length "${lenText.slice(0, 20)}"`);
      const len = Number(lenText);
      if (len > this.maxLength) return this.corrupt(frames, `frame of ${len} bytes is over the limit`);
      if (this.buf.length < colon + 1 + len + 1) return { frames };
      if (this.buf[colon + 1 + len] !== 0x2c) return this.corrupt(frames, 'missing trailing comma');
      frames.push(this.buf.subarray(colon + 1, colon + 1 + len).toString('utf8'));
      this.buf = this.buf.subarray(colon + 2 + len);
    }
  }

  private corrupt(frames: string[], detail: string): { frames: string[]; error: FrameError } {
    this.buf = Buffer.alloc(0);
    return { frames, error: { kind: 'netstring', detail } };
  }
}
