import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type Authorizer, type Principal } from '@robustmq/core';
import type { MqttSettings } from './config.js';
import { scramMethod } from './scram.js';

/** Who is authenticating: what the CONNECT said, and the node's authorizer to check against. */
export interface EnhancedAuthRequest {
  /** The Authentication Method, e.g. `SCRAM-SHA-256`. */
  readonly method: string;
  readonly clientId: string;
  /** The CONNECT's user name, if it had one. */
  readonly username: string | null;
  readonly remoteAddress: string;
  /** The node's authorizer (user store, SCRAM credentials). */
  readonly authorizer: Authorizer;
}

/** What one step of an exchange decided. */
export type EnhancedAuthStep =
  /** Another round: `data` goes to the client in AUTH 0x18, whose answer comes to the next step. */
  | { readonly outcome: 'continue'; readonly data?: Uint8Array }
  /** Authenticated as `principal`; `data` goes to the client in CONNACK (or AUTH 0x00). */
  | { readonly outcome: 'success'; readonly principal: Principal; readonly data?: Uint8Array }
  /** Refused (CONNACK 0x87 / DISCONNECT 0x87); `reason` is logged, not sent. */
  | { readonly outcome: 'failure'; readonly reason?: string };

/** One authentication exchange with one client. */
export interface EnhancedAuthExchange {
  /**
   * Takes the client's Authentication Data (from CONNECT, or from its AUTH packets) and says
   * what comes next. Throwing counts as a failure.
   */
  step(data: Uint8Array | undefined): Promise<EnhancedAuthStep>;
}

/**
 * An MQTT 5 enhanced authentication method (MQTT 5 section 4.12): starts an exchange for each
 * CONNECT, or AUTH 0x19 re-authentication, naming it.
 */
export type EnhancedAuthMethod = (request: EnhancedAuthRequest) => EnhancedAuthExchange;

/**
 * The methods the broker offers: the built-in SCRAM ones listed in `enhanced_auth_methods`, and
 * those of `enhanced_auth_module`. That module's default export (or, without one, the module
 * itself) maps method names to {@link EnhancedAuthMethod} functions; its methods replace
 * built-in ones of the same name.
 */
export async function loadAuthMethods(
  settings: Pick<MqttSettings, 'enhancedAuthMethods' | 'enhancedAuthModule'>,
): Promise<ReadonlyMap<string, EnhancedAuthMethod>> {
  const methods = new Map<string, EnhancedAuthMethod>();
  for (const name of settings.enhancedAuthMethods) {
    methods.set(name, scramMethod(name === 'SCRAM-SHA-512' ? 'SCRAM-SHA-512' : 'SCRAM-SHA-256'));
  }
  const specifier = settings.enhancedAuthModule;
  if (specifier === undefined) return methods;
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(moduleUrl(specifier))) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError('enhanced_auth_module', `cannot load ${specifier}: ${(error as Error).message}`);
  }
  const table = (
    typeof loaded.default === 'object' && loaded.default !== null ? loaded.default : loaded
  ) as Record<string, unknown>;
  let found = 0;
  for (const [name, method] of Object.entries(table)) {
    if (typeof method !== 'function' || name === 'default') continue;
    methods.set(name, method as EnhancedAuthMethod);
    found++;
  }
  if (found === 0) {
    throw new ConfigError('enhanced_auth_module', `${specifier} exports no authentication method`);
  }
  return methods;
}

/** A file path (relative to the working directory) or a package name as the node resolves it. */
function moduleUrl(specifier: string): string {
  if (specifier.startsWith('.') || isAbsolute(specifier)) {
    return pathToFileURL(resolve(specifier)).href;
  }
  try {
    return pathToFileURL(createRequire(join(process.cwd(), 'noop.js')).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}
