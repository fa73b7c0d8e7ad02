// Reading Retry-After, which a rate-limited answer (429) carries.

/**
 * Seconds to wait from a Retry-After header: delay-seconds, or an HTTP date
 * (RFC 9110 §10.2.3) counted from now, rounded up. null when absent or
 * unreadable.
 */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | null {
  const v = header?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  // Only a date has letters; Date.parse would read "1.5" or "-3" as years.
  if (!/[a-z]/i.test(v)) return null;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
