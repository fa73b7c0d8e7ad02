import { mount } from 'svelte';
import App from './App.svelte';
import { detectApi } from './lib/api';
import { Dashboard } from './lib/dashboard.svelte';
import './app.css';

const dash = new Dashboard(detectApi());
mount(App, { target: document.getElementById('app')!, props: { dash } });
void dash.start();
