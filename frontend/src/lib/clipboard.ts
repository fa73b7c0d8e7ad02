// Copying text: the async Clipboard API where the page may use it, else the
// old selection-and-execCommand route (insecure origins, some webviews).

export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Denied or unavailable: try the fallback before giving up.
    }
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  try {
    // execCommand is deprecated but is the only route where the Clipboard API is missing.
    if (!document.execCommand('copy')) throw new Error('the browser refused to copy');
  } finally {
    ta.remove();
  }
}
