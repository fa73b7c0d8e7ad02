// What the Diagnostics view makes of the agent's idle detection: the agent
// probes its idle backends once, in order, and keeps the first that works,
// so the ones before it did not work here and the ones after were never
// tried. Pure, for the tests.

export type ProbeResult = 'unavailable' | 'in use' | 'not tried' | '';

export interface Probe {
  name: string;
  /** '' when the order and the backend in use disagree and nothing can be said. */
  result: ProbeResult;
}

/** The idle backends in the order tried, each with what became of it; chosen is the one in use ('' for none). */
export function idleProbes(order: readonly string[] | null | undefined, chosen: string): Probe[] {
  const names = order ?? [];
  const i = chosen ? names.indexOf(chosen) : -1;
  if (i >= 0) {
    return names.map((name, j) => ({ name, result: j < i ? 'unavailable' : j === i ? 'in use' : 'not tried' }));
  }
  if (!chosen) return names.map((name) => ({ name, result: 'unavailable' }));
  // A backend in use the order does not name (an agent that reports its
  // names differently): show both, claim nothing about the others.
  return [...names.map((name): Probe => ({ name, result: '' })), { name: chosen, result: 'in use' }];
}
