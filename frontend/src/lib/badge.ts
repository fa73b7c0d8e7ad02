// The public status links a user can put on a web page.

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface BadgeLinks {
  badge: string;
  json: string;
  snippet: string;
}

/** Badge SVG and JSON URLs on the service at origin, and an HTML snippet showing the badge. */
export function badgeLinks(origin: string, handle: string, name: string): BadgeLinks {
  const base = origin.replace(/\/+$/, '');
  const h = encodeURIComponent(handle);
  const badge = `${base}/badge/${h}.svg`;
  const json = `${base}/api/v1/public/${h}`;
  const alt = `${name || handle} on Lastseen`;
  const snippet = `<a href="${escapeAttr(json)}"><img src="${escapeAttr(badge)}" alt="${escapeAttr(alt)}"></a>`;
  return { badge, json, snippet };
}
