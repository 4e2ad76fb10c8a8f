import { ConfigError } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import plugin from '../src/index.js';
import { parseSettings } from '../src/config.js';

describe('[mqtt] settings', () => {
  it('has defaults', () => {
    const s = parseSettings({});
    expect(s.port).toBe(1883);
    expect(s.maxPacketSize).toBe(1_048_576);
    expect(s.allowEmptyClientId).toBe(true);
    expect(s.maxSessionExpiryInterval).toBe(0xffffffff);
    expect(s.queueFullPolicy).toBe('drop_newest');
  });

  it('reads the settings given', () => {
    const s = parseSettings({
      port: 0,
      max_topic_levels: 8,
      allow_empty_client_id: false,
      host: '127.0.0.1',
      queue_full_policy: 'drop_oldest',
    });
    expect(s).toMatchObject({
      port: 0,
      maxTopicLevels: 8,
      allowEmptyClientId: false,
      host: '127.0.0.1',
      queueFullPolicy: 'drop_oldest',
    });
  });

  it('names the unknown or invalid setting', () => {
    const error = (section: Record<string, unknown>) => {
      try {
        parseSettings(section);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('no error');
    };
    expect(error({ prot: 1 })).toMatchObject({ setting: 'prot', message: 'prot: unknown setting' });
    expect(error({ port: 'x' }).setting).toBe('port');
    expect(error({ port: 70000 }).message).toBe('port: must be an integer from 0 to 65535');
    expect(error({ max_packet_size: 1.5 }).setting).toBe('max_packet_size');
    expect(error({ allow_empty_client_id: 'yes' }).setting).toBe('allow_empty_client_id');
    expect(error({ host: '' })).toBeInstanceOf(ConfigError);
    expect(error({ queue_full_policy: 'drop_all' }).setting).toBe('queue_full_policy');
    expect(error({ outbound_topic_aliases: -1 }).setting).toBe('outbound_topic_aliases');
    expect(error({ response_information: 3 }).setting).toBe('response_information');
    expect(error({ enhanced_auth_methods: ['PLAIN'] }).setting).toBe('enhanced_auth_methods');
    expect(error({ enhanced_auth_module: '' }).setting).toBe('enhanced_auth_module');
  });

  it('reads the MQTT 5 extras: outbound topic aliases, response information, enhanced authentication', () => {
    expect(parseSettings({})).toMatchObject({
      outboundTopicAliases: 64,
      responseInformation: 'response/{clientId}/',
      enhancedAuthMethods: ['SCRAM-SHA-256', 'SCRAM-SHA-512'],
      enhancedAuthModule: undefined,
    });
    expect(
      parseSettings({
        outbound_topic_aliases: 0,
        response_information: '',
        enhanced_auth_methods: [],
        enhanced_auth_module: './auth.mjs',
      }),
    ).toMatchObject({
      outboundTopicAliases: 0,
      responseInformation: '',
      enhancedAuthMethods: [],
      enhancedAuthModule: './auth.mjs',
    });
  });

  it('fails to start with a ConfigError when the enhanced auth module cannot be loaded', async () => {
    const broken = plugin.create({ port: 0, enhanced_auth_module: './no/such/module.mjs' });
    const error = await broken.start({} as Parameters<typeof broken.start>[0]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('enhanced_auth_module');
  });

  it('is the default export: a plugin named mqtt with one TCP listener', () => {
    expect(plugin.name).toBe('mqtt');
    expect(plugin.create({ port: 0 }).listeners()).toEqual([{ name: 'tcp', port: 0, transport: 'tcp' }]);
  });
});
