/*
 * Salon's reference web client: plain JavaScript, no build step.
 *
 * - REST (docs/openapi.yaml) on the same origin: sign-in, invitations, the hallway, profiles,
 *   Send Money. Tokens live in sessionStorage, so each browser tab can be a different member.
 * - The WebSocket (docs/asyncapi.yaml): rooms, the stage, and the audio's negotiation.
 * - Audio: through the SFU (Janus locally, docs/architecture.md "The media plane"). Whoever is
 *   on stage and unmuted sends one stream (`media_publish`); everyone hears each sending speaker
 *   through a connection of its own (`media_subscribe` / `media_answer`). Salon checks each
 *   request before its SDP reaches the SFU, and cuts a publisher off at the SFU when the right
 *   goes, whatever this page does. ICE is not trickled: each description carries its candidates.
 * - Stripe: a few lines standing in for Stripe.js's confirmCardPayment, against the local
 *   Stripe emulator (publishable key + the PaymentIntent's client_secret).
 */
'use strict';

// --- Error codes: a sentence for every code of the protocol (openapi.yaml x-error-codes) -------

const MESSAGES = {
  // Requests
  invalid_request: 'Something in that request is not right.',
  unknown_action: 'This web client asked Salon for something it does not know. Reload the page.',
  payload_too_large: 'That message is too large to send.',
  internal_error: 'Something went wrong on Salon’s side. It was logged; please try again.',
  not_found: 'Nothing was found there.',
  forbidden: 'You are not allowed to do that.',
  conflict: 'That changed in the meantime. Reload and try again.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
  unavailable: 'A service Salon depends on did not answer. Try again shortly.',
  // Signing in and membership
  invalid_phone: 'That is not a phone number Salon can text. Write it with its country code, like +1 415 555 0101.',
  invalid_username: 'Usernames have 3 to 30 letters, digits or underscores.',
  wrong_code: 'That code is not right.',
  code_expired: 'That code has expired or was already used. Ask for a new one.',
  code_locked: 'Too many wrong codes. Ask for a new code.',
  not_authenticated: 'Your session has ended. Please sign in again.',
  session_revoked: 'You were signed out (the session ended or was revoked). Please sign in again.',
  not_connected: 'You are not connected to Salon right now. Reconnecting…',
  account_suspended: 'Your account is suspended.',
  not_invited: 'Salon is invite-only and this number is on the waitlist. Ask a member to invite you.',
  no_invites_left: 'You have no invitations left.',
  already_member: 'That phone number already belongs to a member.',
  already_invited: 'That phone number has already been invited.',
  username_taken: 'Someone already has that username. Try another one.',
  reservation_busy: 'Your username reservation changed at the same moment. Please try again.',
  member_not_found: 'There is no such member (or they are no longer in the room).',
  cannot_target_yourself: 'You cannot do that to yourself.',
  blocked: 'You cannot do that: this person, or a moderator of this room, has blocked you.',
  // Rooms
  room_not_found: 'There is no such room. It may have ended.',
  room_ended: 'This room has ended.',
  room_full: 'This room is full.',
  room_not_open_to_you: 'This room is only open to people its moderators follow or invite.',
  removed_from_room: 'You were removed from this room and cannot come back.',
  room_changed: 'The room changed at the same moment. Please try again.',
  not_in_a_room: 'Join a room first.',
  not_in_room: 'You are no longer in this room.',
  not_a_moderator: 'Only a moderator can do that.',
  not_a_listener: 'Only listeners in the audience can do that.',
  not_on_stage: 'Only people on stage can do that.',
  cannot_unmute_others: 'Only speakers can unmute themselves. Ask them to unmute.',
  cannot_remove_yourself: 'You cannot remove yourself. Leave the room instead.',
  hands_closed: 'The moderators have turned hand raising off.',
  no_invitation: 'There is no invitation to speak waiting for you.',
  last_moderator: 'The room needs a moderator. Make someone else a moderator first.',
  target_wrong_role: 'That person’s role has just changed.',
  target_not_a_listener: 'That person is no longer in the audience.',
  target_not_a_speaker: 'That person is no longer a speaker.',
  target_not_on_stage: 'That person is no longer on stage.',
  target_not_a_moderator: 'That person is not a moderator.',
  already_a_moderator: 'That person is already a moderator.',
  too_many_publishers: 'The stage is full of open microphones: wait until someone mutes.',
  too_many_devices: 'This account has notifications on 10 devices already: turn one off first.',
  not_allowed_to_publish: 'Only people on stage who are unmuted can send audio.',
  not_publishing: 'That speaker is not sending audio right now.',
  media_negotiation_failed: 'The audio connection could not be set up. Trying again…',
  media_unavailable: 'Audio is not available right now. Try again in a moment.',
  media_relay_unsupported: 'This room’s audio needs the Salon app.',
  not_following: 'You can only ping people you follow.',
  invalid_room_title: 'A room title needs 1 to 100 characters.',
  invalid_capacity: 'Salon refused the room’s capacity (a server setting).',
  invalid_page_size: 'Salon refused the page size (a server setting).',
  invalid_grace: 'Salon refused its reconnection setting (a server setting).',
  time_not_utc: 'Salon’s clock check failed (a server problem, not yours).',
  // Send Money
  not_available_yet: 'Send Money is in beta, and you are not in it yet.',
  cannot_tip_yourself: 'You cannot send money to yourself.',
  send_money_off: 'This creator does not accept money right now.',
  amount_below_minimum: 'That amount is below the minimum.',
  amount_above_maximum: 'That amount is above the maximum.',
  tip_not_found: 'There is no such tip.',
  no_payout_account: 'Set up payouts with Stripe first.',
  payouts_not_ready: 'Stripe has not finished checking your payout account. Finish onboarding, then try again.',
  idempotency_key_reused: 'That tip was already sent to someone else or for another amount. Start a new tip.',
  payment_declined: 'Your bank declined the card.',
  invalid_signature: 'Stripe’s signature was not valid (a webhook problem, not yours).',
  invalid_event: 'Stripe sent something that is not an event (a webhook problem, not yours).',
  // The creator program
  already_applied: 'You have an application to the creator program under review already.',
  already_enrolled: 'You are in the creator program already.',
  application_not_found: 'There is no application to the creator program for this member.',
  application_decided: 'That application was approved or rejected already.',
  not_enrolled: 'This member is not in the creator program.',
  invalid_month: 'Months are written YYYY-MM.',
  // Trust and safety
  cannot_report_yourself: 'You cannot report yourself.',
  report_not_found: 'There is no such report.',
  report_already_decided: 'That report has been decided already.',
  origin_not_allowed: 'This page may not open a connection to Salon. Open Salon from its own address.',
  // Events and notifications
  event_not_found: 'There is no such event.',
  not_event_host: 'Only the event’s hosts can do that.',
  event_not_scheduled: 'That event is no longer scheduled: it is live, cancelled or has lapsed.',
  event_too_early: 'An event can be started at most 15 minutes before its time.',
  invalid_event_time: 'Pick a start time in the future, within 90 days.',
  event_changed: 'The event changed meanwhile. Reload and try again.',
  club_not_found: 'There is no such club.',
  club_closed: 'That club is closed.',
  too_many_clubs: 'You can found at most 5 open clubs. Close one first.',
  not_club_admin: 'Only the club’s admins can do that.',
  not_club_member: 'Only the club’s members can do that.',
  already_club_member: 'They are already a member of the club.',
  no_club_invitation: 'There is no invitation to this club to answer.',
  last_club_admin: 'A club needs an admin: make another member admin first, or close the club.',
  club_target_is_admin: 'Make that admin a member again before removing them.',
  too_many_club_admins: 'A club has at most 10 admins.',
  club_rooms_admins_only: 'In this club only admins start rooms.',
  club_changed: 'The club changed at the same moment. Try again.',
  club_members_only: 'This room is for the club’s members only.',
  // Profile photos
  invalid_photo: 'Photos are JPEG, PNG or WebP images of at most 5 MB.',
};
// Codes whose server message is more precise than ours: it replaces ours (attempts left, the
// bank's reason) or follows it (the limits).
const SERVER_SAYS_IT_BETTER = new Set(['wrong_code', 'payment_declined', 'rate_limited', 'invalid_photo']);
const SERVER_ADDS_DETAILS = new Set(['amount_below_minimum', 'amount_above_maximum']);
const STATUS_MESSAGES = {
  0: 'Salon cannot be reached. Is `make dev` running?',
  403: 'Salon has no such address.',
  404: 'Salon has no such address.',
  405: 'Salon does not accept that here.',
  413: 'That request is too large.',
  415: 'Salon only reads JSON.',
  429: 'Salon is busy. Wait a moment and try again.',
  504: 'Salon took too long to answer. Try again.',
};

class SalonError extends Error {
  constructor(code, message, field, status) {
    super(message || code);
    this.code = code;
    this.field = field || null;
    this.status = status || null;
  }
}

/** A sentence for people: the code's own, else the server's message, else the status's. */
function describe(error) {
  if (!(error instanceof SalonError)) return String((error && error.message) || error);
  const known = MESSAGES[error.code];
  if (known) {
    const detail = error.message && error.message !== error.code ? error.message : '';
    let text = detail && SERVER_SAYS_IT_BETTER.has(error.code) ? detail : known;
    if (detail && SERVER_ADDS_DETAILS.has(error.code)) text += ' ' + detail;
    if (error.code === 'invalid_request' && error.field) text += ` (${error.field})`;
    return text;
  }
  if (error.message && error.message !== error.code) return error.message;
  if (error.status !== null && error.status in STATUS_MESSAGES) return STATUS_MESSAGES[error.status];
  if (error.status >= 500) return 'Salon is having trouble. Try again shortly.';
  return 'Salon refused that (' + error.code + ').';
}

// --- State ---------------------------------------------------------------------------------

const state = {
  config: null,
  session: null, // {access_token, refresh_token, user}
  me: null, // GET /me
  room: null, // the live room, see roomFromSnapshot
  profiles: new Map(), // user_id -> {user_id, username, name, photo_url, send_money?}
  seenTips: new Set(),
};

const $ = (selector, root = document) => root.querySelector(selector);

/** h('button', {class: 'x', onclick}, 'text', child...) */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function dollars(cents) {
  const sign = cents < 0 ? '−' : '';
  return sign + '$' + (Math.abs(cents) / 100).toFixed(2);
}

/** A member's photo, or their initial when they have none. */
function avatar(person, extra = {}) {
  const url = person && person.photo_url;
  return h('div', {class: 'avatar', 'aria-hidden': 'true', ...extra},
    url ? h('img', {src: url, alt: '', loading: 'lazy'}) : initial(person));
}

function initial(person) {
  return ((person && (person.name || person.username)) || '?').trim().charAt(0).toUpperCase();
}

/** A microphone, struck through when muted (SVG: no emoji font needed). */
function micIcon(muted) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'mic' + (muted ? ' off' : ''));
  svg.setAttribute('aria-hidden', 'true');
  svg.innerHTML = '<path fill="currentColor" d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11z"/>' +
    (muted ? '<path stroke="currentColor" stroke-width="2.2" d="M4 3l17 18"/>' : '');
  return svg;
}

function displayName(person) {
  if (!person) return 'Someone';
  return person.name || (person.username ? '@' + person.username : 'Someone');
}

function toast(text, {kind = '', action = null, timeout = 7000} = {}) {
  const item = h('div', {class: 'toast ' + kind, role: kind === 'error' ? 'alert' : null},
    h('span', {}, text));
  if (action) {
    item.append(h('button', {type: 'button', class: 'small', onclick: () => { item.remove(); action.run(); }},
      action.label));
  }
  $('#toasts').append(item);
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

function showError(error, where) {
  const text = describe(error);
  if (where) {
    where.textContent = text;
    where.className = 'status error';
  } else {
    toast(text, {kind: 'error'});
  }
  return text;
}

function say(where, text, kind = 'ok') {
  where.textContent = text;
  where.className = 'status ' + kind;
}

/** Run an async action from a button: disable it meanwhile, show any error. */
function act(button, run, where) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button) button.disabled = true;
    try {
      await run();
    } catch (error) {
      showError(error, where);
    } finally {
      if (button) button.disabled = false;
    }
  };
}

// --- Session and REST ----------------------------------------------------------------------

function loadSession() {
  try {
    state.session = JSON.parse(sessionStorage.getItem('salon.session') || 'null');
  } catch {
    state.session = null;
  }
}

function saveSession(tokens, user) {
  state.session = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    user: user || (state.session && state.session.user) || null,
  };
  sessionStorage.setItem('salon.session', JSON.stringify(state.session));
}

function tokenExpiresSoon(token) {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.exp === 'number' && payload.exp * 1000 < Date.now() + 30_000;
  } catch {
    return false;
  }
}

let refreshing = null;
/** Trade the refresh token for new tokens, once at a time. False when the session is over. */
function refreshTokens() {
  if (!state.session) return Promise.resolve(false);
  refreshing = refreshing || (async () => {
    try {
      const tokens = await api('POST', '/auth/refresh', {refresh_token: state.session.refresh_token},
        {auth: false});
      saveSession(tokens);
      return true;
    } catch (error) {
      if (error.status === 401 || error.code === 'account_suspended') {
        endSession(describe(error));
      }
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function api(method, path, body, {auth = true, retry = true} = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth && state.session) headers.Authorization = 'Bearer ' + state.session.access_token;
  let response;
  try {
    response = await fetch((state.config.api || '') + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new SalonError('network', STATUS_MESSAGES[0], null, 0);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const error = data && data.error;
  if (response.status === 401 && auth && retry && error && error.code === 'not_authenticated') {
    if (await refreshTokens()) return api(method, path, body, {auth, retry: false});
  }
  if (error && error.code) throw new SalonError(error.code, error.message, error.field, response.status);
  const message = data && (data.message || data.Message);
  throw new SalonError('http_' + response.status, message, null, response.status);
}

function endSession(message) {
  const wasSignedIn = Boolean(state.session);
  state.session = null;
  state.me = null;
  sessionStorage.removeItem('salon.session');
  sessionStorage.removeItem('salon.room');
  leaveRoomLocally();
  realtime.close();
  stopPush();
  $('#nav').hidden = true;
  if (wasSignedIn && message) toast(message, {kind: 'error'});
  history.replaceState(null, '', '#signin');
  route();
}

/** A member's name and username, from what this page already knows or else from Salon. */
async function profileOf(userId) {
  const known = state.profiles.get(userId);
  if (known && known.username) return known;
  return fetchProfile(userId);
}

/** A member's whole profile (with `send_money`), asked of Salon now. */
async function fetchProfile(userId) {
  try {
    remember(await api('GET', '/users/' + encodeURIComponent(userId)));
  } catch {
    // a name we cannot get is shown as "Someone"
  }
  return state.profiles.get(userId) || {user_id: userId};
}

function remember(person) {
  if (!person || !person.user_id) return;
  state.profiles.set(person.user_id, {...(state.profiles.get(person.user_id) || {}), ...person});
}

// --- The WebSocket ---------------------------------------------------------------------------

class Realtime {
  constructor() {
    this.ws = null;
    this.pending = new Map();
    this.nextRef = 1;
    this.wanted = false;
    this.backoff = 1000;
    this.ready = null;
    this.pingTimer = null;
    this.events = Promise.resolve(); // events are handled one at a time, in order
  }

  /** Connect (once); resolves when the socket is open. */
  connect() {
    this.wanted = true;
    if (this.ready) return this.ready;
    this.ready = this._open().catch((error) => {
      this.ready = null;
      throw error;
    });
    return this.ready;
  }

  async _open() {
    if (tokenExpiresSoon(state.session.access_token)) await refreshTokens();
    if (!state.session) throw new SalonError('not_authenticated');
    const url = state.config.websocket + '?token=' + encodeURIComponent(state.session.access_token);
    const ws = new WebSocket(url);
    this.ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onclose = () => reject(new SalonError('handshake', 'The realtime connection was refused.'));
    });
    this.backoff = 1000;
    connectionBanner(null);
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = () => this._closed(ws);
    clearInterval(this.pingTimer);
    // API Gateway closes sockets idle for 10 minutes.
    this.pingTimer = setInterval(() => this.send('ping').catch(() => {}), 240_000);
    return ws;
  }

  _receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    // Replies (REPLY_TYPES, or an error) carry the ref of the action they answer.
    if (message.ref && this.pending.has(message.ref)) {
      const {resolve, reject} = this.pending.get(message.ref);
      this.pending.delete(message.ref);
      if (message.type === 'error') {
        reject(new SalonError(message.code, message.message, message.field));
      } else {
        resolve(message);
      }
      return;
    }
    if (message.type === 'error') {
      toast(describe(new SalonError(message.code, message.message, message.field)), {kind: 'error'});
      return;
    }
    this.events = this.events.then(() => onEvent(message)).catch((error) => console.error(error));
  }

  _closed(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = null;
    clearInterval(this.pingTimer);
    for (const {reject} of this.pending.values()) reject(new SalonError('not_connected'));
    this.pending.clear();
    if (this.wanted && state.session) this._reconnectLater();
  }

  _reconnectLater() {
    connectionBanner(state.room
      ? 'Connection lost. Reconnecting to Salon… your seat in the room is kept for 30 seconds.'
      : 'Connection lost. Reconnecting to Salon…');
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 15_000);
    setTimeout(async () => {
      if (!this.wanted || !state.session || this.ready) return;
      try {
        await this.connect();
        await resumeRoom();
      } catch {
        // A refused handshake may be an expired or revoked session: refresh (or sign out).
        await refreshTokens();
        if (this.wanted && state.session && !this.ready) this._reconnectLater();
      }
    }, wait);
  }

  /** Send an action; resolves with Salon's reply, rejects with a SalonError. */
  async send(action, fields = {}) {
    await this.connect();
    const ref = String(this.nextRef++);
    return new Promise((resolve, reject) => {
      this.pending.set(ref, {resolve, reject});
      try {
        this.ws.send(JSON.stringify({action, ref, ...fields}));
      } catch {
        this.pending.delete(ref);
        reject(new SalonError('not_connected'));
      }
    });
  }

  close() {
    this.wanted = false;
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.ready = null;
  }
}

const REPLY_TYPES = ['room', 'left', 'audience', 'ack', 'pong', 'error', 'media_answer', 'media_live', 'media_offer', 'media_started', 'media_unsubscribed', 'moderation_log'];
const realtime = new Realtime();

function connectionBanner(text) {
  const banner = $('#connection');
  banner.hidden = !text;
  banner.textContent = text || '';
}

// --- Audio: through the SFU ------------------------------------------------------------------------

function newId() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Math.random())).replace(/-/g, '').slice(0, 16);
}

/** Wait until the connection has gathered its ICE candidates (non-trickle SDP), or 2 s. */
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', done);
      resolve();
    };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 2000);
  });
}

class Sfu {
  constructor() {
    this.publisher = null; // {pc, live}
    this.feeds = new Map(); // user_id -> {pc, handle, audio}
    this.waiting = new Set(); // speakers not sending yet: subscribed to on their media_live
    this.live = new Set(); // speakers whose audio reaches the SFU, as far as this page knows
    this.mic = null; // MediaStreamTrack
    this.levels = new Map();
    this.statsTimer = null;
    // Salon negotiates one subscription of a connection at a time: requests go in turn.
    this.queue = Promise.resolve();
  }

  myId() {
    return state.session && state.session.user && state.session.user.user_id;
  }

  iceServers() {
    const media = state.room && state.room.media;
    return (media && media.ice_servers) || state.config.ice_servers || [];
  }

  /** Salon's rule: on stage and unmuted. The SFU enforces it whatever this page does. */
  mayPublish() {
    return this.publishing(state.room && state.room.viewer);
  }

  /** Whether someone (a stage entry, or the viewer) may send: on stage and unmuted. */
  publishing(entry) {
    return Boolean(entry && entry.role !== 'listener' && !entry.muted);
  }

  inTurn(task) {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => {});
    return run;
  }

  async microphone() {
    if (this.mic && this.mic.readyState === 'live') return this.mic;
    const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: false});
    this.mic = stream.getAudioTracks()[0];
    return this.mic;
  }

  /** Bring the connections in line with the room: what to send, whom to hear. */
  sync() {
    const room = state.room;
    if (!room || !room.viewer) {
      this.closeAll();
      return;
    }
    if (this.mayPublish() && this.mic && !this.publisher) this.publish();
    if (!this.mayPublish() && this.publisher) this.stopPublishing();
    const me = this.myId();
    for (const [userId, entry] of room.stage) {
      if (userId === me) continue;
      if (!this.publishing(entry)) {
        this.waiting.delete(userId);
        this.live.delete(userId);
        if (this.feeds.has(userId)) this.unsubscribe(userId);
      } else if (!this.feeds.has(userId) && !this.waiting.has(userId)) {
        this.subscribe(userId);
      }
    }
    for (const userId of [...this.feeds.keys()]) {
      if (!room.stage.has(userId)) this.unsubscribe(userId);
    }
    if (!this.statsTimer) this.statsTimer = setInterval(() => this.measure(), 600);
  }

  // Sending ------------------------------------------------------------------------------------

  async publish() {
    const pc = new RTCPeerConnection({iceServers: this.iceServers()});
    const pub = {pc, live: false};
    this.publisher = pub;
    try {
      pc.addTransceiver(await this.microphone(), {direction: 'sendonly'});
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (this.publisher !== pub) return;
      const reply = await realtime.send('media_publish', {sdp: pc.localDescription.sdp});
      if (this.publisher !== pub) return;
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected' && !pub.live) this._announce(pub);
        if (pc.connectionState === 'failed') this._republishLater(pub);
      };
      await pc.setRemoteDescription({type: 'answer', sdp: reply.sdp});
    } catch (error) {
      if (this.publisher === pub) this._republishLater(pub, error);
    }
  }

  /** Tell the room (through Salon, which checks with the SFU) that this audio is on. */
  async _announce(pub) {
    for (let attempt = 0; attempt < 10 && this.publisher === pub; attempt++) {
      try {
        await realtime.send('media_live');
        pub.live = true;
        renderRoom();
        return;
      } catch (error) {
        if (error.code !== 'not_publishing') return;
        await new Promise((resolve) => setTimeout(resolve, 150)); // the SFU is a moment behind
      }
    }
  }

  _republishLater(pub, error) {
    pub.pc.close();
    if (this.publisher !== pub) return;
    this.publisher = null;
    if (error && error.code === 'not_allowed_to_publish') return; // the room moved on
    setTimeout(() => this.sync(), 1000);
  }

  stopPublishing() {
    const pub = this.publisher;
    this.publisher = null;
    if (pub) pub.pc.close();
  }

  // Hearing ------------------------------------------------------------------------------------

  subscribe(userId) {
    const feed = {pc: null, handle: null, audio: null};
    this.feeds.set(userId, feed);
    return this.inTurn(async () => {
      if (this.feeds.get(userId) !== feed) return;
      let offer;
      try {
        offer = await realtime.send('media_subscribe', {user_id: userId});
      } catch {
        // Not sending yet (or any more): their media_live brings us back.
        if (this.feeds.get(userId) === feed) this.feeds.delete(userId);
        this.waiting.add(userId);
        return;
      }
      feed.handle = offer.handle;
      if (this.feeds.get(userId) !== feed) {
        realtime.send('media_unsubscribe', {handle: offer.handle}).catch(() => {});
        return;
      }
      const pc = new RTCPeerConnection({iceServers: this.iceServers()});
      feed.pc = pc;
      pc.ontrack = (event) => {
        if (!feed.audio) {
          feed.audio = h('audio', {autoplay: true, dataset: {userId}});
          $('#audio').append(feed.audio);
        }
        feed.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
        feed.audio.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected') {
          this.live.add(userId);
          renderRoom();
        } else if (pc.connectionState === 'failed' && this.feeds.get(userId) === feed) {
          // The SFU went away (or the network): the speaker's next media_live brings them back.
          this.unsubscribe(userId);
          this.waiting.add(userId);
          renderRoom();
        }
      };
      try {
        await pc.setRemoteDescription({type: 'offer', sdp: offer.sdp});
        await pc.setLocalDescription(await pc.createAnswer());
        await gathered(pc);
        await realtime.send('media_answer', {handle: feed.handle, sdp: pc.localDescription.sdp});
      } catch {
        if (this.feeds.get(userId) === feed) this.unsubscribe(userId);
        this.waiting.add(userId);
      }
    });
  }

  unsubscribe(userId) {
    const feed = this.feeds.get(userId);
    if (!feed) return;
    this.feeds.delete(userId);
    this.live.delete(userId);
    this.levels.delete(userId);
    if (feed.pc) feed.pc.close();
    if (feed.audio) feed.audio.remove();
    if (feed.handle) this.inTurn(() => realtime.send('media_unsubscribe', {handle: feed.handle}).catch(() => {}));
  }

  /** A speaker's audio is on (again, after a reload): hear it through a fresh subscription. */
  onLive(userId) {
    if (userId === this.myId()) return;
    this.waiting.delete(userId);
    this.unsubscribe(userId);
    const entry = state.room && state.room.stage.get(userId);
    if (this.publishing(entry)) this.subscribe(userId);
  }

  closeAll() {
    this.stopPublishing();
    for (const userId of [...this.feeds.keys()]) this.unsubscribe(userId);
    this.waiting.clear();
    this.live.clear();
    clearInterval(this.statsTimer);
    this.statsTimer = null;
    if (this.mic) {
      this.mic.stop();
      this.mic = null;
    }
  }

  // What the browser reports -------------------------------------------------------------------

  static async report(pc) {
    const report = await pc.getStats();
    const out = {inbound_bytes: 0, outbound_bytes: 0, level: 0, state: pc.connectionState, remote: null, local: null};
    let pairId = null;
    report.forEach((entry) => {
      if (entry.type === 'transport' && entry.selectedCandidatePairId) pairId = entry.selectedCandidatePairId;
    });
    report.forEach((entry) => {
      if (entry.kind === 'audio' && entry.type === 'inbound-rtp') {
        out.inbound_bytes += entry.bytesReceived || 0;
        out.level = Math.max(out.level, entry.audioLevel || 0);
      }
      if (entry.kind === 'audio' && entry.type === 'outbound-rtp') out.outbound_bytes += entry.bytesSent || 0;
      if (entry.type === 'candidate-pair' && (entry.id === pairId || (!pairId && entry.nominated))) {
        const remote = report.get(entry.remoteCandidateId);
        const local = report.get(entry.localCandidateId);
        if (remote) out.remote = {address: remote.address || remote.ip, port: remote.port};
        if (local) out.local = {address: local.address || local.ip, port: local.port};
      }
    });
    return out;
  }

  /** What this page hears from each speaker (also what the browser tests read). */
  async stats() {
    const result = {};
    for (const [userId, feed] of this.feeds) {
      if (feed.pc) result[userId] = {...(await Sfu.report(feed.pc)), handle: feed.handle};
    }
    return result;
  }

  /** What this page sends, if anything. */
  async sending() {
    return this.publisher ? {...(await Sfu.report(this.publisher.pc)), live: this.publisher.live} : null;
  }

  /** Light up whoever is being heard. */
  async measure() {
    if (!state.room) return;
    const stats = await this.stats();
    for (const [userId, entry] of Object.entries(stats)) this.levels.set(userId, entry.level);
    for (const card of document.querySelectorAll('.stage .person')) {
      const userId = card.dataset.userId;
      const level = userId === this.myId() ? (this.publisher ? 0.05 : 0) : this.levels.get(userId) || 0;
      card.classList.toggle('speaking', level > 0.01);
    }
  }
}

const sfu = new Sfu();

// --- Stripe.js stand-in ------------------------------------------------------------------------

/** What Stripe.js does, against the Stripe API named in config.json, with the publishable key. */
async function stripeCall(path, params, method = 'POST') {
  const body = new URLSearchParams({key: state.config.stripe.publishable_key});
  const add = (prefix, value) => {
    if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) add(prefix ? `${prefix}[${k}]` : k, v);
    } else if (value !== undefined && value !== null) {
      body.append(prefix, String(value));
    }
  };
  add('', params);
  let response;
  try {
    response = method === 'GET'
      ? await fetch(`${state.config.stripe.api}${path}?${body}`)
      : await fetch(state.config.stripe.api + path, {method, body});
  } catch {
    throw new Error('Stripe cannot be reached.');
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok || data.error) {
    throw new Error((data.error && data.error.message) || 'Stripe refused the card.');
  }
  return data;
}

/**
 * Stripe.js's confirmCardPayment(clientSecret, {payment_method: {card}}): with a card, make a
 * PaymentMethod and confirm with it; without one (the bank wants the sender to authenticate a
 * saved card), confirm again on-session with the card that was refused off-session. Either may
 * then ask for 3-D Secure.
 */
async function confirmCardPayment(clientSecret, card) {
  const intent = clientSecret.split('_secret_')[0];
  const confirm = (paymentMethod) => stripeCall(`/v1/payment_intents/${intent}/confirm`, {
    client_secret: clientSecret, payment_method: paymentMethod,
  });
  let paymentIntent;
  if (card) {
    const [month, year] = card.expiry.split('/').map((part) => part.trim());
    const method = await stripeCall('/v1/payment_methods', {
      type: 'card',
      card: {number: card.number.replace(/\s+/g, ''), exp_month: month, exp_year: '20' + (year || '').slice(-2), cvc: card.cvc},
    });
    paymentIntent = await confirm(method.id);
  } else {
    paymentIntent = await stripeCall(`/v1/payment_intents/${intent}`, {client_secret: clientSecret}, 'GET');
    const refused = paymentIntent.last_payment_error && paymentIntent.last_payment_error.payment_method;
    if (paymentIntent.status === 'requires_payment_method' && refused) {
      paymentIntent = await confirm(typeof refused === 'object' ? refused.id : refused);
    }
  }
  if (paymentIntent.status === 'requires_action') {
    const confirmed = await askToAuthenticate();
    paymentIntent = await stripeCall(`/v1/payment_intents/${intent}/_authenticate?success=${confirmed}`, {
      client_secret: clientSecret,
    });
    if (!confirmed) throw new Error('You cancelled the bank’s confirmation; nothing was charged.');
  }
  if (paymentIntent.status === 'requires_payment_method') {
    const reason = paymentIntent.last_payment_error && paymentIntent.last_payment_error.message;
    throw new Error(reason || 'The card was not accepted.');
  }
  return paymentIntent;
}

function askToAuthenticate() {
  return new Promise((resolve) => {
    $('#money-auth-step').hidden = false;
    const extra = $('#money-extra');
    extra.replaceChildren(
      h('button', {type: 'button', onclick: () => { extra.replaceChildren(); $('#money-auth-step').hidden = true; resolve(true); }},
        'Confirm payment'),
      ' ',
      h('button', {type: 'button', class: 'secondary', onclick: () => { extra.replaceChildren(); $('#money-auth-step').hidden = true; resolve(false); }},
        'Cancel payment'),
    );
  });
}

// --- Sending money -------------------------------------------------------------------------------

const money = {creator: null, tip: null, key: null, step: 'amount', authenticating: false};

function amountCents() {
  const value = Number($('#money-amount').value);
  return Number.isFinite(value) ? Math.round(value * 100) : 0;
}

async function openMoneyDialog(creator) {
  money.creator = creator;
  money.tip = null;
  money.key = null;
  money.step = 'amount';
  $('#money-title').textContent = 'Send money to ' + displayName(creator);
  $('#money-amount-step').hidden = false;
  $('#money-card-step').hidden = true;
  $('#money-auth-step').hidden = true;
  $('#money-extra').replaceChildren();
  $('#money-go').textContent = 'Send';
  $('#money-go').disabled = false;
  $('#money-go').hidden = false;
  say($('#money-status'), '');
  $('#money-dialog').showModal();
  await quote();
}

async function quote() {
  const status = $('#money-status');
  const line = $('#money-quote');
  line.textContent = '';
  const cents = amountCents();
  if (cents <= 0) return;
  try {
    const q = await api('GET', `/tips/quote?creator_id=${encodeURIComponent(money.creator.user_id)}&amount_cents=${cents}`);
    line.textContent = q.fee_paid_by === 'sender'
      ? `You pay ${dollars(q.total_cents)} (${dollars(q.amount_cents)} + ${dollars(q.fee_cents)} card fee).`
      : `You pay ${dollars(q.total_cents)}; Salon pays the card fee.`;
    say(status, '');
  } catch (error) {
    showError(error, status);
    offerBeta(error);
  }
}

/** The local stack lets a member join the Send Money beta themselves (an operator's job on AWS). */
function offerBeta(error) {
  const extra = $('#money-extra');
  extra.replaceChildren();
  if (error.code !== 'not_available_yet' || !state.config.local) return;
  const button = h('button', {type: 'button', class: 'secondary'}, 'Join the Send Money beta (local stack)');
  button.addEventListener('click', act(button, async () => {
    const answer = await api('POST', '/_local/admin/admin_beta_add', {user_id: sfu.myId()}, {auth: false});
    if (!answer || !answer.ok) throw new SalonError((answer && answer.error && answer.error.code) || 'unavailable');
    extra.replaceChildren();
    await quote();
  }, $('#money-status')));
  extra.append(button);
}

async function moneySubmit(event) {
  event.preventDefault();
  const go = $('#money-go');
  const status = $('#money-status');
  go.disabled = true;
  try {
    if (money.step === 'amount') {
      const cents = amountCents();
      money.key = money.key || newId() + newId();
      say(status, 'Sending…', 'muted');
      const started = await api('POST', '/tips', {
        creator_id: money.creator.user_id, amount_cents: cents, idempotency_key: money.key,
      });
      money.tip = started.tip;
      await nextStep(started);
    } else if (money.step === 'card') {
      say(status, 'Paying…', 'muted');
      const paid = await confirmCardPayment(money.clientSecret, {
        number: $('#card-number').value, expiry: $('#card-expiry').value, cvc: $('#card-cvc').value,
      });
      await settle(paid.status === 'succeeded');
    }
  } catch (error) {
    showError(error, status);
    offerBeta(error);
    if (error.code === 'idempotency_key_reused') money.key = null;
  } finally {
    go.disabled = false;
  }
}

async function nextStep(started) {
  const status = $('#money-status');
  if (started.next_step === 'confirm_with_card') {
    money.step = 'card';
    money.clientSecret = started.client_secret;
    $('#money-amount-step').hidden = true;
    $('#money-card-step').hidden = false;
    $('#money-go').textContent = `Pay ${dollars(started.tip.total_cents)}`;
    say(status, '');
  } else if (started.next_step === 'authenticate') {
    money.clientSecret = started.client_secret;
    money.authenticating = true;
    if (started.message) say(status, started.message, 'muted');
    try {
      const paid = await confirmCardPayment(started.client_secret, null);
      await settle(paid.status === 'succeeded');
    } finally {
      money.authenticating = false;
    }
  } else if (started.next_step === 'retry') {
    money.key = null;
    say(status, (started.message || 'The payment failed.') + ' Try again.', 'error');
  } else {
    await settle();
  }
}

/** Wait until Salon has heard from Stripe that the payment succeeded (the ledger follows
 * Stripe's webhook). `paid`: Stripe already said so here, so an earlier failure is stale. */
async function settle(paid = false) {
  const status = $('#money-status');
  say(status, 'Waiting for Stripe…', 'muted');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const tip = await api('GET', '/tips/' + money.tip.tip_id);
    if (tip.status === 'succeeded') {
      finishTip(tip);
      return;
    }
    if (tip.status === 'failed' && !paid) {
      money.key = null;
      money.step = 'amount';
      $('#money-amount-step').hidden = false;
      $('#money-card-step').hidden = true;
      $('#money-go').textContent = 'Send';
      throw new Error(tip.failure_message || 'The payment failed.');
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  say(status, 'Stripe is still processing the payment; it will show under Earnings → Tips you sent.', 'muted');
}

function finishTip(tip) {
  money.step = 'done';
  $('#money-amount-step').hidden = true;
  $('#money-card-step').hidden = true;
  $('#money-go').hidden = true;
  say($('#money-status'), `Sent! ${displayName(money.creator)} receives ${dollars(tip.amount_cents)}.`);
  setTimeout(() => {
    if (money.step === 'done') $('#money-dialog').close();
    $('#money-go').hidden = false;
  }, 2500);
}

// --- Rooms ----------------------------------------------------------------------------------------

/** What a stage card says about someone's audio: away, connecting, or nothing (it flows). */
function audioState(entry, mine) {
  if (entry.connected === false) return ' reconnecting…';
  if (!sfu.publishing(entry)) return '';
  const flowing = mine ? sfu.publisher && sfu.publisher.live : sfu.live.has(entry.user_id);
  return flowing ? '' : ' connecting audio…';
}

function roomFromSnapshot(snapshot) {
  const room = {
    id: snapshot.room_id,
    title: snapshot.title,
    kind: snapshot.kind,
    creatorId: snapshot.creator_id,
    handsAllowed: snapshot.hands_allowed,
    audienceCount: snapshot.audience_count,
    stage: new Map(),
    audience: new Map(),
    audienceCursor: snapshot.audience_cursor || null,
    hands: new Map(),
    viewer: snapshot.viewer,
    media: snapshot.media || null,
    notices: (state.room && state.room.id === snapshot.room_id) ? state.room.notices : [],
    // The room's version the snapshot shows, and the newest event applied per person.
    version: snapshot.version || 0,
    versions: new Map(),
    seen: new Set(),
  };
  for (const entry of snapshot.stage || []) {
    remember(entry);
    room.stage.set(entry.user_id, {...entry});
  }
  for (const person of snapshot.audience || []) {
    remember(person);
    room.audience.set(person.user_id, person);
  }
  for (const hand of snapshot.raised_hands || []) {
    remember(hand);
    room.hands.set(hand.user_id, hand);
  }
  return room;
}

function setRoom(snapshot) {
  state.room = roomFromSnapshot(snapshot);
  sessionStorage.setItem('salon.room', state.room.id);
  sfu.sync();
  const viewer = state.room.viewer;
  if (viewer && viewer.role !== 'listener' && !viewer.muted && !sfu.mic) {
    // Resumed live (after a reload): the microphone comes back, or the speaker goes muted.
    sfu.microphone().then(() => sfu.sync()).catch(() => roomAction('mute'));
  }
  loadStageProfiles();
  if (location.hash === '#room' && !$('#room')) route(); // resumed after a reload
  renderRoom();
  renderRoomBar();
}

function leaveRoomLocally() {
  state.room = null;
  sessionStorage.removeItem('salon.room');
  sfu.closeAll();
  renderRoomBar();
}

async function enterRoom(roomId) {
  const snapshot = await realtime.send('join_room', {room_id: roomId});
  setRoom(snapshot);
  location.hash = '#room';
}

/** After a reconnection (or a reload): take the seat back within the grace period. */
async function resumeRoom() {
  const roomId = (state.room && state.room.id) || sessionStorage.getItem('salon.room');
  if (!roomId) return;
  try {
    setRoom(await realtime.send('join_room', {room_id: roomId}));
  } catch (error) {
    leaveRoomLocally();
    toast(describe(error), {kind: 'error'});
    if (location.hash === '#room') location.hash = '#hallway';
  }
}

async function roomAction(action, fields = {}) {
  try {
    return await realtime.send(action, fields);
  } catch (error) {
    toast(describe(error), {kind: 'error'});
    // A refusal about the person acted on means the room moved on: refresh it.
    if (/^(target_|member_not_found|already_a_moderator)/.test(error.code) && state.room) {
      realtime.send('join_room', {room_id: state.room.id}).then(setRoom).catch(() => {});
    }
    return null;
  }
}

/** The audience's first page, asked again when its count moved (joins are not pushed one by
 * one): moderators act on that list, so theirs follows the room. At most once per count event,
 * which Salon coalesces (audience_count_interval_seconds). */
let audienceTimer = null;
function refreshAudienceSoon() {
  const room = state.room;
  if (!room || !room.viewer || room.viewer.role !== 'moderator') return;
  if (room.audience.size === room.audienceCount && !room.audienceCursor) return;
  clearTimeout(audienceTimer);
  audienceTimer = setTimeout(() => refreshAudience().catch(() => {}), 100);
}

async function refreshAudience() {
  const room = state.room;
  if (!room) return;
  const page = await realtime.send('list_audience');
  if (state.room !== room) return;
  page.audience.forEach(remember);
  room.audience = new Map(page.audience.map((p) => [p.user_id, p]));
  room.audienceCursor = page.cursor;
  renderRoom();
}

async function loadStageProfiles() {
  if (!state.room) return;
  for (const userId of state.room.stage.keys()) {
    const known = state.profiles.get(userId);
    if (known && 'send_money' in known) continue;
    await fetchProfile(userId);
  }
  renderRoom();
}

function updateViewer(fields) {
  if (state.room && state.room.viewer) Object.assign(state.room.viewer, fields);
}

function roomNotice(text) {
  if (!state.room) return;
  state.room.notices.unshift({text, at: new Date()});
  state.room.notices.length = Math.min(state.room.notices.length, 20);
}

/** A big room's events are posted by parallel workers: two actions' events can cross on the
 * way, and a retried batch repeats one. Each carries the room's version after its change; one
 * older than the snapshot, or than the last applied about the same person, or seen already, is
 * dropped (docs/asyncapi.yaml, "Ordering"). One at the snapshot's version is applied: changes
 * to listeners alone (a removal, a hand) do not move the version, so it may be newer. */
function isOldNews(room, message) {
  if (typeof message.version !== 'number') return false;
  const subject = message.user_id || '';
  const key = `${message.version}:${message.type}:${subject}`;
  if (room.seen.has(key) || message.version < room.version) return true;
  if (message.version < (room.versions.get(subject) || 0)) return true;
  room.seen.add(key);
  room.versions.set(subject, message.version);
  return false;
}

/** Everything Salon pushes: room events, signaling, pings and money notices. */
async function onEvent(message) {
  const me = sfu.myId();
  const room = state.room;
  const inThisRoom = room && (!message.room_id || message.room_id === room.id);
  const who = (userId) => displayName(state.profiles.get(userId));
  switch (message.type) {
    case 'report_decided':
    case 'warning':
      safetyNotice(message);
      return;
    case 'media_live':
      if (inThisRoom) {
        sfu.onLive(message.user_id);
        renderRoom();
      }
      return;
    case 'media_credentials':
      if (inThisRoom) room.media = message;
      return;
    case 'pong':
      return;
    case 'room_ping': {
      const from = message.from || {};
      toast(`${displayName(from)} invites you to listen to “${message.title}”.`, {
        action: {label: 'Join', run: () => enterRoom(message.room_id).catch(showError)}, timeout: 20000,
      });
      return;
    }
    case 'room_invitation_sent':
      if (message.user_id === me && !(room && room.id === message.room_id)) {
        const by = await profileOf(message.by_id);
        toast(`${displayName(by)} invited you into a room.`, {
          action: {label: 'Join', run: () => enterRoom(message.room_id).catch(showError)}, timeout: 20000,
        });
      }
      return;
    case 'tip_received':
      state.seenTips.add(message.tip_id);
      toast(`${displayName(message.from)} sent you ${dollars(message.amount_cents)}!`, {kind: 'money', timeout: 15000});
      roomNotice(`${displayName(message.from)} sent you ${dollars(message.amount_cents)}.`);
      renderRoom();
      if (location.hash.startsWith('#earnings')) route();
      return;
    case 'tip_sent':
      state.seenTips.add(message.tip_id);
      roomNotice(`You sent ${dollars(message.amount_cents)}.`);
      renderRoom();
      if (location.hash.startsWith('#earnings')) route();
      return;
    case 'tip_failed':
      if (money.authenticating && money.tip && money.tip.tip_id === message.tip_id) return;
      toast(`Your tip could not be sent: ${message.message}`, {kind: 'error', timeout: 15000});
      // While the sender authenticates, the off-session refusal that asked for it is old news.
      if (money.tip && money.tip.tip_id === message.tip_id && !money.authenticating) {
        say($('#money-status'), message.message, 'error');
      }
      return;
    case 'tip_announced':
      if (inThisRoom && !state.seenTips.has(message.tip_id)) {
        roomNotice(`${displayName(message.from)} sent ${dollars(message.amount_cents)} to someone on stage.`);
        renderRoom();
      }
      return;
    default:
      break;
  }
  if (!inThisRoom) return;
  if (isOldNews(room, message)) return;

  const stage = room.stage;
  switch (message.type) {
    case 'audience_count':
      room.audienceCount = message.count;
      refreshAudienceSoon();
      break;
    case 'hand_raised':
      room.hands.set(message.user_id, await profileOf(message.user_id));
      if (message.user_id === me) updateViewer({hand_raised: true});
      else roomNotice(`${who(message.user_id)} raised a hand.`);
      break;
    case 'hand_lowered':
      room.hands.delete(message.user_id);
      if (message.user_id === me) updateViewer({hand_raised: false});
      break;
    case 'hands_toggled':
      room.handsAllowed = message.allowed;
      if (!message.allowed) {
        room.hands.clear();
        updateViewer({hand_raised: false});
      }
      roomNotice(message.allowed ? 'Hand raising is on.' : 'Hand raising is off.');
      break;
    case 'speaker_invited':
      if (message.user_id === me) {
        updateViewer({invited_to_speak: true});
        toast(`${who(message.by_id)} invites you to speak.`);
      }
      break;
    case 'invitation_accepted': {
      const person = await profileOf(message.user_id);
      stage.set(message.user_id, {...person, user_id: message.user_id, role: 'speaker', muted: message.muted, connected: true});
      room.audience.delete(message.user_id);
      room.hands.delete(message.user_id);
      if (message.user_id === me) {
        updateViewer({role: 'speaker', muted: message.muted, invited_to_speak: false, hand_raised: false});
      }
      roomNotice(`${who(message.user_id)} joined the stage.`);
      break;
    }
    case 'invitation_declined':
      roomNotice(`${who(message.user_id)} declined to speak.`);
      if (message.user_id === me) updateViewer({invited_to_speak: false});
      break;
    case 'moved_to_audience': {
      const entry = stage.get(message.user_id);
      stage.delete(message.user_id);
      room.audience.set(message.user_id, entry || state.profiles.get(message.user_id) || {user_id: message.user_id});
      if (message.user_id === me) {
        updateViewer({role: 'listener', muted: true});
        if (message.by_id !== me) toast(`${who(message.by_id)} moved you to the audience.`);
      }
      roomNotice(`${who(message.user_id)} left the stage.`);
      break;
    }
    case 'speaker_muted':
      if (stage.has(message.user_id)) stage.get(message.user_id).muted = true;
      if (message.user_id === me) {
        updateViewer({muted: true});
        if (message.by_id !== me) toast(`${who(message.by_id)} muted you.`);
      }
      break;
    case 'speaker_unmuted':
      if (stage.has(message.user_id)) stage.get(message.user_id).muted = false;
      if (message.user_id === me) updateViewer({muted: false});
      break;
    case 'moderator_added': {
      const person = stage.get(message.user_id) || await profileOf(message.user_id);
      stage.set(message.user_id, {...person, user_id: message.user_id, role: 'moderator', muted: message.muted, connected: true});
      room.audience.delete(message.user_id);
      room.hands.delete(message.user_id);
      roomNotice(`${who(message.user_id)} is now a moderator.`);
      if (message.user_id === me) {
        // A new moderator needs the raised hands: a fresh snapshot has them.
        setRoom(await realtime.send('join_room', {room_id: room.id}));
        return;
      }
      break;
    }
    case 'moderator_removed':
      if (stage.has(message.user_id)) stage.get(message.user_id).role = 'speaker';
      if (message.user_id === me) {
        updateViewer({role: 'speaker'});
        room.hands.clear();
      }
      break;
    case 'member_removed':
      if (message.user_id === me) {
        leaveRoomLocally();
        toast('A moderator removed you from the room.', {kind: 'error'});
        location.hash = '#hallway';
        return;
      }
      stage.delete(message.user_id);
      room.audience.delete(message.user_id);
      room.hands.delete(message.user_id);
      roomNotice(`${who(message.user_id)} was removed from the room.`);
      break;
    case 'member_left':
      stage.delete(message.user_id);
      room.audience.delete(message.user_id);
      room.hands.delete(message.user_id);
      if (message.user_id !== me) roomNotice(`${who(message.user_id)} left the room.`);
      break;
    case 'member_disconnected':
      if (stage.has(message.user_id)) stage.get(message.user_id).connected = false;
      break;
    case 'member_reconnected':
      if (stage.has(message.user_id)) stage.get(message.user_id).connected = true;
      break;
    case 'room_ended':
      leaveRoomLocally();
      toast(message.reason === 'last_moderator_left'
        ? 'The room has ended: its last moderator left.'
        : message.by_id === me ? 'You ended the room.' : 'A moderator ended the room.');
      if (location.hash === '#room') location.hash = '#hallway';
      return;
    case 'room_created': // the creator's own snapshot says it all
    case 'member_joined': // listeners' churn only moves audience_count
      return;
    default:
      return; // events this client does not know are ignored, as the protocol asks
  }
  sfu.sync();
  renderRoom();
}

// --- Views -----------------------------------------------------------------------------------------

function mount(...children) {
  const view = $('#view');
  view.replaceChildren(...children);
  for (const link of document.querySelectorAll('#nav a')) {
    const here = location.hash.split('/')[0] === link.getAttribute('href');
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** What shows while a view or a list waits on Salon. */
function loading(text = 'Loading…') {
  return h('p', {class: 'loading muted', role: 'status', 'aria-busy': 'true'}, h('span', {class: 'spinner', 'aria-hidden': 'true'}), text);
}

function renderRoomBar() {
  const bar = $('#room-bar');
  const show = state.room && location.hash !== '#room';
  bar.hidden = !show;
  if (show) bar.replaceChildren('You are in “' + state.room.title + '” · ', h('a', {href: '#room'}, 'Back to the room'));
}

// Sign in ---------------------------------------------------------------------------------------

function viewSignIn() {
  const status = h('p', {class: 'status', role: 'status'});
  const phone = h('input', {name: 'phone', type: 'tel', autocomplete: 'tel', placeholder: '+1 415 555 0100', required: true});
  const code = h('input', {name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, pattern: '[0-9]{6}'});
  const codeStep = h('div', {hidden: true});
  const send = h('button', {type: 'submit'}, 'Text me a code');
  const verify = h('button', {type: 'button'}, 'Sign in');
  const outbox = h('button', {type: 'button', class: 'secondary'}, 'Get the code from the local SMS outbox');
  let number = '';

  const form = h('form', {class: 'card'},
    h('label', {}, 'Phone number', phone),
    send,
    codeStep,
    status);
  codeStep.append(
    h('label', {}, 'Code', code),
    h('div', {class: 'controls'}, verify, state.config.local ? outbox : null),
    state.config.local
      ? h('p', {class: 'muted small'}, 'On the local stack no text message leaves the machine: the code waits in the SMS outbox.')
      : null);

  form.addEventListener('submit', act(send, async () => {
    const started = await api('POST', '/auth/sign-in', {phone: phone.value}, {auth: false});
    number = started.phone;
    codeStep.hidden = false;
    say(status, `Code sent to ${number}. It is valid for ${Math.round(started.expires_in / 60)} minutes.`);
    code.focus();
  }, status));
  outbox.addEventListener('click', act(outbox, async () => {
    const box = await api('GET', '/_local/sms/' + encodeURIComponent(number.replace(/^\+/, '')), undefined, {auth: false});
    if (!box.latest_code) throw new Error('No code in the outbox yet.');
    code.value = box.latest_code;
  }, status));
  verify.addEventListener('click', act(verify, async () => {
    const answer = await api('POST', '/auth/verify', {phone: number, code: code.value.trim()}, {auth: false});
    if (answer.status === 'member') {
      saveSession(answer, answer.user);
      await signedIn();
    } else if (answer.status === 'invited') {
      mount(viewSignUp(answer));
    } else {
      mount(viewWaitlisted(answer));
    }
  }, status));

  return [
    h('h1', {}, 'Welcome to Salon'),
    h('p', {class: 'muted'}, 'Live conversations, by invitation. Sign in with your phone number.'),
    form,
  ];
}

function viewSignUp(answer) {
  const status = h('p', {class: 'status', role: 'status'});
  const name = h('input', {name: 'name', required: true, maxlength: 50, autocomplete: 'name'});
  const username = h('input', {name: 'username', required: true, value: answer.reserved_username || ''});
  const join = h('button', {type: 'submit'}, 'Join Salon');
  const form = h('form', {class: 'card'},
    h('p', {}, answer.invited_by
      ? `${displayName(answer.invited_by)} (@${answer.invited_by.username}) invited you.`
      : 'You were admitted to Salon.'),
    h('label', {}, 'Your name', name),
    h('label', {}, 'Username', username),
    join, status);
  form.addEventListener('submit', act(join, async () => {
    const joined = await api('POST', '/auth/sign-up', {
      sign_up_token: answer.sign_up_token, name: name.value, username: username.value,
    }, {auth: false});
    saveSession(joined, joined.user);
    await signedIn();
  }, status));
  const section = h('section', {}, h('h1', {}, 'You’re invited!'), form);
  return section;
}

function viewWaitlisted(answer) {
  const status = h('p', {class: 'status', role: 'status'});
  const username = h('input', {name: 'username', value: answer.reserved_username || ''});
  const hold = h('button', {type: 'submit'}, 'Hold this username');
  const form = h('form', {class: 'card'},
    h('p', {}, 'Salon is invite-only, and your number is now on the waitlist. A member can invite you.'),
    h('label', {}, 'Username to hold meanwhile', username), hold, status);
  form.addEventListener('submit', act(hold, async () => {
    const held = await api('PUT', '/waitlist/username', {sign_up_token: answer.sign_up_token, username: username.value}, {auth: false});
    say(status, `@${held.reserved_username} is yours once you are admitted.`);
  }, status));
  return h('section', {}, h('h1', {}, 'You’re on the waitlist'), form);
}

async function signedIn() {
  $('#nav').hidden = false;
  try {
    state.me = await api('GET', '/me');
    remember(state.me);
    $('#nav-me').textContent = '@' + state.me.username;
  } catch (error) {
    if (!state.session) return;
    showError(error);
  }
  realtime.connect().then(() => resumeRoom()).catch(() => realtime._reconnectLater());
  startPush();
  if (!location.hash || location.hash === '#signin') location.hash = '#hallway';
  else route();
}

// The hallway -------------------------------------------------------------------------------------

let hallwayTimer = null;

function viewHallway() {
  const list = h('ul', {class: 'rooms', 'aria-label': 'Live rooms'}, h('li', {}, loading('Loading the live rooms…')));
  const status = h('p', {class: 'status', role: 'status'});
  const title = h('input', {name: 'title', maxlength: 100, required: true, placeholder: 'What do you want to talk about?'});
  const kind = h('select', {name: 'kind'},
    h('option', {value: 'open'}, 'Open: any member'),
    h('option', {value: 'social'}, 'Social: people I follow'),
    h('option', {value: 'closed'}, 'Closed: only people I invite'));
  const start = h('button', {type: 'submit'}, 'Start room');
  const form = h('form', {class: 'card'},
    h('h2', {}, 'Start a room'),
    h('div', {class: 'row'}, h('label', {class: 'grow'}, 'Title', title), h('label', {}, 'Who can join', kind), start),
    status);
  form.addEventListener('submit', act(start, async () => {
    const snapshot = await realtime.send('create_room', {title: title.value, kind: kind.value});
    setRoom(snapshot);
    location.hash = '#room';
  }, status));

  async function refresh() {
    try {
      const page = await api('GET', '/rooms?limit=50');
      list.replaceChildren(...(page.items.length ? page.items.map(roomCard) : [
        h('li', {class: 'card muted'}, 'No live rooms right now. Start one!'),
      ]));
    } catch (error) {
      showError(error, status);
    }
  }
  refresh();
  clearInterval(hallwayTimer);
  hallwayTimer = setInterval(() => {
    if (location.hash === '#hallway' && document.contains(list)) refresh();
    else clearInterval(hallwayTimer);
  }, 4000);
  return [h('h1', {}, 'Hallway'), h('section', {'aria-label': 'Hallway'}, list), form];
}

function roomCard(item) {
  const stage = item.stage.map((p) => p.name || p.username).join(', ');
  const here = state.room && state.room.id === item.room_id;
  const join = h('button', {type: 'button', 'aria-label': (here ? 'Back to ' : 'Join ') + item.title}, here ? 'Back' : 'Join');
  join.addEventListener('click', act(join, async () => {
    if (here) location.hash = '#room';
    else await enterRoom(item.room_id);
  }));
  return h('li', {class: 'card room-card', dataset: {roomId: item.room_id}},
    h('div', {class: 'room-summary'},
      h('div', {class: 'faces', 'aria-hidden': 'true'}, ...item.stage.slice(0, 4).map((p) => avatar(p))),
      h('h3', {}, item.title, ' ', h('span', {class: 'badge'}, item.kind),
        item.club_name ? h('span', {class: 'badge'}, item.club_name) : null),
      h('div', {class: 'people'}, 'On stage: ', stage || 'nobody', ' · ', item.listener_count, ' listening',
        item.followed_on_stage ? ` · ${item.followed_on_stage} you follow` : '')),
    join);
}

// Invite a friend, find people ---------------------------------------------------------------------

function viewInvite() {
  const status = h('p', {class: 'status', role: 'status'});
  const phone = h('input', {name: 'phone', type: 'tel', placeholder: '+1 415 555 0101', required: true});
  const invite = h('button', {type: 'submit'}, 'Send invitation');
  const left = h('p', {class: 'muted'}, state.me ? `You have ${state.me.invites_left} invitations left.` : '');
  const form = h('form', {class: 'card'},
    h('h2', {}, 'Invite a friend'),
    h('p', {class: 'muted'}, 'Salon texts them that you invited them; they then sign in with their number.'),
    h('label', {}, 'Their phone number', phone), invite, left, status);
  form.addEventListener('submit', act(invite, async () => {
    const done = await api('POST', '/invites', {phone: phone.value});
    if (state.me) state.me.invites_left = done.invites_left;
    left.textContent = `You have ${done.invites_left} invitations left.`;
    say(status, `Invited ${done.phone}. They can sign in now${state.config.local ? ' (in another tab: their code is in the local SMS outbox)' : ''}.`);
    phone.value = '';
  }, status));

  const findStatus = h('p', {class: 'status', role: 'status'});
  const username = h('input', {name: 'username', placeholder: 'username', required: true});
  const find = h('button', {type: 'submit'}, 'Find');
  const search = h('form', {class: 'card'},
    h('h2', {}, 'Find a member'),
    h('div', {class: 'row'}, h('label', {class: 'grow'}, 'Username', username), find), findStatus);
  search.addEventListener('submit', act(find, async () => {
    const person = await api('GET', '/users/by-username/' + encodeURIComponent(username.value.trim().replace(/^@/, '')));
    remember(person);
    location.hash = '#user/' + person.user_id;
  }, findStatus));
  return [h('h1', {}, 'Invite'), form, search];
}

async function viewProfile(userId) {
  const status = h('p', {class: 'status', role: 'status'});
  let person;
  try {
    person = await api('GET', '/users/' + encodeURIComponent(userId));
    remember(person);
  } catch (error) {
    return [h('h1', {}, 'Profile'), h('p', {class: 'error'}, describe(error))];
  }
  const mine = person.user_id === sfu.myId();
  const follow = h('button', {type: 'button', class: person.you_follow ? 'secondary' : ''}, person.you_follow ? 'Unfollow' : 'Follow');
  follow.addEventListener('click', act(follow, async () => {
    await api(person.you_follow ? 'DELETE' : 'PUT', `/users/${person.user_id}/follow`);
    route();
  }, status));
  const tip = h('button', {type: 'button', onclick: () => openMoneyDialog(person)}, 'Send money');
  const blocked = mine ? false : await isBlocked(person.user_id);
  const block = h('button', {type: 'button', class: blocked ? 'secondary' : 'danger'}, blocked ? 'Unblock' : 'Block');
  block.addEventListener('click', act(block, async () => {
    if (!blocked && !confirm(`Block ${displayName(person)}? They can no longer follow you, join rooms you moderate or send you money, and your follows both ways end.`)) return;
    await api(blocked ? 'DELETE' : 'PUT', `/users/${person.user_id}/block`);
    route();
  }, status));
  const ping = h('button', {type: 'button', class: 'secondary'}, 'Ping into my room');
  ping.addEventListener('click', act(ping, async () => {
    await realtime.send('ping_into_room', {user_id: person.user_id});
    say(status, `${displayName(person)} was pinged.`);
  }, status));
  return [
    h('section', {class: 'card'},
      h('div', {class: 'person', style: 'border:none'},
        avatar(person),
        h('h1', {}, person.name), h('div', {class: 'handle'}, '@' + person.username)),
      person.bio ? h('p', {}, person.bio) : null,
      h('p', {class: 'muted'}, `${person.followers_count} followers · ${person.following_count} following`,
        person.follows_you ? ' · follows you' : '',
        person.invited_by ? ` · invited by @${person.invited_by.username}` : ''),
      mine ? h('p', {class: 'muted'}, 'This is you.') : h('div', {class: 'controls'},
        blocked ? null : follow, person.send_money && !blocked ? tip : null, state.room && !blocked ? ping : null, block),
      blocked ? h('p', {class: 'muted'}, 'You blocked this member.') : null,
      status),
    ...(mine ? [] : [reportForm('member', person.user_id, displayName(person))]),
  ];
}

/** Whether the caller blocked this member: their block list (people block few). */
async function isBlocked(userId) {
  let cursor = null;
  do {
    const page = await api('GET', '/me/blocks?limit=100' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    if (page.items.some((p) => p.user_id === userId)) return true;
    cursor = page.cursor;
  } while (cursor);
  return false;
}

/** Editing one's own profile (PATCH /me): the name and the bio. */
function viewEditProfile() {
  const me = state.me;
  const status = h('p', {class: 'status', role: 'status'});
  const name = h('input', {name: 'name', required: true, maxlength: 50, autocomplete: 'name', value: me.name || ''});
  const bio = h('textarea', {name: 'bio', maxlength: 300, rows: 3});
  bio.value = me.bio || '';
  const save = h('button', {type: 'submit'}, 'Save profile');
  const form = h('form', {class: 'card', 'aria-label': 'Edit your profile'},
    h('h2', {}, 'Edit your profile'),
    h('label', {}, 'Name', name),
    h('label', {}, 'Bio', bio),
    save, status);
  form.addEventListener('submit', act(save, async () => {
    state.me = await api('PATCH', '/me', {name: name.value.trim(), bio: bio.value.trim()});
    remember(state.me);
    say(status, 'Saved. Your profile now reads as above.');
    const fresh = await viewProfile(state.me.user_id);
    const card = form.parentElement && form.parentElement.querySelector('section.card');
    if (card) card.replaceWith(...fresh);
  }, status));
  return [form, photoForm()];
}

/** A profile photo: Salon hands out an S3 upload form (type and size checked by S3), the
 * browser posts the file straight to the bucket, then Salon checks it and shows it. */
function photoForm() {
  const status = h('p', {class: 'status', role: 'status'});
  const file = h('input', {type: 'file', name: 'photo', accept: 'image/jpeg,image/png,image/webp'});
  const upload = h('button', {type: 'submit'}, 'Upload photo');
  const remove = h('button', {type: 'button', class: 'secondary'}, 'Remove photo');
  const form = h('form', {class: 'card', 'aria-label': 'Your photo'},
    h('h2', {}, 'Your photo'),
    h('p', {class: 'muted small'}, 'A JPEG, PNG or WebP image of at most 5 MB. Everyone in Salon sees it.'),
    h('label', {}, 'Photo', file),
    h('div', {class: 'controls'}, upload, state.me.photo_url ? remove : null),
    status);
  form.addEventListener('submit', act(upload, async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) throw new Error('Choose an image first.');
    const started = await api('POST', '/me/photo/uploads', {content_type: chosen.type});
    if (chosen.size > started.max_bytes) throw new SalonError('invalid_photo');
    say(status, 'Uploading…', 'muted');
    const body = new FormData();
    for (const [name, value] of Object.entries(started.upload.fields)) body.append(name, value);
    body.append('file', chosen); // S3 reads the fields before the file: it must come last
    let sent;
    try {
      sent = await fetch(started.upload.url, {method: 'POST', body});
    } catch {
      throw new Error('The photo could not be uploaded. Check your connection and try again.');
    }
    if (!sent.ok) throw new SalonError('invalid_photo');
    state.me = await api('PUT', '/me/photo', {key: started.key});
    remember(state.me);
    route();
  }, status));
  remove.addEventListener('click', act(remove, async () => {
    state.me = await api('DELETE', '/me/photo');
    remember(state.me);
    route();
  }, status));
  return form;
}

/** The members one blocked, each with Unblock. */
async function viewBlocked() {
  const section = h('section', {class: 'card', 'aria-label': 'Blocked members'}, h('h2', {}, 'Blocked members'));
  try {
    const page = await api('GET', '/me/blocks?limit=50');
    section.append(page.items.length
      ? h('ul', {class: 'notices'}, ...page.items.map((person) => {
        const unblock = h('button', {type: 'button', class: 'small secondary'}, 'Unblock');
        unblock.addEventListener('click', act(unblock, async () => {
          await api('DELETE', `/users/${person.user_id}/block`);
          route();
        }));
        return h('li', {dataset: {userId: person.user_id}}, h('a', {href: '#user/' + person.user_id}, displayName(person)), ' @' + person.username, ' ', unblock);
      }))
      : h('p', {class: 'muted'}, 'You have not blocked anyone.'));
  } catch (error) {
    section.append(h('p', {class: 'error'}, describe(error)));
  }
  return [section];
}

// A live room ---------------------------------------------------------------------------------------

function viewRoom() {
  if (!state.room) {
    return [h('h1', {}, 'No room'), h('p', {}, 'You are not in a room. ', h('a', {href: '#hallway'}, 'Go to the hallway.'))];
  }
  const tools = h('section', {id: 'room-tools'});
  const wrapper = h('div', {id: 'room'},
    h('div', {id: 'room-head'}),
    h('div', {id: 'room-banner'}),
    h('div', {id: 'room-controls', class: 'controls'}),
    h('h2', {}, 'Stage'),
    h('ul', {id: 'room-stage', class: 'stage', 'aria-label': 'Stage'}),
    h('div', {id: 'room-hands'}),
    h('h2', {id: 'audience-title'}, 'Audience'),
    h('ul', {id: 'room-audience', class: 'audience', 'aria-label': 'Audience'}),
    h('div', {id: 'room-audience-more', class: 'controls'}),
    h('h2', {}, 'In this room'),
    h('ul', {id: 'room-notices', class: 'notices', 'aria-label': 'Room notices'}),
    tools);
  tools.append(roomTools(), moderationLogPanel(), reportForm('room', state.room.id, 'this room'));
  setTimeout(renderRoom);
  return [wrapper];
}

/** Guests and pings: by username. Built once per visit so typing survives re-renders. */
function roomTools() {
  const status = h('p', {class: 'status', role: 'status'});
  const username = h('input', {name: 'username', placeholder: 'username'});
  const guest = h('button', {type: 'button', class: 'secondary', id: 'guest-button'}, 'Invite into this room');
  const ping = h('button', {type: 'button', class: 'secondary'}, 'Ping to listen');
  const find = async () => {
    const name = username.value.trim().replace(/^@/, '');
    if (!name) throw new SalonError('invalid_request', null, 'username');
    const person = await api('GET', '/users/by-username/' + encodeURIComponent(name));
    remember(person);
    return person;
  };
  guest.addEventListener('click', act(guest, async () => {
    const person = await find();
    await realtime.send('invite_to_room', {user_id: person.user_id});
    say(status, `${displayName(person)} is on the guest list and was told.`);
  }, status));
  ping.addEventListener('click', act(ping, async () => {
    const person = await find();
    await realtime.send('ping_into_room', {user_id: person.user_id});
    say(status, `${displayName(person)} was pinged.`);
  }, status));
  return h('details', {class: 'card'},
    h('summary', {}, 'Bring someone in'),
    h('p', {class: 'muted small'}, 'Moderators put people on the guest list (what admits them to a closed room); anyone can ping people they follow.'),
    h('div', {class: 'row'}, h('label', {class: 'grow'}, 'Username', username), guest, ping),
    status);
}

function renderRoom() {
  const wrapper = $('#room');
  const room = state.room;
  if (!wrapper || !room) return;
  const viewer = room.viewer || {role: 'listener'};
  const me = sfu.myId();
  const iModerate = viewer.role === 'moderator';
  const onStage = viewer.role !== 'listener';
  const modlog = $('#moderation-log');
  if (modlog) modlog.hidden = !iModerate;

  // Head: title, kind, count, leave and end.
  const leave = h('button', {type: 'button', class: 'secondary'}, 'Leave quietly');
  leave.addEventListener('click', act(leave, async () => {
    const moderators = [...room.stage.values()].filter((e) => e.role === 'moderator').length;
    if (iModerate && moderators === 1 && !confirm('You are the last moderator: leaving ends the room for everyone. Leave?')) return;
    await realtime.send('leave_room');
    leaveRoomLocally();
    location.hash = '#hallway';
  }));
  const end = h('button', {type: 'button', class: 'danger'}, 'End room');
  end.addEventListener('click', act(end, async () => {
    if (confirm('End the room for everyone?')) await roomAction('end_room');
  }));
  const hands = h('label', {class: 'switch'},
    h('input', {type: 'checkbox', role: 'switch', checked: room.handsAllowed,
      onchange: async (e) => { await roomAction('set_hands_allowed', {allowed: e.target.checked}); renderRoom(); }}),
    'Hand raising');
  $('#room-head').replaceChildren(h('div', {class: 'room-head'},
    h('div', {},
      h('h1', {}, room.title),
      h('p', {class: 'muted'}, h('span', {class: 'badge'}, room.kind), ` · ${room.stage.size} on stage · ${room.audienceCount} listening`)),
    h('div', {class: 'controls'}, iModerate ? hands : null, iModerate ? end : null, leave)));

  // An invitation to speak.
  const banner = $('#room-banner');
  banner.replaceChildren();
  if (viewer.invited_to_speak && viewer.role === 'listener') {
    banner.append(h('div', {class: 'banner', role: 'alert'},
      h('strong', {}, 'A moderator invites you to speak. '),
      h('button', {type: 'button', onclick: () => roomAction('accept_speaker_invite')}, 'Accept'), ' ',
      h('button', {type: 'button', class: 'secondary', onclick: async () => {
        if (await roomAction('decline_speaker_invite')) { updateViewer({invited_to_speak: false}); renderRoom(); }
      }}, 'Decline')));
  }

  // My own controls.
  const controls = [];
  if (onStage) {
    const mic = h('button', {type: 'button', class: viewer.muted ? '' : 'secondary'}, viewer.muted ? 'Unmute' : 'Mute');
    mic.addEventListener('click', act(mic, async () => {
      if (viewer.muted) {
        try {
          await sfu.microphone();
        } catch {
          throw new Error('Salon needs your microphone to put you on air. Allow it in the browser and try again.');
        }
        await roomAction('unmute');
      } else {
        await roomAction('mute');
      }
    }));
    controls.push(mic, h('span', {class: 'muted'}, viewer.muted ? 'You are muted.' : 'You are live.'));
    const down = h('button', {type: 'button', class: 'secondary', onclick: () => roomAction('step_down')}, 'Leave the stage');
    controls.push(down);
  } else if (room.handsAllowed || viewer.hand_raised) {
    // Only moderators hear hand_raised / hand_lowered: Salon's reply is the listener's answer.
    const raising = !viewer.hand_raised;
    const hand = h('button', {type: 'button', class: raising ? '' : 'secondary'}, raising ? 'Raise hand' : 'Lower hand');
    hand.addEventListener('click', act(hand, async () => {
      if (await roomAction(raising ? 'raise_hand' : 'lower_hand')) {
        updateViewer({hand_raised: raising});
        renderRoom();
      }
    }));
    controls.push(hand);
    if (viewer.hand_raised) controls.push(h('span', {class: 'muted', role: 'status'}, 'Your hand is up: the moderators see it.'));
  } else {
    controls.push(h('span', {class: 'muted'}, 'The moderators have turned hand raising off.'));
  }
  $('#room-controls').replaceChildren(...controls);

  // The stage.
  $('#room-stage').replaceChildren(...[...room.stage.values()].map((entry) => {
    const person = {...state.profiles.get(entry.user_id), ...entry};
    const mine = entry.user_id === me;
    const actions = [];
    if (!mine) {
      const profile = state.profiles.get(entry.user_id) || {};
      if (profile.send_money) actions.push(h('button', {type: 'button', class: 'small', onclick: () => openMoneyDialog(profile)}, 'Send money'));
    }
    if (iModerate && !mine) {
      if (!entry.muted) actions.push(h('button', {type: 'button', class: 'small secondary', onclick: () => roomAction('mute', {user_id: entry.user_id})}, 'Mute'));
      if (entry.role === 'speaker') {
        actions.push(h('button', {type: 'button', class: 'small secondary', onclick: () => roomAction('move_to_audience', {user_id: entry.user_id})}, 'Move to audience'));
        actions.push(h('button', {type: 'button', class: 'small secondary', onclick: () => roomAction('make_moderator', {user_id: entry.user_id})}, 'Make moderator'));
      } else {
        actions.push(h('button', {type: 'button', class: 'small secondary', onclick: () => roomAction('unmake_moderator', {user_id: entry.user_id})}, 'Remove moderator role'));
      }
      actions.push(h('button', {type: 'button', class: 'small danger', onclick: () => {
        if (confirm(`Remove ${displayName(person)} from the room for good?`)) roomAction('remove_member', {user_id: entry.user_id});
      }}, 'Remove'));
    }
    return h('li', {class: 'person' + (entry.connected === false ? ' away' : ''), dataset: {userId: entry.user_id, username: person.username || ''}},
      avatar(person),
      h('a', {class: 'name', href: '#user/' + entry.user_id}, displayName(person), mine ? ' (you)' : ''),
      h('div', {class: 'handle'}, person.username ? '@' + person.username : ''),
      h('div', {class: 'state'},
        entry.role === 'moderator' ? h('span', {class: 'badge mod'}, 'Moderator') : h('span', {class: 'badge'}, 'Speaker'), ' ',
        micIcon(entry.muted), h('span', {class: 'small'}, entry.muted ? 'Muted' : 'Live'),
        audioState(entry, mine)),
      actions.length ? h('div', {class: 'actions'}, ...actions) : null);
  }));

  // Raised hands: moderators only.
  const handsBox = $('#room-hands');
  handsBox.replaceChildren();
  if (iModerate) {
    const items = [...room.hands.values()].map((person) => h('li', {class: 'person', dataset: {userId: person.user_id, username: person.username || ''}},
      avatar(person),
      h('span', {class: 'name'}, displayName(person)),
      h('button', {type: 'button', class: 'small', onclick: () => roomAction('invite_to_speak', {user_id: person.user_id})}, 'Invite to speak')));
    handsBox.append(h('h2', {}, `Raised hands (${room.hands.size})`),
      items.length ? h('ul', {class: 'audience', 'aria-label': 'Raised hands'}, ...items) : h('p', {class: 'muted'}, room.handsAllowed ? 'No hands up.' : 'Hand raising is off.'));
  }

  // The audience (first pages; joins are not pushed one by one: see refreshAudienceSoon).
  $('#audience-title').textContent = `Audience (${room.audienceCount})`;
  $('#room-audience').replaceChildren(...[...room.audience.values()].map((person) => {
    const actions = [];
    if (iModerate && person.user_id !== me) {
      actions.push(h('button', {type: 'button', class: 'small', onclick: () => roomAction('invite_to_speak', {user_id: person.user_id})}, 'Invite to speak'));
      actions.push(h('button', {type: 'button', class: 'small secondary', onclick: () => roomAction('make_moderator', {user_id: person.user_id})}, 'Make moderator'));
      actions.push(h('button', {type: 'button', class: 'small danger', onclick: () => {
        if (confirm(`Remove ${displayName(person)} from the room for good?`)) roomAction('remove_member', {user_id: person.user_id});
      }}, 'Remove'));
    }
    return h('li', {class: 'person', dataset: {userId: person.user_id, username: person.username || ''}},
      avatar(person),
      h('a', {class: 'name', href: '#user/' + person.user_id}, displayName(person), person.user_id === me ? ' (you)' : ''),
      actions.length ? h('div', {class: 'actions'}, ...actions) : null);
  }));
  const refresh = h('button', {type: 'button', class: 'small secondary'}, 'Refresh the audience');
  refresh.addEventListener('click', act(refresh, refreshAudience));
  const more = h('button', {type: 'button', class: 'small secondary'}, 'More');
  more.addEventListener('click', act(more, async () => {
    const page = await realtime.send('list_audience', {cursor: room.audienceCursor});
    page.audience.forEach((p) => { remember(p); room.audience.set(p.user_id, p); });
    room.audienceCursor = page.cursor;
    renderRoom();
  }));
  $('#room-audience-more').replaceChildren(refresh, room.audienceCursor ? more : '');

  $('#room-notices').replaceChildren(...(room.notices.length
    ? room.notices.map((n) => h('li', {}, n.text))
    : [h('li', {class: 'muted'}, 'Nothing yet.')]));
  if (!iModerate) $('#guest-button') && ($('#guest-button').hidden = true);
  else $('#guest-button') && ($('#guest-button').hidden = false);
}

// Earnings and Send Money --------------------------------------------------------------------------

async function viewEarnings(sub) {
  const status = h('p', {class: 'status', role: 'status'});
  const parts = [h('h1', {}, 'Earnings')];
  if (sub === 'expired') parts.push(h('p', {class: 'error'}, 'That onboarding link expired or was already used. Start again below.'));

  // The payout account and the Send Money switch.
  const account = h('section', {class: 'card', 'aria-label': 'Payouts'});
  parts.push(account);
  try {
    const acc = await api('GET', '/creator/account');
    const setup = h('button', {type: 'button'}, acc.onboarded ? 'Continue onboarding with Stripe' : 'Set up payouts');
    setup.addEventListener('click', act(setup, async () => {
      if (state.room && !confirm('Onboarding opens Stripe in this tab and you will leave the room. Continue?')) return;
      const link = await api('POST', '/creator/onboarding', {});
      location.href = link.url;
    }, status));
    if (!acc.ready) {
      account.append(h('h2', {}, 'Get paid'),
        h('p', {}, acc.onboarded
          ? `Stripe is still checking your account (${acc.requirements_due || 0} things due).`
          : 'Set up payouts with Stripe so listeners can send you money.'),
        h('div', {class: 'controls'}, setup,
          acc.onboarded ? h('button', {type: 'button', class: 'secondary', onclick: () => route()}, 'Check again') : null));
    } else {
      const toggle = h('input', {type: 'checkbox', role: 'switch', 'aria-label': 'Send Money', checked: acc.send_money});
      toggle.addEventListener('change', async () => {
        toggle.disabled = true;
        try {
          const now = await api('PUT', '/creator/send-money', {enabled: toggle.checked});
          toggle.checked = now.send_money;
          say(status, now.send_money ? 'Send Money is on: listeners see the button on your profile and on stage.' : 'Send Money is off.');
        } catch (error) {
          toggle.checked = !toggle.checked;
          showError(error, status);
        } finally {
          toggle.disabled = false;
        }
      });
      account.append(h('h2', {}, 'Send Money'),
        h('label', {class: 'switch'}, toggle, 'Let listeners send me money'),
        h('p', {class: 'muted small'}, 'Payouts are ready with Stripe. You receive every tip in full; the sender pays the card fee.'));
    }
  } catch (error) {
    account.append(h('p', {class: 'error'}, describe(error)));
  }
  account.append(status);

  // What I earned.
  const earned = h('section', {class: 'card', 'aria-label': 'Earned'});
  parts.push(earned);
  try {
    const earnings = await api('GET', '/me/earnings?limit=50');
    const senders = new Set(earnings.items.map((e) => e.sender_id).filter(Boolean));
    await Promise.all([...senders].map(profileOf));
    earned.append(h('h2', {}, 'You earned'), h('div', {class: 'total', id: 'earnings-total'}, dollars(earnings.total_cents)));
    earned.append(earnings.items.length ? h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', {}, 'What'), h('th', {}, 'From'), h('th', {class: 'amount'}, 'Amount'))),
      h('tbody', {}, ...earnings.items.map((e) => h('tr', {},
        h('td', {}, new Date(e.created_at).toLocaleString()),
        h('td', {}, e.kind.replace('_', ' ')),
        h('td', {}, e.sender_id ? displayName(state.profiles.get(e.sender_id)) : '—'),
        h('td', {class: 'amount' + (e.amount_cents < 0 ? ' negative' : '')}, dollars(e.amount_cents)))))) :
      h('p', {class: 'muted'}, 'No earnings yet.'));
  } catch (error) {
    earned.append(h('p', {class: 'error'}, describe(error)));
  }

  // What I sent.
  const sent = h('section', {class: 'card', 'aria-label': 'Tips you sent'});
  parts.push(sent);
  try {
    const tips = await api('GET', '/me/tips?limit=20');
    await Promise.all([...new Set(tips.items.map((t) => t.creator_id))].map(profileOf));
    sent.append(h('h2', {}, 'Tips you sent'), tips.items.length ? h('table', {},
      h('tbody', {}, ...tips.items.map((t) => h('tr', {},
        h('td', {}, new Date(t.created_at).toLocaleString()),
        h('td', {}, displayName(state.profiles.get(t.creator_id))),
        h('td', {}, t.status.replace(/_/g, ' ')),
        h('td', {class: 'amount'}, dollars(t.amount_cents)))))) :
      h('p', {class: 'muted'}, 'You have not sent money yet.'));
  } catch (error) {
    sent.append(h('p', {class: 'error'}, describe(error)));
  }
  return parts;
}

async function viewMe() {
  if (!state.me) return [loading()];
  return [...await viewProfile(state.me.user_id), ...viewEditProfile(), ...await viewBlocked(), ...viewAccount()];
}

// --- Trust and safety: reports, the moderation log, the account's data and its deletion ------------

const REPORT_REASONS = {
  harassment: 'Harassment or bullying',
  hate: 'Hate speech',
  spam: 'Spam or scams',
  impersonation: 'Pretending to be someone else',
  sexual_content: 'Sexual content',
  violence: 'Violence or threats',
  self_harm: 'Self-harm',
  underage: 'Someone under age',
  other: 'Something else',
};
const OUTCOMES = {
  dismiss: 'Salon looked at your report and took no action.',
  warn: 'Salon looked at your report and warned the member.',
  suspend: 'Salon looked at your report and suspended the member.',
};
const LOGGED = {
  remove_member: 'removed', mute: 'muted', move_to_audience: 'moved to the audience',
  make_moderator: 'made a moderator', unmake_moderator: 'took moderation from', end_room: 'ended the room',
};

/** Report a member or a room (POST /reports): a reason and an optional note. Nobody reported
 * ever learns who reported them. */
function reportForm(kind, targetId, label) {
  const status = h('p', {class: 'status', role: 'status'});
  const reason = h('select', {name: 'reason', required: true},
    ...Object.entries(REPORT_REASONS).map(([value, text]) => h('option', {value}, text)));
  const note = h('textarea', {name: 'note', maxlength: 1000, rows: 2, placeholder: 'What happened (optional)'});
  const send = h('button', {type: 'submit', class: 'danger'}, 'Send report');
  const form = h('form', {class: 'report-form', 'aria-label': `Report ${label}`},
    h('label', {}, 'Reason', reason), h('label', {}, 'Details', note), send, status);
  form.addEventListener('submit', act(send, async () => {
    await api('POST', '/reports', {target_kind: kind, target_id: targetId, reason: reason.value, note: note.value.trim()});
    note.value = '';
    say(status, 'Reported. Salon’s team will look at it and tell you the outcome; they never tell who reported.');
  }, status));
  return h('details', {class: 'card report', dataset: {reportKind: kind}},
    h('summary', {}, kind === 'room' ? 'Report this room' : `Report ${label}`), form);
}

/** The room's moderation log, for its moderators (the `moderation_log` action). */
function moderationLogPanel() {
  const list = h('ul', {class: 'notices', 'aria-label': 'Moderation log'});
  const status = h('p', {class: 'status', role: 'status'});
  const load = h('button', {type: 'button', class: 'secondary small'}, 'Refresh');
  const show = async () => {
    const page = await realtime.send('moderation_log');
    const who = async (userId) => (userId ? displayName(await profileOf(userId)) : '');
    const items = await Promise.all(page.items.map(async (e) => h('li', {dataset: {action: e.action}},
      h('time', {datetime: e.at}, new Date(e.at).toLocaleTimeString()), ' ',
      `${await who(e.actor_id)} ${LOGGED[e.action] || e.action}${e.target_id ? ' ' + await who(e.target_id) : ''}`)));
    list.replaceChildren(...(items.length ? items : [h('li', {class: 'muted'}, 'Nothing yet.')]));
  };
  load.addEventListener('click', act(load, show, status));
  const panel = h('details', {class: 'card', id: 'moderation-log', hidden: true},
    h('summary', {}, 'Moderation log'),
    h('p', {class: 'muted small'}, 'What the room’s moderators did, and when. Only moderators see it.'),
    list, load, status);
  panel.addEventListener('toggle', () => { if (panel.open) show().catch((error) => showError(error, status)); });
  return panel;
}

function safetyNotice(message) {
  if (message.type === 'warning') {
    toast(`A warning from Salon: a report about you (${REPORT_REASONS[message.reason] || message.reason}) was upheld. Please keep to the community rules.`, {kind: 'error', timeout: 15000});
  } else {
    toast(OUTCOMES[message.outcome] || 'Your report was decided.', {timeout: 12000});
  }
}

/** Your data (GET /me/export) and deleting your account (a texted code, then DELETE /me). */
function viewAccount() {
  const status = h('p', {class: 'status', role: 'status'});
  const exportButton = h('button', {type: 'button', class: 'secondary'}, 'Download my data');
  exportButton.addEventListener('click', act(exportButton, async () => {
    const data = await api('GET', '/me/export');
    const link = h('a', {href: URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], {type: 'application/json'})), download: 'salon-export.json'}, 'salon-export.json');
    link.click();
    say(status, 'Your data is in salon-export.json.');
  }, status));
  const code = h('input', {name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, placeholder: '6-digit code'});
  const confirmBox = h('div', {class: 'row', hidden: true}, h('label', {class: 'grow'}, 'Code from the text message', code));
  const ask = h('button', {type: 'button', class: 'secondary'}, 'Text me a code to delete my account');
  const destroy = h('button', {type: 'button', class: 'danger', hidden: true}, 'Delete my account forever');
  ask.addEventListener('click', act(ask, async () => {
    await api('POST', '/me/deletion-code');
    confirmBox.hidden = false;
    destroy.hidden = false;
    code.focus();
    say(status, 'We texted you a code. Enter it to delete your account.');
  }, status));
  destroy.addEventListener('click', act(destroy, async () => {
    if (!/^[0-9]{6}$/.test(code.value.trim())) throw new SalonError('invalid_request', 'Enter the 6 digits of the text message.', 'code');
    if (!confirm('Delete your account? Your profile, follows, blocks and phone number are erased, and this cannot be undone.')) return;
    await api('DELETE', '/me', {code: code.value.trim()});
    endSession('Your account was deleted.');
  }, status));
  return [h('section', {class: 'card', 'aria-label': 'Your account'},
    h('h2', {}, 'Your account'),
    h('p', {class: 'muted small'}, 'Download everything Salon holds about you, or delete your account. Deleting needs a code texted to your phone; your username is held for 30 days, then released.'),
    h('div', {class: 'controls'}, exportButton, ask),
    confirmBox, destroy, status)];
}

// --- Events and notifications ---------------------------------------------------------------------
// Scheduled rooms (REST /events, WebSocket start_event) and push. A browser is no phone: on the
// local stack it registers a device token of its own and shows that device's push outbox
// (/_local/push/<token>) as its notifications, each with a Join button when it leads to a room.

const push = {token: null, seen: new Set(), timer: null};

function localDeviceToken() {
  let token = localStorage.getItem('salon.device');
  if (!token) {
    token = 'web-' + newId() + newId();
    localStorage.setItem('salon.device', token);
  }
  return token;
}

async function startPush() {
  if (!state.config.local || push.timer) return;
  push.token = localDeviceToken();
  try {
    await api('POST', '/me/devices', {platform: 'fcm', token: push.token});
  } catch (error) {
    showError(error);
    return;
  }
  const first = await pushOutbox();
  first.forEach((item) => push.seen.add(item.message_id)); // what came before this page: not new
  push.timer = setInterval(pollPush, 3000);
}

function stopPush() {
  clearInterval(push.timer);
  push.timer = null;
  push.seen.clear();
}

async function pushOutbox() {
  try {
    const answer = await api('GET', '/_local/push/' + encodeURIComponent(push.token), undefined, {auth: false});
    return answer.items;
  } catch {
    return [];
  }
}

async function pollPush() {
  if (!state.session) return stopPush();
  for (const item of (await pushOutbox()).reverse()) {
    if (push.seen.has(item.message_id)) continue;
    push.seen.add(item.message_id);
    const roomId = item.data && item.data.room_id;
    toast(`${item.title}: ${item.body}`, {
      timeout: 15000,
      action: roomId ? {label: 'Join', run: () => enterRoom(roomId).catch((error) => showError(error))} : null,
    });
    if (location.hash === '#notifications') route();
  }
}

function when(iso) {
  return new Date(iso).toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'});
}

function eventCard(event, refresh) {
  const status = h('p', {class: 'status', role: 'status'});
  const buttons = [];
  const scheduled = event.status === 'scheduled';
  if (event.is_host && scheduled) {
    const start = h('button', {type: 'button'}, 'Start now');
    start.addEventListener('click', act(start, async () => {
      setRoom(await realtime.send('start_event', {event_id: event.event_id}));
      location.hash = '#room';
    }, status));
    buttons.push(start);
  }
  if (event.status === 'live' && event.room_id) {
    const join = h('button', {type: 'button'}, 'Join');
    join.addEventListener('click', act(join, () => enterRoom(event.room_id), status));
    buttons.push(join);
  }
  if (scheduled && !event.is_host) {
    const rsvp = h('button', {type: 'button', class: event.rsvp ? 'secondary' : ''}, event.rsvp ? 'Going ✓ (undo)' : 'Notify me');
    rsvp.addEventListener('click', act(rsvp, async () => {
      await api(event.rsvp ? 'DELETE' : 'PUT', `/events/${event.event_id}/rsvp`);
      refresh();
    }, status));
    buttons.push(rsvp);
  }
  if (event.host_id === (state.me && state.me.user_id) && scheduled) {
    const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel event');
    cancel.addEventListener('click', act(cancel, async () => {
      await api('DELETE', `/events/${event.event_id}`);
      refresh();
    }, status));
    buttons.push(cancel);
  }
  const hosts = event.hosts.map((p) => displayName(p)).join(', ');
  return h('li', {class: 'card', dataset: {eventId: event.event_id}},
    h('h3', {}, event.title, ' ', h('span', {class: 'badge'}, event.status)),
    h('p', {class: 'muted'}, when(event.starts_at), ' · hosted by ', hosts, ' · ', event.rsvp_count, ' going'),
    event.description ? h('p', {}, event.description) : null,
    h('p', {class: 'muted'}, 'Public link: ', h('a', {href: `${state.config.api || ''}/events/${event.event_id}/preview`}, event.link)),
    h('div', {class: 'row'}, ...buttons), status);
}

function viewEvents() {
  const status = h('p', {class: 'status', role: 'status'});
  const lists = {
    following: h('ul', {class: 'rooms', 'aria-label': 'Events of people you follow'}),
    mine: h('ul', {class: 'rooms', 'aria-label': 'Your events'}),
  };
  async function refresh() {
    for (const [scope, list] of Object.entries(lists)) {
      try {
        const page = await api('GET', '/events?scope=' + scope);
        list.replaceChildren(...(page.items.length ? page.items.map((e) => eventCard(e, refresh)) :
          [h('li', {class: 'card muted'}, scope === 'mine' ? 'You have no upcoming events.' : 'Nobody you follow has an upcoming event.')]));
      } catch (error) {
        showError(error, status);
      }
    }
  }
  const title = h('input', {name: 'title', maxlength: 100, required: true, placeholder: 'What is it about?'});
  const description = h('textarea', {name: 'description', maxlength: 1000, rows: 2});
  const startsAt = h('input', {name: 'starts_at', type: 'datetime-local', required: true});
  const soon = new Date(Date.now() + 10 * 60000);
  startsAt.value = new Date(soon.getTime() - soon.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  // An event may be held in a club whose rooms this member may start (POST /events, club_id).
  const club = h('select', {name: 'club_id'}, h('option', {value: ''}, 'No club'));
  const clubLabel = h('label', {hidden: true}, 'Club', club);
  api('GET', '/clubs').then((page) => {
    const mayHost = page.items.filter((c) => c.status === 'open' &&
      (c.me.role === 'admin' || (c.me.role === 'member' && c.members_start_rooms)));
    club.append(...mayHost.map((c) => h('option', {value: c.club_id}, c.name)));
    clubLabel.hidden = mayHost.length === 0;
  }).catch((error) => showError(error, status));
  const schedule = h('button', {type: 'submit'}, 'Schedule');
  const formStatus = h('p', {class: 'status', role: 'status'});
  const form = h('form', {class: 'card'},
    h('h2', {}, 'Schedule a room'),
    h('label', {}, 'Title', title), h('label', {}, 'Description', description),
    h('label', {}, 'Starts at (your time)', startsAt), clubLabel, schedule, formStatus);
  form.addEventListener('submit', act(schedule, async () => {
    // datetime-local has no zone: the browser's own offset makes it an instant.
    const at = new Date(startsAt.value).toISOString();
    const fields = {title: title.value, description: description.value, starts_at: at};
    if (club.value) fields.club_id = club.value;
    await api('POST', '/events', fields);
    say(formStatus, 'Scheduled. Share its public link; people who RSVP are notified when you start it.');
    title.value = '';
    refresh();
  }, formStatus));
  refresh();
  return [h('h1', {}, 'Events'), status,
    h('section', {'aria-label': 'Upcoming'}, h('h2', {}, 'Of people you follow'), lists.following),
    h('section', {'aria-label': 'Mine'}, h('h2', {}, 'Yours'), lists.mine), form];
}

// --- Clubs -------------------------------------------------------------------------------------------

const CLUB_ROLES = {admin: 'admin', member: 'member', invited: 'invited'};

function clubPlace(me) {
  if (me.role === 'invited') return 'You are invited';
  if (me.role) return 'You are ' + (me.role === 'admin' ? 'an admin' : 'a member');
  return me.following ? 'You follow it' : '';
}

async function viewClubs() {
  const status = h('p', {class: 'status', role: 'status'});
  let mine;
  try {
    mine = await api('GET', '/clubs');
  } catch (error) {
    return [h('h1', {}, 'Clubs'), h('p', {class: 'status error'}, describe(error))];
  }
  const list = h('ul', {class: 'rooms', 'aria-label': 'Your clubs'},
    ...(mine.items.length ? mine.items.map((club) => h('li', {class: 'card', dataset: {clubId: club.club_id}},
      h('h3', {}, h('a', {href: '#club/' + club.club_id}, club.name), ' ',
        club.status === 'closed' ? h('span', {class: 'badge'}, 'closed') : null),
      h('p', {class: 'muted'}, clubPlace(club.me), ' · ', club.member_count, ' members · ',
        club.follower_count, ' followers'))) :
      [h('li', {class: 'card muted'}, 'You are in no club yet. Found one, or ask an admin to invite you.')]));
  const name = h('input', {name: 'name', maxlength: 60, required: true});
  const description = h('textarea', {name: 'description', maxlength: 500, rows: 2});
  const open = h('input', {type: 'checkbox', name: 'members_start_rooms'});
  const create = h('button', {type: 'submit'}, 'Found club');
  const form = h('form', {class: 'card'},
    h('h2', {}, 'Found a club'),
    h('p', {class: 'muted'}, 'Any member may found up to 5 open clubs; you are its first admin.'),
    h('label', {}, 'Club name', name), h('label', {}, 'About', description),
    h('label', {class: 'check'}, open, ' Members may start rooms'), create, status);
  form.addEventListener('submit', act(create, async () => {
    const club = await api('POST', '/clubs', {name: name.value, description: description.value, members_start_rooms: open.checked});
    location.hash = '#club/' + club.club_id;
  }, status));
  return [h('h1', {}, 'Clubs'), h('section', {'aria-label': 'Clubs'}, list), form];
}

async function viewClub(clubId) {
  let club, roster;
  try {
    [club, roster] = await Promise.all([
      api('GET', `/clubs/${clubId}`), api('GET', `/clubs/${clubId}/members?limit=100`)]);
  } catch (error) {
    return [h('h1', {}, 'Club'), h('p', {class: 'status error'}, describe(error))];
  }
  const status = h('p', {class: 'status', role: 'status'});
  const path = `/clubs/${clubId}`;
  const again = () => route();
  const me = club.me;
  const isAdmin = me.role === 'admin';
  const isMember = me.role === 'admin' || me.role === 'member';
  const open = club.status === 'open';
  function button(label, run, cls = '') {
    const b = h('button', {type: 'button', class: cls}, label);
    b.addEventListener('click', act(b, async () => {
      await run();
      again();
    }, status));
    return b;
  }
  const actions = [];
  if (me.role === 'invited') {
    actions.push(button('Accept invitation', () => api('PUT', `${path}/membership`)));
    actions.push(button('Decline', () => api('DELETE', `${path}/membership`), 'secondary'));
  }
  if (open) {
    actions.push(me.following ?
      button('Unfollow club', () => api('DELETE', `${path}/follow`), 'secondary') :
      button('Follow club', () => api('PUT', `${path}/follow`)));
  }
  if (isMember) actions.push(button('Leave club', () => api('DELETE', `${path}/membership`), 'secondary'));
  if (isAdmin && open) actions.push(button('Close club', () => api('POST', `${path}/close`), 'secondary'));

  const members = h('ul', {class: 'plain', 'aria-label': 'Club members'}, ...roster.items.map((person) => {
    const tools = [];
    if (isAdmin && open && person.user_id !== state.me.user_id) {
      if (person.role === 'member') {
        tools.push(button('Make admin', () => api('PUT', `${path}/members/${person.user_id}/role`, {role: 'admin'}), 'small'));
      }
      if (person.role === 'admin') {
        tools.push(button('Make member', () => api('PUT', `${path}/members/${person.user_id}/role`, {role: 'member'}), 'small secondary'));
      } else {
        tools.push(button(person.role === 'invited' ? 'Withdraw' : 'Remove from club',
          () => api('DELETE', `${path}/members/${person.user_id}`), 'small secondary'));
      }
    }
    return h('li', {dataset: {userId: person.user_id}}, avatar(person), ' ', displayName(person), ' ',
      h('span', {class: 'badge'}, CLUB_ROLES[person.role]), ' ', ...tools);
  }));

  const rooms = h('ul', {class: 'rooms', 'aria-label': 'Club rooms'}, ...(club.live_rooms.length ?
    club.live_rooms.map((room) => {
      const join = h('button', {type: 'button', 'aria-label': 'Join ' + room.title}, 'Join');
      join.addEventListener('click', act(join, () => enterRoom(room.room_id), status));
      return h('li', {class: 'card', dataset: {roomId: room.room_id}},
        h('h3', {}, room.title, ' ', h('span', {class: 'badge'}, room.kind)),
        h('p', {class: 'muted'}, room.listener_count, ' listening'), join);
    }) : [h('li', {class: 'card muted'}, 'No live room in this club.')]));

  const parts = [h('h1', {}, club.name), h('p', {}, club.description),
    h('p', {class: 'muted'}, clubPlace(me), ' · ', club.member_count, ' members · ', club.follower_count, ' followers',
      open ? '' : ' · closed'),
    h('div', {class: 'row'}, ...actions), status,
    h('section', {'aria-label': 'Live club rooms'}, h('h2', {}, 'Live rooms'), rooms)];

  if (open && (isAdmin || (isMember && club.members_start_rooms))) {
    const title = h('input', {name: 'title', maxlength: 100, required: true});
    const kind = h('select', {name: 'kind'},
      h('option', {value: 'members'}, 'Members only'),
      h('option', {value: 'open'}, 'Open: any member of Salon'),
      h('option', {value: 'closed'}, 'Closed: only people I invite'));
    const start = h('button', {type: 'submit'}, 'Start club room');
    const roomStatus = h('p', {class: 'status', role: 'status'});
    const form = h('form', {class: 'card'}, h('h2', {}, 'Start a club room'),
      h('div', {class: 'row'}, h('label', {class: 'grow'}, 'Room title', title), h('label', {}, 'Who can join', kind), start),
      roomStatus);
    form.addEventListener('submit', act(start, async () => {
      setRoom(await realtime.send('start_club_room', {club_id: clubId, title: title.value, kind: kind.value}));
      location.hash = '#room';
    }, roomStatus));
    parts.push(form);
  }
  parts.push(h('section', {'aria-label': 'Members'}, h('h2', {}, 'Members'), members));
  if (isAdmin && open) {
    const username = h('input', {name: 'username', required: true, placeholder: 'username'});
    const invite = h('button', {type: 'submit'}, 'Invite to club');
    const inviteStatus = h('p', {class: 'status', role: 'status'});
    const form = h('form', {class: 'card'}, h('h2', {}, 'Invite a member'),
      h('div', {class: 'row'}, h('label', {class: 'grow'}, 'Their username', username), invite), inviteStatus);
    form.addEventListener('submit', act(invite, async () => {
      const person = await api('GET', '/users/by-username/' + encodeURIComponent(username.value.trim().replace(/^@/, '')));
      await api('POST', `${path}/invitations`, {user_id: person.user_id});
      again();
    }, inviteStatus));
    parts.push(form);
  }
  return parts;
}

const PUSH_KINDS = {
  ping: 'Someone pings me into their room',
  room_started: 'Someone I follow starts a room',
  on_stage: 'Someone I follow goes on stage',
  event_started: 'An event I RSVP’d to starts',
  tip: 'I receive a tip',
  stipend: 'My creator stipend is paid',
};

async function viewNotifications() {
  const status = h('p', {class: 'status', role: 'status'});
  let settings;
  try {
    settings = await api('GET', '/me/notification-settings');
  } catch (error) {
    return [h('h1', {}, 'Notifications'), h('p', {class: 'status error'}, describe(error))];
  }
  const boxes = Object.entries(PUSH_KINDS).map(([kind, label]) =>
    h('label', {class: 'check'}, h('input', {type: 'checkbox', name: kind, checked: settings.receive[kind]}), ' ', label));
  const quiet = settings.quiet_hours || {};
  const from = h('input', {type: 'time', name: 'quiet_from', value: quiet.from || ''});
  const to = h('input', {type: 'time', name: 'quiet_to', value: quiet.to || ''});
  const zone = h('input', {name: 'time_zone', value: settings.time_zone === 'UTC' ? Intl.DateTimeFormat().resolvedOptions().timeZone : settings.time_zone});
  const save = h('button', {type: 'submit'}, 'Save');
  const form = h('form', {class: 'card'},
    h('h2', {}, 'What I receive'), ...boxes,
    h('h2', {}, 'Quiet hours'),
    h('p', {class: 'muted'}, 'Nothing is pushed between these times on your own clock. Leave them empty for none.'),
    h('div', {class: 'row'}, h('label', {}, 'From', from), h('label', {}, 'To', to), h('label', {class: 'grow'}, 'Time zone', zone)),
    save, status);
  form.addEventListener('submit', act(save, async () => {
    const receive = Object.fromEntries(boxes.map((b) => [b.querySelector('input').name, b.querySelector('input').checked]));
    const quietHours = from.value && to.value ? {from: from.value, to: to.value} : null;
    await api('PATCH', '/me/notification-settings', {receive, quiet_hours: quietHours, time_zone: zone.value.trim()});
    say(status, 'Saved.');
  }, status));
  const parts = [h('h1', {}, 'Notifications'), form];
  if (state.config.local && push.token) {
    const items = await pushOutbox();
    parts.push(h('section', {class: 'card', 'aria-label': 'This device’s notifications'},
      h('h2', {}, 'This device’s notifications'),
      h('p', {class: 'muted'}, 'On the local stack this browser is a device: these are the pushes SNS “delivered” to it.'),
      items.length ? h('ul', {class: 'plain'}, ...items.map((item) => {
        const roomId = item.data && item.data.room_id;
        const join = roomId ? h('button', {type: 'button', class: 'small'}, 'Join') : null;
        if (join) join.addEventListener('click', act(join, () => enterRoom(roomId)));
        return h('li', {}, h('strong', {}, item.title), ' ', item.body, ' ', join);
      })) : h('p', {class: 'muted'}, 'Nothing yet.')));
  }
  return parts;
}

// --- Routing -----------------------------------------------------------------------------------------

let routing = 0;

async function route() {
  const ticket = ++routing;
  const [name, arg] = location.hash.replace(/^#/, '').split('/');
  renderRoomBar();
  if (!state.session) {
    if (name !== 'signin') history.replaceState(null, '', '#signin');
    mount(...viewSignIn());
    return;
  }
  // The previous view goes at once: what follows may wait on the network.
  mount(loading());
  let parts;
  switch (name) {
    case 'room': parts = viewRoom(); break;
    case 'invite': parts = viewInvite(); break;
    case 'earnings': parts = await viewEarnings(arg); break;
    case 'user': parts = await viewProfile(arg); break;
    case 'me': parts = await viewMe(); break;
    case 'events': parts = viewEvents(); break;
    case 'clubs': parts = await viewClubs(); break;
    case 'club': parts = await viewClub(arg); break;
    case 'notifications': parts = await viewNotifications(); break;
    default: parts = viewHallway(); break;
  }
  if (ticket === routing) mount(...parts);
}

async function main() {
  try {
    state.config = await (await fetch('config.json', {cache: 'no-store'})).json();
  } catch {
    state.config = {websocket: 'ws://127.0.0.1:8001/api', stripe: null, ice_servers: [], local: false};
  }
  state.config.api = state.config.api || '';
  $('#sign-out').addEventListener('click', async () => {
    try {
      await api('POST', '/auth/sign-out');
    } catch {
      // signed out locally all the same
    }
    endSession();
  });
  $('#money-form').addEventListener('submit', moneySubmit);
  $('#money-cancel').addEventListener('click', () => {
    money.step = 'closed';
    $('#money-dialog').close();
  });
  let quoteTimer = null;
  $('#money-amount').addEventListener('input', () => {
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(quote, 300);
  });
  window.addEventListener('hashchange', route);
  loadSession();
  if (state.session) await signedIn();
  else route();
}

// For people debugging audio, and for the browser tests: what getStats() says, per peer.
window.salonDebug = {
  audio: () => sfu.stats(),
  sending: () => sfu.sending(),
  media: sfu, // what a test of a modified client overrides
  realtime, // the browser tests drop its socket to see the reconnection
  me: () => sfu.myId(),
  room: () => state.room && {id: state.room.id, viewer: state.room.viewer, stage: [...state.room.stage.keys()]},
};

main();
