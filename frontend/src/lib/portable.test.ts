import { describe, expect, it } from 'vitest';
import {
  MAX_IMPORT_BYTES,
  attachmentName,
  checkImportFile,
  choiceOf,
  defaultTarget,
  deviceLine,
  exportFileName,
  exportPath,
  importPath,
  importSummary,
  sessions,
  targetOf,
  type ImportResult,
} from './portable';

describe('export', () => {
  it('asks JSON by default and CSV by name', () => {
    expect(exportPath('json')).toBe('/api/v1/export');
    expect(exportPath('csv')).toBe('/api/v1/export?format=csv');
  });
  it('takes the file name from Content-Disposition', () => {
    expect(attachmentName('attachment; filename="lastseen-ada-2026-12-03.json"')).toBe('lastseen-ada-2026-12-03.json');
    expect(attachmentName('attachment; filename=plain.csv')).toBe('plain.csv');
    expect(attachmentName(`attachment; filename="x.json"; filename*=UTF-8''caf%C3%A9.json`)).toBe('café.json');
    expect(attachmentName('attachment; filename="a \\"b\\".json"')).toBe('a "b".json');
    expect(attachmentName('attachment; filename="../../etc/passwd"')).toBe('passwd');
    expect(attachmentName('attachment')).toBe('');
    expect(attachmentName(null)).toBe('');
  });
  it('names a file as the service does, dated in the user zone', () => {
    const t = Date.parse('2026-12-03T23:30:00Z');
    expect(exportFileName('ada', 'UTC', t, 'json')).toBe('lastseen-ada-2026-12-03.json');
    expect(exportFileName('ada', 'Europe/Paris', t, 'csv')).toBe('lastseen-ada-2026-12-04.csv');
    expect(exportFileName('', 'UTC', t, 'json')).toBe('lastseen-export-2026-12-03.json');
  });
});

describe('import request', () => {
  it('builds the path for each target', () => {
    expect(importPath({ kind: 'file' })).toBe('/api/v1/import');
    expect(importPath({ kind: 'device', id: 7 })).toBe('/api/v1/import?device=7');
    expect(importPath({ kind: 'named', name: 'old laptop & co' })).toBe('/api/v1/import?device_name=old%20laptop%20%26%20co');
  });
  it('maps the device choice to a target and back', () => {
    expect(targetOf('file', 'ignored')).toEqual({ kind: 'file' });
    expect(targetOf('device:12', '')).toEqual({ kind: 'device', id: 12 });
    expect(targetOf('named', '  desk  ')).toEqual({ kind: 'named', name: 'desk' });
    expect(targetOf('named', '   ')).toMatch(/name/);
    expect(targetOf('bogus', '')).toEqual({ kind: 'file' });
    for (const t of [{ kind: 'file' } as const, { kind: 'device', id: 3 } as const]) expect(targetOf(choiceOf(t), '')).toEqual(t);
    expect(choiceOf({ kind: 'named', name: 'x' })).toBe('named');
  });
  it('defaults to this device in the window, else to the devices the file names', () => {
    expect(defaultTarget({ id: 4 })).toEqual({ kind: 'device', id: 4 });
    expect(defaultTarget({ id: 0 })).toEqual({ kind: 'file' }); // not known yet
    expect(defaultTarget(null)).toEqual({ kind: 'file' });
  });
  it('refuses an empty or oversized file before sending it', () => {
    expect(checkImportFile({ name: 'a.json', size: 10 })).toBe('');
    expect(checkImportFile({ name: 'a.json', size: MAX_IMPORT_BYTES })).toBe('');
    expect(checkImportFile({ name: 'a.json', size: 0 })).toBe('a.json is empty.');
    expect(checkImportFile({ name: 'big.json', size: MAX_IMPORT_BYTES + (1 << 19) })).toBe(
      'big.json is 32.5 MiB; an import is at most 32 MiB: split the file.',
    );
  });
});

describe('import result', () => {
  it('counts sessions with thousands separators and the right plural', () => {
    expect(sessions(0)).toBe('0 sessions');
    expect(sessions(1)).toBe('1 session');
    expect(sessions(1234)).toBe('1,234 sessions');
  });
  it('says per device what was added and skipped', () => {
    expect(deviceLine({ id: 1, name: 'vm', created: true, added: 1234, skipped: 56 })).toBe(
      'vm (new device): Added 1,234 sessions, skipped 56 already there',
    );
    expect(deviceLine({ id: 1, name: 'vm', created: false, added: 0, skipped: 12 })).toBe('vm: Added 0 sessions, skipped 12 already there');
    expect(deviceLine({ id: 1, name: 'vm', created: false, added: 1, skipped: 0 })).toBe('vm: Added 1 session');
  });
  it('notes a file of the other kind and a file with nothing in it', () => {
    const r: ImportResult = { format: 'activitywatch', added: 3, skipped: 0, devices: [{ id: 2, name: 'vm', created: false, added: 3, skipped: 0 }] };
    expect(importSummary(r, 'activitywatch')).toEqual({ lines: ['vm: Added 3 sessions'], note: '' });
    expect(importSummary(r, 'lastseen').note).toBe('The file was an ActivityWatch export.');
    expect(importSummary({ format: 'lastseen', added: 0, skipped: 0, devices: null }, 'lastseen')).toEqual({
      lines: [],
      note: 'The file holds no sessions to import.',
    });
  });
});
