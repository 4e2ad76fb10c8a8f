import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { StartupError } from './startup-error.js';

/** Reads a PEM file a setting names; one that cannot be read stops the start, naming the setting. */
export function readTlsFile(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new StartupError(
      `${setting}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/**
 * Checks at start-up that the files make a usable certificate and key (and CA), so that a key that
 * does not match its certificate stops the start rather than failing each connection later.
 */
export function checkTlsFiles(pems: SecureContextOptions, settings: string): void {
  try {
    createSecureContext(pems);
  } catch (error) {
    throw new StartupError(`${settings}: not a usable certificate and key: ${(error as Error).message}`);
  }
}
