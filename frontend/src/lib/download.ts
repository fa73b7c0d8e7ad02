// Saving a file the page holds (an export) where the user keeps downloads:
// an object URL on a link with the download attribute. Browsers save it
// under the given name. The desktop window's webview does what its platform
// does with such a link: WebView2 downloads it as Chromium does; a webview
// that ignores the download attribute opens the file instead, which
// `contained` keeps out of the dashboard.

export interface SaveOptions {
  /**
   * Aim the link at a hidden frame: where the download attribute is
   * honoured nothing changes, and where it is not the file opens in the
   * frame rather than replacing the page.
   */
  contained?: boolean;
}

const frameName = 'lastseen-download';

/** Hands data to the browser's downloads as name. */
export function saveFile(name: string, data: Blob, opts: SaveOptions = {}): void {
  const url = URL.createObjectURL(data);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  a.style.display = 'none';
  if (opts.contained) {
    let frame = document.querySelector<HTMLIFrameElement>(`iframe[name="${frameName}"]`);
    if (!frame) {
      frame = document.createElement('iframe');
      frame.name = frameName;
      frame.title = 'Downloads';
      frame.hidden = true;
      document.body.appendChild(frame);
    }
    a.target = frameName;
  }
  document.body.appendChild(a);
  try {
    a.click();
  } finally {
    a.remove();
    // The download reads the URL after click returns: release it later,
    // not at once, or some browsers save nothing.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
}
