// Your data out and back in (Settings → Your data): the export's paths and
// file name, the import's request and what its answer says. Pure functions;
// the transfers themselves are the api module's.

import { civilDate, isoDate } from './zone';

export type ExportFormat = 'json' | 'csv';

/** What the import pickers offer; the service tells files apart by shape, this only sets defaults and wording. */
export type ImportKind = 'lastseen' | 'activitywatch';

/** The service's cap on one import's body (httpapi.MaxImportBytes). */
export const MAX_IMPORT_BYTES = 32 << 20;

/** What an import did to one device. */
export interface ImportedDevice {
  id: number;
  name: string;
  /** The import added the device. */
  created: boolean;
  added: number;
  skipped: number;
}

/** The answer to POST /api/v1/import. */
export interface ImportResult {
  format: string;
  added: number;
  skipped: number;
  devices: ImportedDevice[] | null;
}

/**
 * Where an import's sessions go: the devices the file names (ours by their
 * names, an ActivityWatch export by its host; missing ones are created), one
 * existing device, or a device of a given name (created if there is none).
 */
export type ImportTarget = { kind: 'file' } | { kind: 'device'; id: number } | { kind: 'named'; name: string };

export function exportPath(format: ExportFormat): string {
  return format === 'csv' ? '/api/v1/export?format=csv' : '/api/v1/export';
}

export function importPath(t: ImportTarget): string {
  switch (t.kind) {
    case 'device':
      return `/api/v1/import?device=${t.id}`;
    case 'named':
      return `/api/v1/import?device_name=${encodeURIComponent(t.name)}`;
    default:
      return '/api/v1/import';
  }
}

/**
 * The file name a Content-Disposition header gives ('' when none): the
 * RFC 6266 filename* (UTF-8, percent-encoded) before the plain filename.
 * Only the last path segment is kept, whatever the header says.
 */
export function attachmentName(header: string | null | undefined): string {
  if (!header) return '';
  let name = '';
  const star = /filename\*\s*=\s*([^;]+)/i.exec(header);
  if (star) {
    const m = /^([\w-]+)'[^']*'(.*)$/.exec(star[1].trim());
    if (m) {
      try {
        name = decodeURIComponent(m[2]);
      } catch {
        name = '';
      }
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/i.exec(header);
    if (plain) name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2].trim();
  }
  return name.split(/[/\\]/).pop()?.trim() ?? '';
}

/**
 * The name the service gives an export, "lastseen-HANDLE-DATE.EXT" with the
 * date in the user's zone: for where the answer's headers do not arrive (the
 * desktop window's bridge passes the body only).
 */
export function exportFileName(handle: string, tz: string, now: number, format: ExportFormat): string {
  return `lastseen-${handle || 'export'}-${isoDate(civilDate(now, tz))}.${format}`;
}

export function exportType(format: ExportFormat): string {
  return format === 'csv' ? 'text/csv;charset=utf-8' : 'application/json;charset=utf-8';
}

/** Why a file cannot be sent as an import, or '' when it can. */
export function checkImportFile(f: { name: string; size: number }): string {
  if (f.size === 0) return `${f.name} is empty.`;
  if (f.size > MAX_IMPORT_BYTES) return `${f.name} is ${mib(f.size)}; an import is at most ${mib(MAX_IMPORT_BYTES)}: split the file.`;
  return '';
}

function mib(n: number): string {
  const v = n / (1 << 20);
  return `${Number.isInteger(v) ? v : v.toFixed(1)} MiB`;
}

// ---- the device choice: one <select> value per target

/** The select's value for a target. */
export function choiceOf(t: ImportTarget): string {
  if (t.kind === 'device') return `device:${t.id}`;
  if (t.kind === 'named') return 'named';
  return 'file';
}

/**
 * The target a choice names, with the typed name for a named device; a
 * string is what is wrong with the choice.
 */
export function targetOf(choice: string, name: string): ImportTarget | string {
  if (choice === 'named') {
    const n = name.trim();
    return n ? { kind: 'named', name: n } : 'Give the new device a name, e.g. laptop.';
  }
  const m = /^device:(\d+)$/.exec(choice);
  if (m) return { kind: 'device', id: Number(m[1]) };
  return { kind: 'file' };
}

/**
 * Where an import goes unless the user says otherwise: in the desktop
 * window, the device it runs on; elsewhere the devices the file names (an
 * ActivityWatch export: a device named after its host).
 */
export function defaultTarget(thisDevice: { id: number } | null | undefined): ImportTarget {
  return thisDevice && thisDevice.id > 0 ? { kind: 'device', id: thisDevice.id } : { kind: 'file' };
}

/** What "the devices the file names" means for a kind of file. */
export function fileTargetLabel(kind: ImportKind): string {
  return kind === 'activitywatch' ? 'A device named after the ActivityWatch host' : 'The devices named in the file';
}

// ---- the answer

const numbers = new Intl.NumberFormat('en-US');

/** "1 session", "1,234 sessions". */
export function sessions(n: number): string {
  return `${numbers.format(n)} ${n === 1 ? 'session' : 'sessions'}`;
}

/** One device's line: "laptop (new device): Added 1,234 sessions, skipped 56 already there". */
export function deviceLine(d: ImportedDevice): string {
  const skipped = d.skipped > 0 ? `, skipped ${numbers.format(d.skipped)} already there` : '';
  return `${d.name}${d.created ? ' (new device)' : ''}: Added ${sessions(d.added)}${skipped}`;
}

export const formatNames: Record<string, string> = { lastseen: 'a Lastseen export', activitywatch: 'an ActivityWatch export' };

/**
 * What an import's answer says: a line per device, and a note when the
 * file was not the kind the user picked (the service tells them apart by
 * shape and imports it anyway) or held nothing to import.
 */
export function importSummary(r: ImportResult, picked: ImportKind): { lines: string[]; note: string } {
  const devices = r.devices ?? [];
  const lines = devices.map(deviceLine);
  const notes: string[] = [];
  if (r.format && r.format !== picked) notes.push(`The file was ${formatNames[r.format] ?? `a ${r.format} file`}.`);
  if (devices.length === 0) notes.push('The file holds no sessions to import.');
  return { lines, note: notes.join(' ') };
}
