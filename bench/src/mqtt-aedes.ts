/**
 * Aedes on a plain TCP server, in its own process for the mqtt suite: `node mqtt-aedes.js PORT`.
 * Prints `listening` once it accepts connections; SIGTERM closes it.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
// TCP_NODELAY, as RobustMQ's listener and the Mosquitto config have it.
const server = createServer({ noDelay: true }, broker.handle);
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
});
