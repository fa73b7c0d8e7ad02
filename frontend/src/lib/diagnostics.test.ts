import { describe, expect, it } from 'vitest';
import { idleProbes } from './diagnostics';

describe('idleProbes', () => {
  const order = ['x11-screensaver', 'mutter-idlemonitor', 'freedesktop-screensaver'];
  it.each<[string, string[] | undefined, string, [string, string][]]>([
    [
      'the first that worked is in use, the earlier ones did not work, the later ones were never tried',
      order,
      'mutter-idlemonitor',
      [
        ['x11-screensaver', 'unavailable'],
        ['mutter-idlemonitor', 'in use'],
        ['freedesktop-screensaver', 'not tried'],
      ],
    ],
    [
      'the first in use',
      order,
      'x11-screensaver',
      [
        ['x11-screensaver', 'in use'],
        ['mutter-idlemonitor', 'not tried'],
        ['freedesktop-screensaver', 'not tried'],
      ],
    ],
    ['none works', order.slice(0, 2), '', [['x11-screensaver', 'unavailable'], ['mutter-idlemonitor', 'unavailable']]],
    ['no order reported', undefined, 'getlastinputinfo', [['getlastinputinfo', 'in use']]],
    ['nothing at all', [], '', []],
    ['a backend the order does not name', ['a'], 'b', [['a', ''], ['b', 'in use']]],
  ])('%s', (_, o, chosen, want) => {
    expect(idleProbes(o, chosen).map((p) => [p.name, p.result])).toEqual(want);
  });
});
