import {
  ErrorCode,
  isRobustMQError,
  type ProtocolPlugin,
  type ProtocolPluginDefinition,
} from '@robustmq/core';
import { StartupError } from '../startup-error.js';
import { importPackage } from './resolve.js';

export interface LoadedProtocol {
  packageName: string;
  name: string;
  plugin: ProtocolPlugin;
}

const PLUGIN_NAME = /^[a-z][a-z0-9_]*$/;

/** Loads each protocol package's definition and creates its plugin from the matching config section. */
export async function loadProtocols(
  packageNames: readonly string[],
  sections: Readonly<Record<string, unknown>>,
  searchDirs: readonly string[],
): Promise<LoadedProtocol[]> {
  const loaded: LoadedProtocol[] = [];
  for (const packageName of packageNames) {
    const module = (await importPackage(packageName, searchDirs, 'protocol')) as { default?: unknown };
    const definition = checkDefinition(packageName, module.default);
    if (loaded.some((p) => p.name === definition.name)) {
      throw new StartupError(`two protocol packages are both named ${definition.name}`);
    }
    const section = sections[definition.name];
    let plugin: ProtocolPlugin;
    try {
      plugin = definition.create((section ?? {}) as Record<string, unknown>);
    } catch (error) {
      if (isRobustMQError(error, ErrorCode.Config)) {
        throw new StartupError(`invalid setting ${definition.name}.${error.message}`);
      }
      throw new StartupError(
        `protocol ${definition.name} (${packageName}) failed to load: ${(error as Error).message}`,
      );
    }
    loaded.push({ packageName, name: definition.name, plugin });
  }
  return loaded;
}

function checkDefinition(packageName: string, value: unknown): ProtocolPluginDefinition {
  const definition = value as Partial<ProtocolPluginDefinition> | undefined;
  if (
    !definition ||
    typeof definition.name !== 'string' ||
    !PLUGIN_NAME.test(definition.name) ||
    typeof definition.create !== 'function'
  ) {
    throw new StartupError(
      `${packageName} is not a RobustMQ protocol package: its default export must be definePlugin({ name, create })`,
    );
  }
  return definition as ProtocolPluginDefinition;
}
