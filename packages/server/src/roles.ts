import { REMOTE_STORAGE_ENGINE, type NodeConfig } from './config/schema.js';
import { StartupError } from './startup-error.js';

/**
 * What a node does, from its roles:
 * - `standalone` (meta, broker, journal): everything in one process, calling each other in-process.
 * - `journal`: a journal node, serving its storage engine to brokers over the internal RPC port.
 * - `broker` (meta, broker): protocols and meta here, storage on a journal node through
 *   `@robustmq/journal/remote`.
 * A broker without a local meta role needs the Raft meta service over the network, which this
 * release does not have yet; such role sets stop start-up with a message that says so.
 */
export type NodeMode = 'standalone' | 'journal' | 'broker';

export function nodeMode(config: NodeConfig): NodeMode {
  const roles = new Set(config.roles);
  const remote = config.storage.engine === REMOTE_STORAGE_ENGINE;
  const list = `roles = [${config.roles.join(', ')}]`;
  if (roles.size === 3) {
    if (remote) {
      throw new StartupError(
        `${list} stores locally: storage.engine cannot be ${REMOTE_STORAGE_ENGINE} with the journal role`,
      );
    }
    return 'standalone';
  }
  if (roles.size === 1 && roles.has('journal')) {
    if (remote) {
      throw new StartupError(
        `${list} serves its own storage: storage.engine cannot be ${REMOTE_STORAGE_ENGINE}`,
      );
    }
    if (config.protocols !== undefined && config.protocols.length > 0) {
      throw new StartupError(`${list} runs no protocols: protocols need the broker role`);
    }
    return 'journal';
  }
  if (roles.size === 2 && roles.has('meta') && roles.has('broker')) {
    if (!remote) {
      throw new StartupError(
        `${list} keeps no storage of its own: set storage.engine = "${REMOTE_STORAGE_ENGINE}" and storage.address = "<journal node>:1228"`,
      );
    }
    return 'broker';
  }
  throw new StartupError(
    `${list} is not a supported role set: use meta,broker,journal (standalone), journal (a journal node) ` +
      'or meta,broker (brokers on a journal node); a broker without meta needs the cluster meta service',
  );
}
