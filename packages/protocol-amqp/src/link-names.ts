import type { RheaSessionLink, RheaSessionLinks } from './rhea-shapes.js';

/** Where a link is filed: its direction as this end sees it, and its name. */
const key = (name: string, sender: boolean) => `${sender ? 'sender' : 'receiver'}:${name}`;

/**
 * A link is named by its name and its direction together (AMQP 1.0 section 2.6.1), so a client
 * may attach a sender and a receiver of the same name on one connection: qpid-proton names links
 * `<container-id>-<address>`, so sending to and receiving from one address does this. rhea's
 * session files links by name alone and takes the second attach for a repeat of the first; here
 * its links are filed by direction and name instead. Called as the session begins, before any
 * attach on it is read.
 */
export function fileLinksByDirection(session: RheaSessionLinks): void {
  session.create_link = (name, constructor, options) => {
    let handle = 0;
    while (session.local.handles[handle]) handle++;
    const link = new constructor(session, name, handle, options);
    session.links[key(name, link.is_sender())] = link;
    session.local.handles[handle] = link;
    return link;
  };
  session.remove_link = (link: RheaSessionLink) => {
    if (link.remote.handle !== undefined) delete session.remote.handles[link.remote.handle];
    delete session.local.handles[link.local.handle];
    delete session.links[key(link.name, link.is_sender())];
  };
  session.on_attach = (frame) => {
    const { name, handle, role } = frame.performative;
    // The peer's role: true when it receives, so that this end sends.
    const link =
      session.links[key(name, role)] ?? (role ? session.create_sender(name) : session.create_receiver(name));
    session.remote.handles[handle] = link;
    link.on_attach(frame);
    link.remote.attach = frame.performative;
  };
}
