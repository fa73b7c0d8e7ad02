import { describe, expect, it } from 'vitest';
import { decodeEvent } from './events';

describe('decodeEvent', () => {
  it('reads a full presence event', () => {
    const ev = decodeEvent(
      '42',
      'presence',
      JSON.stringify({
        id: 42,
        kind: 'presence',
        user_id: 1,
        at: '2026-11-25T10:00:00Z',
        presence: { handle: 'ada', device_id: 3, device_name: 'laptop', status: 'idle', user_status: 'active', last_seen: '2026-11-25T09:59:00Z' },
      }),
    );
    expect(ev).toEqual({
      id: '42',
      kind: 'presence',
      at: '2026-11-25T10:00:00Z',
      presence: { handle: 'ada', device_id: 3, device_name: 'laptop', status: 'idle', user_status: 'active', last_seen: '2026-11-25T09:59:00Z' },
    });
  });

  it('reads a session event and computes its duration', () => {
    const ev = decodeEvent(
      '',
      'session',
      JSON.stringify({
        id: 43,
        kind: 'session',
        at: '2026-11-25T10:00:00Z',
        session: { id: 7, device_id: 3, state: 'active', start: '2026-11-25T09:00:00Z', end: '2026-11-25T09:30:00Z' },
        open: true,
      }),
    );
    expect(ev?.kind).toBe('session');
    if (ev?.kind !== 'session') return;
    expect(ev.id).toBe('43');
    expect(ev.open).toBe(true);
    expect(ev.session).toMatchObject({ id: 7, duration_s: 1800, open: true });
  });

  it('accepts a bare payload and takes the kind from the data when the name is missing', () => {
    const bare = decodeEvent('1', 'presence', JSON.stringify({ handle: 'ada', device_id: 1, status: 'away' }));
    expect(bare).toMatchObject({ kind: 'presence', presence: { user_status: 'away', last_seen: null, device_name: '' } });
    const named = decodeEvent('', '', JSON.stringify({ id: 2, kind: 'session', session: { id: 1, device_id: 1, state: 'idle', start: '2026-11-25T09:00:00Z', end: '2026-11-25T09:00:00Z' } }));
    expect(named).toMatchObject({ id: '2', kind: 'session', open: false });
  });

  it('reads the service wire form: bare payloads, session id is not the event id', () => {
    const p = decodeEvent(
      '12',
      'presence',
      '{"handle":"ada","device_id":1,"device_name":"laptop","status":"active","user_status":"active","last_seen":"2026-11-25T09:00:00Z","at":"2026-11-25T09:00:00Z"}',
    );
    expect(p).toMatchObject({ id: '12', at: '2026-11-25T09:00:00Z', presence: { device_name: 'laptop', last_seen: '2026-11-25T09:00:00Z' } });
    const s = decodeEvent(
      '',
      'session',
      '{"id":77,"device_id":1,"state":"idle","start":"2026-11-25T09:00:00Z","end":"2026-11-25T09:05:00Z","duration_s":300,"open":false,"handle":"ada"}',
    );
    expect(s).toMatchObject({ id: '', kind: 'session', open: false, handle: 'ada', session: { id: 77, duration_s: 300 } });
    const nullSeen = decodeEvent('13', 'presence', '{"handle":"a","device_id":1,"status":"offline","last_seen":null}');
    expect(nullSeen?.kind === 'presence' && nullSeen.presence.last_seen).toBe(null);
  });

  it('keeps why an active device or span is present, and only that', () => {
    const call = decodeEvent('1', 'presence', '{"handle":"a","device_id":1,"status":"active","why":"call","user_status":"active"}');
    expect(call?.kind === 'presence' && call.presence.why).toBe('call');
    const input = decodeEvent('2', 'presence', '{"handle":"a","device_id":1,"status":"active","why":"input"}');
    expect(input?.kind === 'presence' && input.presence.why).toBe('input');
    // No reason, an unknown one, or one on a state that has none: plain.
    for (const data of [
      '{"handle":"a","device_id":1,"status":"active"}',
      '{"handle":"a","device_id":1,"status":"active","why":"telepathy"}',
      '{"handle":"a","device_id":1,"status":"idle","why":"call"}',
    ]) {
      const ev = decodeEvent('3', 'presence', data);
      expect(ev?.kind === 'presence' && ev.presence).not.toHaveProperty('why');
    }
    const media = decodeEvent(
      '',
      'session',
      '{"id":8,"device_id":1,"state":"active","why":"media","start":"2026-11-25T09:00:00Z","end":"2026-11-25T09:05:00Z","open":true}',
    );
    expect(media?.kind === 'session' && media.session.why).toBe('media');
    const away = decodeEvent('', 'session', '{"id":9,"device_id":1,"state":"away","why":"media","start":"2026-11-25T09:00:00Z","end":"2026-11-25T09:05:00Z"}');
    expect(away?.kind === 'session' && away.session).not.toHaveProperty('why');
  });

  it('keeps why a span ended, whether it was replayed, and the lock on an away span', () => {
    const ev = decodeEvent(
      '',
      'session',
      '{"id":9,"device_id":1,"state":"away","why":"locked","start":"2026-11-25T09:00:00Z","end":"2026-11-25T09:05:00Z","open":false,"end_reason":"sleep","replayed":true}',
    );
    expect(ev?.kind === 'session' && ev.session).toMatchObject({ why: 'locked', end_reason: 'sleep', replayed: true });
    const plain = decodeEvent('', 'session', '{"id":9,"device_id":1,"state":"idle","why":"locked","start":"2026-11-25T09:00:00Z","end":"2026-11-25T09:05:00Z"}');
    expect(plain?.kind === 'session' && plain.session).not.toHaveProperty('why');
    expect(plain?.kind === 'session' && plain.session).not.toHaveProperty('end_reason');
    expect(plain?.kind === 'session' && plain.session).not.toHaveProperty('replayed');
  });

  it('treats Go zero time as no last_seen', () => {
    const ev = decodeEvent('1', 'presence', JSON.stringify({ presence: { handle: 'a', device_id: 1, status: 'offline', last_seen: '0001-01-01T00:00:00Z' } }));
    expect(ev?.kind === 'presence' && ev.presence.last_seen).toBe(null);
  });

  it.each([
    ['not json', 'presence', '{'],
    ['array', 'presence', '[]'],
    ['unknown kind', 'hello', '{"handle":"a","device_id":1,"status":"active"}'],
    ['bad state', 'presence', '{"handle":"a","device_id":1,"status":"sleeping"}'],
    ['missing id', 'session', '{"device_id":1,"state":"active","start":"2026-11-25T09:00:00Z","end":"2026-11-25T09:00:00Z"}'],
    ['bad time', 'session', '{"id":1,"device_id":1,"state":"active","start":"yesterday","end":"2026-11-25T09:00:00Z"}'],
  ])('drops %s', (_, kind, data) => {
    expect(decodeEvent('1', kind, data)).toBeNull();
  });
});
