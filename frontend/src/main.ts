import { mount } from 'svelte';
import App from './App.svelte';
import { detectApi } from './lib/api';
import { Dashboard } from './lib/dashboard.svelte';
import { Router } from './lib/router.svelte';
import './app.css';

// In the desktop window the Wails runtime sets up window.go as the page
// loads; give it a moment before deciding this is a browser.
async function whenBridge(): Promise<void> {
  if (!window.runtime || window.go?.app?.Bridge) return;
  for (let i = 0; i < 40 && !window.go?.app?.Bridge; i++) await new Promise((r) => setTimeout(r, 50));
}

await whenBridge();
const dash = new Dashboard(detectApi());
// Before anything else: a one-time link's secret leaves the address bar.
const router = new Router(dash.api.session);
mount(App, { target: document.getElementById('app')!, props: { dash, router } });
void dash.start();
