// errorText: the `last_error` text both queue sources (SQLite and PostgreSQL) store for a failed row.
import { describe, expect, it } from 'vitest';
import { errorText } from '@throughway/workers/internal';

describe('errorText', () => {
  it('keeps a string reason as it is', () => {
    expect(errorText({ kind: 'failed', reason: 'smtp refused' })).toBe('smtp refused');
  });

  it('gives the message of an Error reason (kept as { name, message } across threads)', () => {
    expect(errorText({ kind: 'failed', reason: { name: 'TypeError', message: 'bad payload' } })).toBe('bad payload');
  });

  it('writes any other reason as JSON, and a reason JSON cannot hold as text', () => {
    expect(errorText({ kind: 'failed', reason: { code: 'E_RATE' } })).toBe('{"code":"E_RATE"}');
    expect(errorText({ kind: 'failed', reason: { message: 'm', code: 7 } })).toBe('{"message":"m","code":7}');
    expect(errorText({ kind: 'failed', reason: 12n })).toBe('12');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(errorText({ kind: 'failed', reason: cyclic })).toBe('[object Object]');
  });

  it('gives the message of a thrown error, or the error as JSON', () => {
    expect(errorText({ kind: 'error', error: { name: 'Error', message: 'handler threw' } })).toBe('handler threw');
    expect(errorText({ kind: 'error', error: undefined as never })).toBe('undefined');
  });

  it("says 'failed' for any other status", () => {
    expect(errorText({ kind: 'ok' })).toBe('failed');
  });
});
