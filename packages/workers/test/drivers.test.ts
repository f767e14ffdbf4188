// Optional peer drivers: a driver that is missing or broken is an error that names the package.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isMissingModule, missingDriver, requireDriver, type DriverNeed } from '@throughway/workers/internal';

// A scratch package tree outside the workspace, so that nothing resolves from the repo's node_modules.
const dir = mkdtempSync(join(tmpdir(), 'throughway-drivers-'));
const from = pathToFileURL(join(dir, 'caller.js'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakePackage(name: string, main: string): void {
  const root = join(dir, 'node_modules', name);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js' }));
  writeFileSync(join(root, 'index.js'), main);
}

const need = (name: string): DriverNeed => ({ name, range: '^1', user: 'someSource (@throughway/some-producer)' });

describe('requireDriver', () => {
  it('returns the driver module when it is installed', () => {
    fakePackage('working-driver', 'module.exports = { answer: 42 };');
    expect(requireDriver<{ answer: number }>(from, need('working-driver')).answer).toBe(42);
  });

  it('throws ERR_THROUGHWAY_MISSING_DRIVER naming the package, its range and who needs it', () => {
    let error: any;
    try {
      requireDriver(from, need('absent-driver'));
    } catch (e) {
      error = e;
    }
    expect(error?.name).toBe('ThroughwayError');
    expect(error.code).toBe('ERR_THROUGHWAY_MISSING_DRIVER');
    expect(error.message).toBe(
      'someSource (@throughway/some-producer) needs the package absent-driver (^1), which is not installed. Install it beside Throughway: npm install absent-driver',
    );
    expect(error.details).toEqual({ package: 'absent-driver', range: '^1' });
    expect(error.cause.code).toBe('MODULE_NOT_FOUND');
  });

  it('reports a driver that is installed but fails to load with its own message, not as missing', () => {
    fakePackage('broken-driver', "throw new Error('was compiled against a different Node.js version');");
    expect(() => requireDriver(from, need('broken-driver'))).toThrowError(
      expect.objectContaining({
        code: 'ERR_THROUGHWAY_DRIVER_LOAD',
        message: 'someSource (@throughway/some-producer) could not load broken-driver: was compiled against a different Node.js version',
      }),
    );
  });

  it('treats a missing dependency of the driver as a load failure of the driver, not as the driver missing', () => {
    fakePackage('driver-with-missing-dep', "require('its-own-missing-dependency');");
    expect(() => requireDriver(from, need('driver-with-missing-dep'))).toThrowError(expect.objectContaining({ code: 'ERR_THROUGHWAY_DRIVER_LOAD' }));
  });

  it('tells an ESM import failure of the driver itself from other failures', async () => {
    const error = await import(pathToFileURL(join(dir, 'nowhere.mjs')).href).catch((e: unknown) => e);
    expect(isMissingModule(error, 'nowhere.mjs')).toBe(false);
    const bare = await import('surely-not-installed-package-xyz' as string).catch((e: unknown) => e);
    expect(isMissingModule(bare, 'surely-not-installed-package-xyz')).toBe(true);
    expect(missingDriver(need('surely-not-installed-package-xyz'), bare).code).toBe('ERR_THROUGHWAY_MISSING_DRIVER');
  });
});
