// Errors are values at the grammar boundary: a malformed header never throws past the parser.
export interface SipGrammarError {
  readonly kind: 'sip-grammar';
  readonly what: string; // e.g. "Call-Info", "SIP URI"
  readonly detail: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: SipGrammarError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });

export const fail = <T = never>(what: string, detail: string): Result<T> => ({
  ok: false,
  error: { kind: 'sip-grammar', what, detail },
});
