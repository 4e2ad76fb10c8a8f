import { randomUUID } from 'node:crypto';
import type { Server as HttpsServer } from 'node:https';
import type { TlsOptions } from 'node:tls';
import { join, resolve } from 'node:path';
import {
  ErrorCode,
  isRobustMQError,
  type BrokerContext,
  type Logger,
  type MetaStore,
  type StorageEngine,
  type StorageEngineDefinition,
  TopicCatalog,
} from '@robustmq/core';
import { createJournalServer, serveJournal, type JournalServer } from '@robustmq/journal';
import { openLocalMetaStore, openRaftMetaStore, type RaftMetaStore } from '@robustmq/meta-raft';
import { connectRemoteMetaStore } from '@robustmq/meta-raft/remote';
import { createRpcServer, type MutualTls, type RpcServer } from '@robustmq/rpc';
import type { FastifyInstance } from 'fastify';
import { AdminApi } from './admin/api.js';
import { closeAdminHttp, createAdminHttp, readAdminCertificate } from './admin/http.js';
import { startMetaServices } from './admin/wiring.js';
import { UserStoreAuthorizer } from './auth/authorizer.js';
import type { AuthSettings } from './auth/settings.js';
import type { UserStore } from './auth/users.js';
import type { LoadedConfig } from './config/load.js';
import { DEFAULT_PROTOCOLS, SERVER_KEYS, type NodeConfig } from './config/schema.js';
import { lockDataDir, type DataDir } from './data-dir.js';
import { bindListener, type BoundListener } from './listeners/bind.js';
import { gateLogger, LogLevelControl } from './log-level.js';
import { createLogger } from './logger.js';
import { measureStorage } from './measured-storage.js';
import { NodeMetrics } from './metrics.js';
import { NodeStatus } from './node-status.js';
import { kafkaRecordCodec } from './records.js';
import { loadProtocols, type LoadedProtocol } from './plugins/protocols.js';
import { importPackage } from './plugins/resolve.js';
import { metaNodes, nodeMode, type NodeMode } from './roles.js';
import { TopicTree } from './router/topic-tree.js';
import { ServerBrokerCluster } from './cluster/broker-cluster.js';
import { readNodeCertificate } from './cluster/node-certificate.js';
import { CertificateRenewal } from './certificate-renewal.js';
import { ShutdownDeadline } from './shutdown-deadline.js';
import { listenProblem, StartupError } from './startup-error.js';
import { VERSION } from './version.js';

/** A started node. */
export interface RunningNode {
  readonly config: NodeConfig;
  readonly status: NodeStatus;
  readonly logger: Logger;
  /** The context protocols receive (null on a journal node, which runs no protocols). */
  readonly context: BrokerContext | null;
  /** The user store in the meta service (null on a journal node). */
  readonly users: UserStore | null;
  /** Port the admin HTTP server listens on (useful with port 0). */
  readonly httpPort: number;
  readonly listeners: readonly BoundListener[];
  /**
   * Reads every certificate the node uses again (its TLS and WSS listeners, `[http]`, `[rpc]`) and
   * uses them for the connections made from now on; returns what was renewed. Throws a
   * StartupError naming the file when one cannot be read or is not usable, and then changes none.
   */
  renewCertificates(): string[];
  /** Closes listeners, lets protocols finish in-flight work, flushes storage. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Use this logger instead of one built from the config (tests). */
  logger?: Logger;
}

const RETENTION_INTERVAL_MS = 60_000;

/** Modes whose node keeps topic data on its own disk, and so runs retention. */
const LOCAL_STORAGE_MODES: ReadonlySet<NodeMode> = new Set([
  'standalone',
  'journal',
  'meta-journal',
  'remote-broker-journal',
]);
/** Modes that run the broker and its protocols. */
const BROKER_MODES: ReadonlySet<NodeMode> = new Set([
  'standalone',
  'broker',
  'remote-broker',
  'remote-broker-journal',
]);
/** Modes whose meta store is the meta nodes', over the network. */
const REMOTE_META_MODES: ReadonlySet<NodeMode> = new Set(['remote-broker', 'remote-broker-journal']);

/** Starts a node: admin HTTP first (answering 503), then meta, storage, protocols, listeners. */
export async function startNode(loaded: LoadedConfig, options: StartOptions = {}): Promise<RunningNode> {
  const { config } = loaded;
  const mode = nodeMode(config);
  const logLevel = new LogLevelControl(config.log.level);
  const logger = options.logger
    ? gateLogger(options.logger, logLevel)
    : createLogger(config.log, { node: config.node_id }, logLevel);
  const status = new NodeStatus(VERSION, config.node_id, config.roles);
  const metrics = new NodeMetrics({ node: String(config.node_id) });
  const cleanup: Array<() => Promise<void> | void> = [];
  const deadline = new ShutdownDeadline(config.shutdown_timeout_ms);
  const runCleanup = async () => {
    for (const step of cleanup.reverse()) {
      try {
        await step();
      } catch (error) {
        logger.error({ err: error }, 'error while shutting down');
      }
    }
  };

  try {
    const searchDirs = [loaded.baseDir, process.cwd()];
    const protocolNames = config.protocols ?? (BROKER_MODES.has(mode) ? DEFAULT_PROTOCOLS : []);
    const protocols = await loadProtocols(protocolNames, config, searchDirs);
    checkSections(config, protocols);
    const engine = mode === 'meta' ? null : await loadStorageEngine(config.storage.engine, searchDirs);
    const rpcTls = readNodeCertificate(config.rpc);
    const renewal = new CertificateRenewal();
    /** The node's RPC servers, each given a renewed certificate with the rest. */
    const rpcServers: Array<{ setTls(tls: TlsOptions): void }> = [];
    if (rpcTls !== null) {
      renewal.add('rpc', () => {
        const fresh = readNodeCertificate(config.rpc)!;
        return () => {
          // Every RPC client of this node holds this object, and reads it at each connection.
          Object.assign(rpcTls.client, fresh.client);
          for (const server of rpcServers) server.setTls(fresh.server);
        };
      });
    }

    const authSettings: AuthSettings = {
      allowAnonymous: config.auth.allow_anonymous,
      aclDefault: config.auth.acl_default,
    };
    const api = new AdminApi({ status, config, logLevel, authSettings, logger });
    const http = createAdminHttp(status, metrics, api, readAdminCertificate(config.http));
    if (config.http.tls_cert !== undefined) {
      renewal.add('http', () => {
        const fresh = readAdminCertificate(config.http)!;
        return () => (http.server as unknown as HttpsServer).setSecureContext(fresh);
      });
    }
    cleanup.push(() => closeAdminHttp(http));
    const httpHost = config.http.host ?? config.bind;
    const httpPort = await listenHttp(http, config.http.port, httpHost);
    status.listeners.push({
      protocol: 'admin',
      name: 'http',
      transport: config.http.tls_cert === undefined ? 'http' : 'https',
      host: httpHost,
      port: httpPort,
    });

    const dataDir: DataDir = lockDataDir(resolve(config.data_dir));
    cleanup.push(() => dataDir.release());

    const { engine: _engine, ...engineConfig } = config.storage;
    let storage: StorageEngine | null = null;
    if (engine !== null) {
      const opened = measureStorage(
        await openStorage(engine, {
          dataDir: join(dataDir.path, 'storage'),
          config: engineConfig,
          logger: logger.child({ component: 'storage' }),
          metrics,
          ...(rpcTls === null ? {} : { clusterTls: rpcTls.client }),
        }),
        config.storage.engine,
        metrics,
      );
      storage = opened;
      cleanup.push(() => opened.close());
    }

    let context: BrokerContext | null = null;
    let users: UserStore | null = null;
    const listeners: BoundListener[] = [];
    const rpcHost = config.rpc.host ?? config.bind;
    if (mode === 'journal' || mode === 'remote-broker-journal') {
      const server = createJournalServer({
        engine: storage!,
        host: rpcHost,
        port: config.rpc.port,
        logger: logger.child({ component: 'journal-server' }),
        metrics,
        ...(rpcTls === null ? {} : { tls: rpcTls.server }),
      });
      await listenJournal(server, config.rpc.port, rpcHost);
      cleanup.push(() => server.close());
      if (rpcTls !== null) rpcServers.push(server);
      status.listeners.push({
        protocol: 'journal',
        name: 'rpc',
        transport: rpcTls === null ? 'tcp' : 'tls',
        host: rpcHost,
        port: server.port,
      });
    }
    if (mode !== 'journal') {
      let meta: MetaStore;
      /** This node's internal RPC server, where there is one: peers call brokers there. */
      let rpcServer: RpcServer | null = null;
      if (config.cluster === undefined) {
        meta = await openLocalMetaStore({
          dir: join(dataDir.path, 'meta'),
          logger: logger.child({ component: 'meta' }),
        });
        cleanup.push(() => meta.close());
      } else if (REMOTE_META_MODES.has(mode)) {
        const remote = connectRemoteMetaStore({
          nodes: metaNodes(config),
          logger: logger.child({ component: 'meta' }),
          ...(rpcTls === null ? {} : { tls: rpcTls.client }),
        });
        cleanup.push(() => remote.close());
        meta = remote;
      } else {
        // Raft traffic, and the journal on a node with that role, share the one internal RPC port.
        const rpc = createRpcServer({
          host: rpcHost,
          port: config.rpc.port,
          logger: logger.child({ component: 'rpc' }),
          ...(rpcTls === null ? {} : { tls: rpcTls.server }),
        });
        cleanup.push(() => rpc.close());
        const group: RaftMetaStore = await openRaftMetaStore({
          id: config.node_id,
          peers: metaNodes(config),
          dir: join(dataDir.path, 'meta-raft'),
          rpcServer: rpc,
          ...(rpcTls === null ? {} : { tls: rpcTls }),
          tickMs: config.cluster.tick_ms,
          logger: logger.child({ component: 'meta' }),
        });
        cleanup.push(() => group.close());
        meta = group;
        if (LOCAL_STORAGE_MODES.has(mode)) {
          serveJournal(rpc, { engine: storage!, logger, metrics });
        }
        await listenRpc(rpc, config.rpc.port, rpcHost, 'meta rpc');
        rpcServer = rpc;
        if (rpcTls !== null) rpcServers.push(rpc);
        status.listeners.push({
          protocol: 'meta',
          name: 'rpc',
          transport: rpcTls === null ? 'tcp' : 'tls',
          host: rpcHost,
          port: rpc.port,
        });
        status.metaGroup = () => group.status();
      }
      status.clusterId = await waitForClusterId(meta, logger);
      const services = await startMetaServices({ api, meta, config, status, metrics, logger });
      cleanup.push(() => services.close());

      if (BROKER_MODES.has(mode)) {
        users = services.users;
        const cluster = await joinBrokers(
          config,
          meta,
          storage!,
          rpcServer,
          rpcHost,
          rpcTls,
          rpcServers,
          logger,
          cleanup,
          deadline,
          status,
        );
        const topics = new TopicCatalog(meta, storage!, { logger: logger.child({ component: 'topics' }) });
        context = {
          nodeId: config.node_id,
          version: VERSION,
          router: new TopicTree(logger.child({ component: 'router' })),
          storage: storage!,
          records: kafkaRecordCodec,
          meta,
          auth: new UserStoreAuthorizer(
            users,
            services.acls,
            authSettings,
            logger.child({ component: 'auth' }),
          ),
          metrics,
          logger,
          ...(cluster ? { cluster } : {}),
          topics,
        };
        listeners.push(...(await startProtocols(protocols, context, config, deadline, cleanup)));
        // Peers learn of this broker once its protocols answer their calls.
        await cluster?.start();
        api.attachTopics({ catalog: topics, storage: storage! });
        for (const { name, plugin } of protocols) {
          if (plugin.adminResources) api.attachProtocol(name, plugin.adminResources());
        }
        for (const l of listeners) {
          status.listeners.push({
            protocol: l.protocol,
            name: l.name,
            transport: l.transport,
            host: l.host,
            port: l.port,
          });
          if (l.renewCertificate) renewal.add(`${l.protocol}/${l.name}`, l.renewCertificate);
        }
      }
    }

    // Retention runs where the data is: on the node with the journal role.
    if (LOCAL_STORAGE_MODES.has(mode) && storage !== null) {
      const local = storage;
      const retention = setInterval(() => {
        local
          .enforceRetention(Date.now())
          .catch((error: unknown) => logger.error({ err: error }, 'retention failed'));
      }, RETENTION_INTERVAL_MS);
      retention.unref();
      cleanup.push(() => clearInterval(retention));
    }

    status.markReady();
    logger.info(
      {
        version: VERSION,
        dataDir: dataDir.path,
        listeners: status.listeners.map((l) => `${l.protocol}/${l.name}:${l.port}`),
      },
      'node ready',
    );

    let stopping: Promise<void> | undefined;
    return {
      config,
      status,
      logger,
      context,
      users,
      httpPort,
      listeners,
      renewCertificates: () => renewal.renew(),
      stop: () => {
        stopping ??= (async () => {
          deadline.start();
          status.markStopping();
          logger.info('node stopping');
          await runCleanup();
          logger.info('node stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    await runCleanup();
    throw error;
  }
}

/**
 * The brokers this one serves its storage with: brokers reaching one journal node through a shared
 * meta service. Null for a broker alone (its own storage, or a meta store of its own). A broker
 * without an RPC server of its own gets one on `rpc.port`, where its peers call it.
 */
async function joinBrokers(
  config: NodeConfig,
  meta: MetaStore,
  storage: StorageEngine,
  existing: RpcServer | null,
  rpcHost: string,
  rpcTls: MutualTls | null,
  rpcServers: Array<{ setTls(tls: TlsOptions): void }>,
  logger: Logger,
  cleanup: Array<() => Promise<void> | void>,
  deadline: ShutdownDeadline,
  status: NodeStatus,
): Promise<ServerBrokerCluster | null> {
  if (config.cluster === undefined || storage.location === undefined) return null;
  let rpc = existing;
  if (rpc === null) {
    const own = createRpcServer({
      host: rpcHost,
      port: config.rpc.port,
      logger: logger.child({ component: 'rpc' }),
      ...(rpcTls === null ? {} : { tls: rpcTls.server }),
    });
    cleanup.push(() => own.close());
    await listenRpc(own, config.rpc.port, rpcHost, 'broker rpc');
    if (rpcTls !== null) rpcServers.push(own);
    status.listeners.push({
      protocol: 'broker',
      name: 'rpc',
      transport: rpcTls === null ? 'tcp' : 'tls',
      host: rpcHost,
      port: own.port,
    });
    rpc = own;
  }
  const cluster = new ServerBrokerCluster({
    meta,
    nodeId: config.node_id,
    storage: storage.location,
    rpc,
    rpcHost,
    ...(rpcTls === null ? {} : { tls: rpcTls.client }),
    heartbeatMs: config.cluster.broker_heartbeat_interval_ms,
    sessionTimeoutMs: config.cluster.broker_session_timeout_ms,
    logger: logger.child({ component: 'cluster' }),
  });
  // Pushed before the protocols' steps, so it runs after them: this broker leaves the cluster
  // only once its protocols have stored what they hold.
  cleanup.push(() =>
    deadline.wait(cluster.stop(), () =>
      logger.warn(
        { timeoutMs: deadline.ms },
        'could not leave the cluster within the shutdown timeout; peers will time this broker out',
      ),
    ),
  );
  return cluster;
}

/** Every top-level section must be the server's own or belong to a loaded protocol. */
function checkSections(config: NodeConfig, protocols: readonly LoadedProtocol[]): void {
  const names = new Set(protocols.map((p) => p.name));
  for (const key of Object.keys(config)) {
    if (SERVER_KEYS.has(key) || names.has(key)) continue;
    const loaded = protocols.length ? protocols.map((p) => p.name).join(', ') : 'none';
    throw new StartupError(`${key}: unknown setting (no loaded protocol is named ${key}; loaded: ${loaded})`);
  }
}

async function loadStorageEngine(
  packageName: string,
  searchDirs: readonly string[],
): Promise<StorageEngineDefinition> {
  const module = (await importPackage(packageName, searchDirs, 'storage engine')) as { default?: unknown };
  const definition = module.default as Partial<StorageEngineDefinition> | undefined;
  if (!definition || typeof definition.name !== 'string' || typeof definition.open !== 'function') {
    throw new StartupError(
      `${packageName} is not a RobustMQ storage engine: its default export must be defineStorageEngine({ name, open })`,
    );
  }
  return definition as StorageEngineDefinition;
}

async function openStorage(
  engine: StorageEngineDefinition,
  options: Parameters<StorageEngineDefinition['open']>[0],
): Promise<StorageEngine> {
  try {
    return await engine.open(options);
  } catch (error) {
    if (isRobustMQError(error, ErrorCode.Config))
      throw new StartupError(`invalid setting storage.${error.message}`);
    throw error;
  }
}

async function listenHttp(http: FastifyInstance, port: number, host: string): Promise<number> {
  await explainListen(() => http.listen({ port, host }), port, host, 'admin http');
  const address = http.server.address();
  return typeof address === 'object' && address ? address.port : port;
}

function listenJournal(server: JournalServer, port: number, host: string): Promise<void> {
  return listenRpc(server, port, host, 'journal rpc');
}

function listenRpc(
  server: JournalServer | RpcServer,
  port: number,
  host: string,
  what: string,
): Promise<void> {
  return explainListen(() => server.listen(), port, host, what);
}

async function explainListen(
  listen: () => Promise<unknown>,
  port: number,
  host: string,
  what: string,
): Promise<void> {
  try {
    await listen();
  } catch (error) {
    throw listenProblem(error, port, host, what) ?? error;
  }
}

/**
 * The cluster id, waiting while the meta group has no quorum yet (its other members may still be
 * starting): start-up blocks until a majority of meta nodes is up.
 */
async function waitForClusterId(meta: MetaStore, logger: Logger): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await clusterId(meta);
    } catch (error) {
      const waiting =
        isRobustMQError(error, ErrorCode.Unavailable) || isRobustMQError(error, ErrorCode.Timeout);
      if (!waiting) throw error;
      logger.warn({ attempt, err: error }, 'waiting for the meta group to elect a leader');
    }
  }
}

/** The cluster's id, created by the first node that starts. */
async function clusterId(meta: MetaStore): Promise<string> {
  const key = '/cluster/id';
  const existing = await meta.get(key);
  if (existing) return Buffer.from(existing.value).toString('utf8');
  const id = randomUUID();
  try {
    await meta.put(key, Buffer.from(id), { ifRevision: 0 });
    return id;
  } catch (error) {
    if (!isRobustMQError(error, ErrorCode.Conflict)) throw error;
    const winner = await meta.get(key);
    return winner ? Buffer.from(winner.value).toString('utf8') : id;
  }
}

async function startProtocols(
  protocols: readonly LoadedProtocol[],
  context: BrokerContext,
  config: NodeConfig,
  deadline: ShutdownDeadline,
  cleanup: Array<() => Promise<void> | void>,
): Promise<BoundListener[]> {
  const connections = context.metrics.counter({
    name: 'robustmq_connections_accepted_total',
    help: 'Client connections accepted, by protocol and listener',
    labelNames: ['protocol', 'listener'],
  });
  const bound: BoundListener[] = [];
  for (const { name, plugin } of protocols) {
    const logger = context.logger.child({ protocol: name });
    await plugin.start({ ...context, logger });
    const mine: BoundListener[] = [];
    // Listeners stop accepting before the plugin stops; the plugin's leftover sockets go last.
    cleanup.push(async () => {
      for (const l of mine) l.stopAccepting();
      await deadline.wait(plugin.stop(), () =>
        logger.warn({ timeoutMs: deadline.ms }, 'protocol did not stop in time; closing its connections'),
      );
      await Promise.all(mine.map((l) => l.closeConnections()));
    });
    for (const spec of plugin.listeners()) {
      const listener = await bindListener(name, spec, config.bind, (connection, info) => {
        connections.inc({ protocol: name, listener: info.listener });
        try {
          plugin.accept(connection, info);
        } catch (error) {
          logger.error({ err: error, listener: info.listener }, 'protocol failed to accept a connection');
          connection.destroy();
        }
      });
      mine.push(listener);
      bound.push(listener);
    }
    await plugin.listening?.(
      mine.map(({ name: listener, transport, host, port }) => ({ name: listener, transport, host, port })),
    );
  }
  return bound;
}
