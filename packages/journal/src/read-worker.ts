/**
 * A read thread of the journal (see {@link ReadThreads}): copies log bytes from a file into
 * memory shared with the engine's thread and checks the whole frames it copied, so neither the
 * copy nor the checksums take the engine's thread.
 */
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { checkedRunEnd } from './checksum-run.js';
import type { ReadThreadMessage, ReadThreadReply, ReadThreadRequest } from './read-threads.js';

const port = parentPort;
if (port === null) throw new Error('read-worker runs only as a worker thread');

port.on('message', (request: ReadThreadRequest) => {
  let reply: ReadThreadReply;
  try {
    const view = Buffer.from(request.memory, request.byteOffset, request.length);
    let bytesRead = 0;
    while (bytesRead < request.length) {
      const n = readSync(
        request.fd,
        view,
        bytesRead,
        request.length - bytesRead,
        request.position + bytesRead,
      );
      if (n === 0) break;
      bytesRead += n;
    }
    reply = { id: request.id, bytesRead, checkedEnd: checkedRunEnd(view, 0, bytesRead) };
  } catch (error) {
    const { message, code } = error as NodeJS.ErrnoException;
    reply = { id: request.id, error: { message: String(message), code } };
  }
  port.postMessage(reply);
});

const up: ReadThreadMessage = 'up';
port.postMessage(up);
