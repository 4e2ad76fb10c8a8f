import { pathToFileURL } from 'node:url';
import { resolve as resolveSpecifier } from 'import-meta-resolve';
import { StartupError } from '../startup-error.js';

/**
 * Imports a package by name the way a user expects: first from their own project (the config
 * file's directory, then the working directory), then from the server's own dependencies, where
 * the first-party packages live.
 */
export async function importPackage(
  name: string,
  searchDirs: readonly string[],
  what: string,
): Promise<unknown> {
  const parents = [...searchDirs.map((dir) => pathToFileURL(`${dir}/`).href), import.meta.url];
  for (const parent of parents) {
    let url: string;
    try {
      url = resolveSpecifier(name, parent);
    } catch {
      continue;
    }
    return import(url);
  }
  throw new StartupError(
    `${what} package ${JSON.stringify(name)} is not installed (try: npm install ${name})`,
  );
}
