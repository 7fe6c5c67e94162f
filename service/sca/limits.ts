/**
 * How long the values the engine keeps may be: the store's columns (kamctl's sca_subscriptions,
 * our sca_appearances). A message with a longer one is refused at the door (400), so that no row
 * can be refused later.
 */
export const MAX = { uri: 255, callId: 255, tag: 128, routeSet: 4096, display: 255 } as const;

export const fits = (value: string, max: number): boolean => value.length <= max;

/**
 * A copy of a string cut out of a SIP message: what the engine keeps must not keep the whole
 * message alive (V8 keeps the parent of a slice).
 */
export const own = (s: string): string => (s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8'));
