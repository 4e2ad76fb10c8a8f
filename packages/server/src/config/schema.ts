import { z } from 'zod';

/** Roles a node can run; standalone runs all three in one process. */
export const ROLES = ['meta', 'broker', 'journal'] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Protocol packages a node with the broker role starts when the config names none. */
export const DEFAULT_PROTOCOLS: readonly string[] = [
  '@robustmq/protocol-mqtt',
  '@robustmq/protocol-kafka',
  '@robustmq/protocol-amqp',
];

/** The default storage engine package. */
export const DEFAULT_STORAGE_ENGINE = '@robustmq/journal';

/** The engine a node without the journal role stores through: a client of a journal node. */
export const REMOTE_STORAGE_ENGINE = '@robustmq/journal/remote';

const port = z.number().int().min(0).max(65535);

/** Sections the server itself owns; every other top-level table belongs to a protocol plugin. */
export const nodeConfigSchema = z
  .object({
    node_id: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(1),
    roles: z
      .array(z.enum(ROLES))
      .min(1)
      .refine((roles) => new Set(roles).size === roles.length, 'roles must not repeat')
      .default([...ROLES]),
    data_dir: z.string().min(1).default('./robustmq-data'),
    /** Address every listener binds unless its own section says otherwise. */
    bind: z.string().min(1).default('0.0.0.0'),
    /** Unset means the defaults on a node with the broker role, none on a journal node. */
    protocols: z.array(z.string().min(1)).optional(),
    /** How long shutdown waits, in all, for the protocols' in-flight work and for leaving the cluster. */
    shutdown_timeout_ms: z.number().int().min(0).default(10_000),
    http: z
      .strictObject({
        port: port.default(58080),
        host: z.string().min(1).optional(),
        /** PEM files of a certificate and its key: set (both), the admin API is HTTPS only. */
        tls_cert: z.string().min(1).optional(),
        tls_key: z.string().min(1).optional(),
      })
      .refine((http) => (http.tls_cert === undefined) === (http.tls_key === undefined), {
        message: 'tls_cert and tls_key go together: set both or neither',
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default('info'),
        /** `auto` is pretty on a terminal and JSON otherwise. */
        format: z.enum(['json', 'pretty', 'auto']).default('auto'),
      })
      .prefault({}),
    rpc: z
      .strictObject({
        /** Internal RPC between nodes: a journal node serves its storage here. */
        port: port.default(1228),
        host: z.string().min(1).optional(),
        /**
         * PEM files of this node's certificate and key, and of the CA that signs every node's. Set
         * (all three), the port speaks only TLS and takes only nodes whose certificates the CA
         * signed; the node shows its certificate to the nodes it calls in turn.
         */
        tls_cert: z.string().min(1).optional(),
        tls_key: z.string().min(1).optional(),
        tls_ca: z.string().min(1).optional(),
      })
      .refine(
        (rpc) =>
          [rpc.tls_cert, rpc.tls_key, rpc.tls_ca].every((file) => file === undefined) ||
          [rpc.tls_cert, rpc.tls_key, rpc.tls_ca].every((file) => file !== undefined),
        { message: 'tls_cert, tls_key and tls_ca go together: set all three or none' },
      )
      .prefault({}),
    auth: z
      .strictObject({
        /** Whether clients without credentials are let in. */
        allow_anonymous: z.boolean().default(true),
        /** What a principal may do when no ACL rule matches: `allow` (the default) or `deny`. */
        acl_default: z.enum(['allow', 'deny']).default('allow'),
      })
      .prefault({}),
    admin: z
      .strictObject({
        /**
         * The bootstrap `admin` user's password, used only on the first start (no users yet); unset,
         * a random one is generated and printed once. Env `ROBUSTMQ_ADMIN_PASSWORD`.
         */
        password: z.coerce.string().min(1).optional(),
        /** How long an admin API login token stays valid. */
        token_ttl_seconds: z
          .number()
          .int()
          .min(1)
          .default(12 * 60 * 60),
      })
      .prefault({}),
    /**
     * The meta Raft group. Set, every node with the meta role is a member of it (its node_id among
     * `meta_nodes`) and serves Raft on its rpc port; unset, meta is a local store on this node.
     */
    cluster: z
      .strictObject({
        /** The group's members as `"<node id>@<host>:<rpc port>"`. */
        meta_nodes: z
          .array(z.string().regex(/^[1-9]\d*@[^@\s]+:\d{1,5}$/, 'must look like "1@127.0.0.1:1228"'))
          .min(1)
          .refine(
            (nodes) => new Set(nodes.map((node) => node.split('@')[0])).size === nodes.length,
            'node ids must not repeat',
          ),
        /** Milliseconds per Raft tick; a leader is suspected lost after 10 to 20 ticks. */
        tick_ms: z.number().int().min(1).default(100),
        /** How often a broker on shared storage tells the others it is alive. */
        broker_heartbeat_interval_ms: z.number().int().min(10).default(2000),
        /** A broker silent this long is gone: its peers take over what it owned. */
        broker_session_timeout_ms: z.number().int().min(100).default(9000),
      })
      .refine((cluster) => cluster.broker_heartbeat_interval_ms < cluster.broker_session_timeout_ms, {
        message: 'must be below broker_session_timeout_ms',
        path: ['broker_heartbeat_interval_ms'],
      })
      .optional(),
    storage: z
      .looseObject({
        /** Package name of the storage engine; the rest of the section is the engine's own. */
        engine: z.string().min(1).default(DEFAULT_STORAGE_ENGINE),
      })
      .prefault({}),
  })
  .catchall(z.record(z.string(), z.unknown()));

export type NodeConfig = z.output<typeof nodeConfigSchema>;

/** Top-level keys the server owns, so the rest can be checked against the loaded plugins. */
export const SERVER_KEYS = new Set(Object.keys(nodeConfigSchema.shape));
