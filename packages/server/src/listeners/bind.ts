import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ConnectionInfo, ListenerSpec } from '@robustmq/core';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { listenProblem, StartupError } from '../startup-error.js';
import { checkTlsFiles, readTlsFile } from '../tls-files.js';

/** A listener that is bound and handing connections to its protocol. */
export interface BoundListener {
  protocol: string;
  name: string;
  transport: ListenerSpec['transport'];
  host: string;
  port: number;
  /** Stops accepting at once; existing connections stay open for the protocol to finish. */
  stopAccepting(): void;
  /** Destroys connections the protocol did not close itself; resolves once the port is released. */
  closeConnections(): Promise<void>;
  /**
   * TLS and WSS listeners: reads the certificate files again (a StartupError if they cannot be) and
   * returns how to serve the connections accepted from then on with them.
   */
  renewCertificate?: () => () => void;
}

export type ConnectionHandler = (connection: Duplex, info: ConnectionInfo) => void;

/** Binds one listener. A busy or forbidden port is a StartupError with one clear line. */
export async function bindListener(
  protocol: string,
  spec: ListenerSpec,
  defaultHost: string,
  onConnection: ConnectionHandler,
): Promise<BoundListener> {
  const host = spec.host ?? defaultHost;
  const sockets = new Set<Duplex>();
  const track = (socket: Duplex) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const hand = (connection: Duplex, socket: Socket) => {
    track(connection);
    onConnection(connection, {
      listener: spec.name,
      transport: spec.transport,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    });
  };

  let server: TcpServer | HttpServer | HttpsServer;
  let webSockets: WebSocketServer | undefined;
  switch (spec.transport) {
    case 'tcp':
      server = createTcpServer({ noDelay: true }, (socket) => hand(socket, socket));
      break;
    case 'tls':
      server = createTlsServer(readTls(protocol, spec), (socket: TLSSocket) => hand(socket, socket));
      break;
    case 'ws':
    case 'wss': {
      const web = spec.transport === 'ws' ? createHttpServer() : createHttpsServer(readTls(protocol, spec));
      server = web;
      const offered = new Set(spec.subprotocols ?? []);
      webSockets = new WebSocketServer({
        server: web,
        ...(spec.path ? { path: spec.path } : {}),
        ...(spec.maxMessageBytes ? { maxPayload: spec.maxMessageBytes } : {}),
        handleProtocols: (protocols) => [...protocols].find((p) => offered.has(p)) ?? false,
      });
      webSockets.on('connection', (ws, request) => {
        const stream = createWebSocketStream(ws);
        // A socket error after the client vanished is reported by the protocol's own handlers.
        ws.on('error', () => stream.destroy());
        // The stream only ends when the WebSocket closes; closed once its last bytes are read, as
        // a TCP socket is, so the protocol learns the client has gone (a will, a session to free).
        stream.on('end', () => stream.destroy());
        hand(stream, request.socket);
      });
      // A plain HTTP request (a health check, a browser opening the URL) is told to upgrade, not left waiting.
      web.on('request', (_request, response) => {
        response.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Content-Type': 'text/plain' });
        response.end('this port speaks WebSocket only\n');
      });
      break;
    }
  }
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => socket.destroy());
  });

  await listen(server, spec.port, host, `${protocol}/${spec.name}`);
  const released = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : spec.port;
  return {
    protocol,
    name: spec.name,
    transport: spec.transport,
    host,
    port,
    stopAccepting: () => {
      webSockets?.close();
      server.close();
    },
    ...(server instanceof TlsServer
      ? {
          renewCertificate: () => {
            const fresh = readTls(protocol, spec);
            return () => server.setSecureContext(fresh);
          },
        }
      : {}),
    closeConnections: async () => {
      for (const socket of sockets) socket.destroy();
      webSockets?.clients.forEach((ws) => ws.terminate());
      if ('closeAllConnections' in server) server.closeAllConnections();
      await released;
    },
  };
}

/** Listens, turning EADDRINUSE and EACCES into a line a user can act on. */
export function listen(
  server: TcpServer | HttpServer | HttpsServer,
  port: number,
  host: string,
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        listenProblem(error, port, host, what) ??
          new StartupError(`cannot listen on ${host}:${port} (${what}): ${error.message}`),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function readTls(protocol: string, spec: ListenerSpec): { cert: Buffer; key: Buffer; ca?: Buffer } {
  const where = `${protocol}/${spec.name}`;
  if (!spec.tls) throw new StartupError(`${where}: a ${spec.transport} listener needs a certificate and key`);
  const pems = {
    cert: readTlsFile(spec.tls.cert, `${where} certificate`),
    key: readTlsFile(spec.tls.key, `${where} key`),
    ...(spec.tls.ca ? { ca: readTlsFile(spec.tls.ca, `${where} CA`) } : {}),
  };
  checkTlsFiles(pems, where);
  return pems;
}
