import { formatReplaces } from '../sip/replaces.js';
import { isSdpHold } from '../sip/sdp-hold.js';
import { firstHeader, headerValues, type SipMessage } from '../sip/message.js';
import { parseNameAddr } from '../sip/name-addr.js';
import { aorDomain, canonicalAor, extractAor, parseUri } from '../sip/uri.js';
import { NO_EDIT, partyOf, readCallMessage, type CallEventInput, type CallEventOutcome, type CallMessage, type MessageEdit } from './call-event.js';
import type { ScaContext } from './context.js';
import type { Trigger } from './transitions.js';
import type { Appearance, AppearanceState, Flow, Notify } from './types.js';

function callerLineIsShared(ctx: ScaContext, msg: SipMessage): boolean {
  const from = parseNameAddr(firstHeader(msg, 'from') ?? '', 'From');
  const contact = headerValues(msg, 'contact')[0];
  const c = contact === undefined ? undefined : parseNameAddr(contact, 'Contact');
  return from.ok && ctx.appearances.isShared(canonicalAor(from.value.uri, c?.ok ? c.value.uri : undefined));
}

const SCA_METHODS = new Set(['INVITE', 'BYE', 'CANCEL', 'PRACK', 'REFER']);
const ESTABLISHED: readonly AppearanceState[] = ['active-pending', 'active', 'held', 'held-private'];

const outcome = (result: 1 | 0 | -1, notifies: Notify[] = [], edit: MessageEdit = NO_EDIT, aors: string[] = []): CallEventOutcome =>
  ({ result, reply: undefined, edit, notifies, aors, callerShared: false });

/** The sca_call_info_update of the module, plus its tm/sl callbacks, as one entry point. */
export function handleCallEvent(ctx: ScaContext, input: CallEventInput): CallEventOutcome {
  const { msg, hook } = input;
  if (hook === 'failure' || hook === 'local-reply') return onInviteFailure(ctx, input);
  if (hook === 'request' && msg.method === 'ACK') return onAck(ctx, input);
  if (!SCA_METHODS.has(msg.method)) return outcome(1);

  const read = readCallMessage(msg);
  // Not SCA (an intercom Call-Info): nothing changes, but a member's call still gets its
  // P-Asserted-Identity on the 2xx, as the module adds it in the reply route.
  if (!read.ok) return { ...outcome(-1), callerShared: read.nonSca === true && msg.kind === 'request' && callerLineIsShared(ctx, msg) };
  const call = read.call;
  let callerShared = (input.mask & 1) !== 0 && ctx.appearances.isShared(call.fromAor);
  let calleeShared = (input.mask & 2) !== 0 && ctx.appearances.isShared(call.toAor);
  if (call.callInfo && call.callInfo.index === 0 && call.callInfo.state === undefined) {
    callerShared = calleeShared = false; // index 0 without a state means "no appearance"
  }
  // A shared AoR that nobody watches any more stops being shared on its next Call-Info-less call.
  if (!call.hasCallInfoHeader) {
    if (msg.kind === 'request' && callerShared && !ctx.hasCallInfoSubscribers(call.fromAor)) {
      ctx.appearances.unregister(call.fromAor);
      callerShared = false;
    }
    if (msg.kind === 'reply' && calleeShared && !ctx.hasCallInfoSubscribers(call.toAor)) {
      ctx.appearances.unregister(call.toAor);
      calleeShared = false;
    }
  }
  const edit: MessageEdit = { ...NO_EDIT, removeCallInfo: call.callInfo !== undefined, keepCallInfo: call.callInfo ? call.keepCallInfo : [] };
  if (!callerShared && !calleeShared) return outcome(-1, [], edit);
  const h: Handling = { ctx, call, now: input.now, callerShared, calleeShared, edit, notifies: [], aors: new Set(), flow: input.flow };

  if (msg.kind === 'request') {
    switch (msg.method) {
      case 'INVITE': return inviteRequest(h);
      case 'BYE': return byeRequest(h);
      case 'CANCEL': return cancelRequest(h);
      default: return done(h, 1); // PRACK, REFER: only their Call-Info is removed
    }
  }
  if (msg.method === 'INVITE') return inviteReply(h, msg.status ?? 0);
  if (msg.method === 'BYE') return byeReply(h);
  return done(h, 1);
}

interface Handling {
  readonly ctx: ScaContext;
  readonly call: CallMessage;
  readonly now: number;
  readonly callerShared: boolean;
  readonly calleeShared: boolean;
  edit: MessageEdit;
  readonly notifies: Notify[];
  readonly aors: Set<string>;
  /** Where the message came from. */
  readonly flow?: Flow | undefined;
}

const done = (h: Handling, result: 1 | 0 | -1): CallEventOutcome =>
  ({ result, reply: undefined, edit: h.edit, notifies: h.notifies, aors: [...h.aors], callerShared: h.callerShared });

const notifyGroup = (h: Handling, aor: string): void => {
  h.aors.add(aor);
  h.notifies.push(...h.ctx.notifyGroup(aor, h.now));
};

const tagsOf = (call: CallMessage): Array<string | undefined> => [call.fromTag, call.toTag];

const move = (h: Handling, aor: string, app: Appearance, trigger: Trigger, named?: AppearanceState): boolean =>
  h.ctx.appearances.transition(aor, app, trigger, h.now, named);

const snapshot = (app: Appearance): Omit<Appearance, 'pending' | 'index'> => {
  const { pending: _p, index: _i, ...rest } = app;
  return { ...rest };
};

/** A refused re-INVITE or pickup: the appearance is put back as it was before it, time included. */
function restore(h: Handling, aor: string, app: Appearance): void {
  const saved = app.pending?.restore;
  if (saved) {
    const { owner, callee, uri, dialog, direction } = saved;
    h.ctx.appearances.update(aor, app, { owner, callee, uri, dialog, direction });
    h.ctx.appearances.transition(aor, app, 'restored', saved.mtime, saved.state);
  }
  h.ctx.appearances.update(aor, app, { pending: undefined });
}

function inviteRequest(h: Handling): CallEventOutcome {
  const { ctx, call, now } = h;
  if (call.contact === undefined || !h.callerShared) return done(h, 1);
  const aor = call.fromAor;
  const index = call.callInfo?.index === '*' ? 0 : call.callInfo?.index ?? 0;
  let trigger: Trigger | undefined;
  if (isSdpHold(call.msg.body)) trigger = call.callInfo?.state === 'held-private' ? 'hold-private' : 'hold';
  else if (call.toTag !== undefined) trigger = 'unhold';
  else if (index > 0 && aor === call.toAor) {
    const held = ctx.appearances.get(aor, index);
    if (held && (held.state === 'held' || held.state === 'held-private')) return pickup(h, held);
    // A second pickup of a call another member already took (or any call on that index that is
    // not the caller's): refused, instead of ringing the caller's own group (deviation D34).
    if (held && ESTABLISHED.includes(held.state) && held.owner !== call.contact && held.dialog?.callId !== call.callId) {
      return { result: 0, reply: { code: 403, reason: 'Forbidden - appearance in use', headers: [] }, edit: h.edit, notifies: [], aors: [aor], callerShared: true };
    }
  }

  let app = ctx.appearances.find(aor, index, call.callId, tagsOf(call));
  if (!app && call.toTag === undefined) {
    // A phone that dials without a line-seize still gets its appearance (BroadWorks lets the
    // server assign one); the module leaves such calls invisible to the group.
    const seized = ctx.appearances.seize(aor, index, call.contact, now);
    if (!seized.ok && index > 0) {
      const any = ctx.appearances.seize(aor, 0, call.contact, now);
      if (any.ok) app = any.appearance;
    } else if (seized.ok) app = seized.appearance;
  }
  if (app) {
    if (app.dialog === undefined) {
      ctx.appearances.update(aor, app, { dialog: { callId: call.callId, fromTag: call.fromTag, toTag: call.toTag ?? '' }, direction: 'outgoing' });
    }
    if (trigger) {
      const before = snapshot(app);
      // Keep what the call was, so a refused re-INVITE (491, 488) leaves the call as it is.
      if (move(h, aor, app, trigger)) ctx.appearances.update(aor, app, { pending: { kind: 'reinvite', callId: call.callId, restore: before } });
    }
  }
  notifyGroup(h, aor);
  return done(h, 1);
}

/**
 * Another member retrieves a held call: the INVITE goes to the held party with Replaces, and
 * the appearance changes owner. A privately held call is refused to everyone but its owner.
 */
function pickup(h: Handling, app: Appearance): CallEventOutcome {
  const { ctx, call, now } = h;
  const aor = call.fromAor;
  if (app.state === 'held-private' && app.owner !== call.contact) {
    return { result: 0, reply: { code: 403, reason: 'Forbidden - private call', headers: [] }, edit: h.edit, notifies: [], aors: [aor], callerShared: true };
  }
  const old = app.dialog ?? { callId: '', fromTag: '', toTag: '' };
  // Replaces names the dialog from the held party's side: its own tag is the to-tag.
  const remoteTag = app.direction === 'incoming' ? old.fromTag : old.toTag;
  const memberTag = app.direction === 'incoming' ? old.toTag : old.fromTag;
  h.edit = {
    ...h.edit,
    ruri: app.callee,
    // Its Contact may be a private address: the pickup goes where its answer came from.
    dst: app.calleeFlow,
    dropBranches: true,
    appendHeaders: [...h.edit.appendHeaders, ['Replaces', formatReplaces({ callId: old.callId, toTag: remoteTag, fromTag: memberTag, earlyOnly: false })]],
  };
  const before = snapshot(app);
  moveRemoteSide(h, app, old.callId, [old.fromTag, old.toTag]);
  ctx.appearances.update(aor, app, { owner: call.contact ?? app.owner, dialog: { callId: call.callId, fromTag: call.fromTag, toTag: '' }, direction: 'outgoing' });
  move(h, aor, app, 'picked-up');
  ctx.appearances.update(aor, app, { pending: { kind: 'pickup', callId: call.callId, restore: before } });
  notifyGroup(h, aor);
  return done(h, 1);
}

/** In a call between two shared lines, the other line's appearance follows the pickup. */
function moveRemoteSide(h: Handling, app: Appearance, oldCallId: string, oldTags: string[]): void {
  const target = parseUri(app.callee);
  if (!target.ok || target.value.user === undefined) return;
  const remoteAor = `${target.value.scheme}:${target.value.user}@${aorDomain(h.call.fromAor)}`;
  if (remoteAor === h.call.fromAor || !h.ctx.appearances.isShared(remoteAor)) return;
  const remote = h.ctx.appearances.findByDialog(remoteAor, oldCallId, oldTags);
  if (!remote) return;
  h.ctx.appearances.update(remoteAor, remote, {
    ...(h.call.contact !== undefined ? { callee: h.call.contact, calleeFlow: h.flow } : {}),
    dialog: { callId: h.call.callId, fromTag: h.call.fromTag, toTag: '' },
  });
}

function inviteReply(h: Handling, status: number): CallEventOutcome {
  const { call } = h;
  if (call.contact === undefined) return done(h, 1); // the module skips replies without Contact
  if (status === 180 || status === 183) return ringing(h);
  if (status >= 200 && status < 300) return answered(h);
  // Other provisionals (181, 182, 199) are no reason to drop the line; 3xx keeps the seize
  // (Polycom retries); 487 follows a CANCEL that already cleaned up.
  if (status <= 302 || status === 487) return done(h, 1);
  if (!h.callerShared) return done(h, 1);
  const app = h.ctx.appearances.findByDialog(call.fromAor, call.callId, tagsOf(call));
  if (!app) return done(h, -1);
  failAppearance(h, call.fromAor, app, call.contact, true);
  return done(h, 1);
}

function ringing(h: Handling): CallEventOutcome {
  const { ctx, call, now } = h;
  if (!h.callerShared) return done(h, 1);
  const app = ctx.appearances.findByDialog(call.fromAor, call.callId, tagsOf(call));
  if (!app || !move(h, call.fromAor, app, 'ringing')) return done(h, 1);
  // The line is in use now: the phone's line-seize subscription has served its purpose.
  const seize = ctx.subscriptions.get(call.fromAor, 'line-seize', app.owner);
  if (seize) {
    h.notifies.push(...ctx.terminate(seize, 'noresource', now, false));
    // A phone that seized one index but calls on another gives the seized one back, so it is not
    // left lit until the stale purge (kamailio#2583).
    if (seize.index !== app.index) ctx.appearances.releaseIfOnlySeized(call.fromAor, seize.index, seize.subscriber);
  }
  notifyGroup(h, call.fromAor);
  return done(h, 1);
}

function answered(h: Handling): CallEventOutcome {
  const { ctx, call, now } = h;
  if (h.calleeShared && call.fromAor !== call.toAor) answeredByMember(h);
  if (!h.callerShared) {
    notifyGroup(h, call.fromAor);
    return done(h, 1);
  }
  const uas = canonicalAor(call.to.uri, call.contact);
  // The caller's phone shows who answered; with no display name the module writes two spaces.
  h.edit = { ...h.edit, appendHeaders: [...h.edit.appendHeaders, ['P-Asserted-Identity', `${call.to.display ?? ''} <${uas}>`]] };
  const app = ctx.appearances.findByDialog(call.fromAor, call.callId, tagsOf(call));
  if (app) {
    move(h, call.fromAor, app, 'answered');
    ctx.appearances.update(call.fromAor, app, {
      ...(app.dialog && app.dialog.toTag === '' && call.toTag ? { dialog: { ...app.dialog, toTag: call.toTag } } : {}),
      ...(app.pending?.callId === call.callId ? { pending: undefined } : {}),
      ...(call.contact !== undefined ? { callee: call.contact, calleeFlow: h.flow } : {}),
      ...(call.fromAor !== call.toAor ? { uri: partyOf(call.to.display, uas) } : {}),
    });
  }
  notifyGroup(h, call.fromAor);
  return done(h, 1);
}

/** A member answered a call to the shared line: it gets an appearance, shown on the ACK. */
function answeredByMember(h: Handling): void {
  const { ctx, call, now } = h;
  const aor = call.toAor;
  const owner = call.contact ?? '';
  const index = call.callInfo?.index === '*' ? 0 : call.callInfo?.index ?? 0;
  const state: AppearanceState | undefined = call.callInfo?.state === undefined || call.callInfo.state === 'idle'
    ? undefined : call.callInfo.state === 'active' ? 'active-pending' : call.callInfo.state;
  const dialog = { callId: call.callId, fromTag: call.fromTag, toTag: call.toTag ?? '' };
  const byIndex = index > 0 ? ctx.appearances.get(aor, index) : undefined;
  // The index the phone names is its own only if it seized it or already carries this call.
  const mine = byIndex && (byIndex.dialog ? byIndex.dialog.callId === call.callId : byIndex.owner === owner) ? byIndex : undefined;
  let app = mine ?? ctx.appearances.findByDialog(aor, call.callId, tagsOf(call));
  if (app) {
    // The state the phone reports wins; without one, a seized index becomes the call's.
    const reported = state !== undefined && move(h, aor, app, 'reported', state);
    if (!reported) move(h, aor, app, 'member-answered');
  } else {
    let seized = ctx.appearances.seize(aor, index, owner, now, state ?? 'active-pending');
    if (!seized.ok && index > 0) seized = ctx.appearances.seize(aor, 0, owner, now, state ?? 'active-pending');
    if (!seized.ok) return;
    app = seized.appearance;
    ctx.appearances.update(aor, app, { uri: partyOf(call.from.display, call.from.uri), callee: call.from.uri });
  }
  ctx.appearances.update(aor, app, { owner, dialog, direction: 'incoming' });
}

function byeRequest(h: Handling): CallEventOutcome {
  const { ctx, call } = h;
  const index = call.callInfo?.index === '*' ? 0 : call.callInfo?.index ?? 0;
  let found = false;
  if (h.callerShared) {
    const app = ctx.appearances.find(call.fromAor, index, call.callId, tagsOf(call));
    if (app?.dialog?.callId === call.callId) {
      ctx.appearances.release(call.fromAor, app.index);
      notifyGroup(h, call.fromAor);
      found = true;
    }
  }
  if (h.calleeShared && call.toAor !== call.fromAor) {
    const app = ctx.appearances.findByDialog(call.toAor, call.callId, tagsOf(call));
    if (app) {
      ctx.appearances.release(call.toAor, app.index);
      notifyGroup(h, call.toAor);
      found = true;
    }
  }
  return done(h, found || !h.callerShared ? 1 : -1);
}

function byeReply(h: Handling): CallEventOutcome {
  const { ctx, call } = h;
  if (!h.calleeShared) return done(h, 1);
  const index = call.callInfo?.index === '*' ? 0 : call.callInfo?.index ?? 0;
  const app = ctx.appearances.find(call.toAor, index, call.callId, tagsOf(call));
  if (app?.dialog?.callId === call.callId) {
    ctx.appearances.release(call.toAor, app.index);
    notifyGroup(h, call.toAor);
  }
  return done(h, 1);
}

function cancelRequest(h: Handling): CallEventOutcome {
  const { ctx, call } = h;
  const cancel = (aor: string, tag: string): void => {
    const app = ctx.appearances.findByDialog(aor, call.callId, [tag]);
    // A CANCEL that crosses the 200 must not idle a call that was answered.
    if (app && !ESTABLISHED.includes(app.state)) ctx.appearances.release(aor, app.index);
    notifyGroup(h, aor);
  };
  if (h.callerShared) cancel(call.fromAor, call.fromTag);
  if (call.toTag !== undefined && h.calleeShared) cancel(call.toAor, call.toTag);
  return done(h, 1);
}

/**
 * End-to-end ACK of an answered INVITE: a callee's appearance becomes active, and hold SDP in the
 * ACK (Polycom music-on-hold: re-INVITE without SDP, offer in the ACK) puts the call on hold.
 */
function onAck(ctx: ScaContext, input: CallEventInput): CallEventOutcome {
  const read = readCallMessage(input.msg);
  if (!read.ok) return outcome(-1);
  const call = read.call;
  const h: Handling = { ctx, call, now: input.now, callerShared: false, calleeShared: false, edit: NO_EDIT, notifies: [], aors: new Set() };
  const aor = call.fromAor;
  if (ctx.appearances.isShared(aor) && isSdpHold(call.msg.body)) {
    const app = ctx.appearances.findByDialog(aor, call.callId, tagsOf(call));
    if (app && move(h, aor, app, 'hold')) notifyGroup(h, aor);
  }
  // The module NOTIFYs the callee's line at every ACK, also when caller and callee share it (a pickup).
  if (ctx.appearances.isShared(call.toAor)) {
    const app = ctx.appearances.findByDialog(call.toAor, call.callId, tagsOf(call));
    if (app) move(h, call.toAor, app, 'acked');
    notifyGroup(h, call.toAor);
  }
  return done(h, 1);
}

/**
 * A final failure (>= 300) to a member's INVITE, relayed or the proxy's own (tm RESPONSE_READY and
 * the sl callback in the module). A new call loses its appearance and its line-seize; a refused
 * re-INVITE or pickup puts the call back as it was (the module drops the appearance of a call
 * that is still up).
 */
function onInviteFailure(ctx: ScaContext, input: CallEventInput): CallEventOutcome {
  const status = input.status ?? 0;
  if (input.msg.method !== 'INVITE' || status < 300) return outcome(1);
  if (input.hook === 'local-reply' && (status === 401 || status === 407)) return outcome(1); // auth challenge: the phone retries
  const read = readCallMessage(input.msg);
  if (!read.ok) return outcome(-1);
  const call = read.call;
  const aor = extractAor(call.from.uri);
  const h: Handling = { ctx, call, now: input.now, callerShared: true, calleeShared: false, edit: NO_EDIT, notifies: [], aors: new Set() };
  if (!ctx.appearances.isShared(aor)) return done(h, 1);
  // In the failure route the module runs its INVITE request handler once more, which NOTIFYs the
  // group with the state before the failure; kept on the wire for drop-in fidelity (not after
  // a CANCEL, where the script skips it).
  if (input.hook === 'failure' && status !== 487 && call.contact !== undefined) notifyGroup(h, aor);
  const app = ctx.appearances.findByDialog(aor, call.callId, [call.fromTag]);
  if (app) failAppearance(h, aor, app, call.contact, input.hook === 'failure');
  else if (call.contact !== undefined) {
    const seize = ctx.subscriptions.get(aor, 'line-seize', call.contact);
    if (seize) h.notifies.push(...ctx.terminate(seize, 'noresource', input.now, true));
  }
  return done(h, 1);
}

function failAppearance(h: Handling, aor: string, app: Appearance, contact: string | undefined, byTags: boolean): void {
  const { ctx, now } = h;
  if (app.pending && app.pending.callId === h.call.callId) {
    restore(h, aor, app);
    notifyGroup(h, aor);
    return;
  }
  if (ESTABLISHED.includes(app.state)) return;
  const seize = contact !== undefined ? ctx.subscriptions.get(aor, 'line-seize', contact) : undefined;
  if (seize) {
    const sent = ctx.terminate(seize, 'noresource', now, true);
    h.notifies.push(...sent);
    if (!ctx.appearances.get(aor, app.index)) {
      h.aors.add(aor);
      return;
    }
  }
  if (!byTags) return;
  ctx.appearances.release(aor, app.index);
  notifyGroup(h, aor);
}
