// The public status links a user can put on a web page.

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface BadgeLinks {
  badge: string;
  json: string;
  /** The badge linked to the JSON, for pages that want a plain image. */
  snippet: string;
  /** The live widget: one script tag that draws a dot and a short text and keeps them current. */
  embed: string;
  /** The badge on its own, for pages (or readers) without JavaScript. */
  fallback: string;
}

/** Badge SVG and JSON URLs on the service at origin, and the HTML snippets that show them. */
export function badgeLinks(origin: string, handle: string, name: string): BadgeLinks {
  const base = origin.replace(/\/+$/, '');
  const h = encodeURIComponent(handle);
  const badge = `${base}/badge/${h}.svg`;
  const json = `${base}/api/v1/public/${h}`;
  const alt = escapeAttr(`${name || handle} on Lastseen`);
  const snippet = `<a href="${escapeAttr(json)}"><img src="${escapeAttr(badge)}" alt="${alt}"></a>`;
  const embed = `<script src="${escapeAttr(`${base}/embed/${h}.js`)}" data-handle="${escapeAttr(handle)}" async></script>`;
  const fallback = `<img src="${escapeAttr(badge)}" alt="${alt}">`;
  return { badge, json, snippet, embed, fallback };
}
