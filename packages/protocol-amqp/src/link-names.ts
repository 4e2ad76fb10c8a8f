import type { RheaSessionLink, RheaSessionLinks } from './rhea-shapes.js';

/** Where a link is filed: its direction as this end sees it, and its name. */
const key = (name: string, sender: boolean) => `${sender ? 'sender' : 'receiver'}:${name}`;
/** Where a refused repeat of an attached link is filed (rhea's session runs the links it files). */
const repeatKey = (handle: number) => `repeat:${handle}`;

/**
 * A link is named by its name and its direction together (AMQP 1.0 section 2.6.1), so a client
 * may attach a sender and a receiver of the same name on one connection: qpid-proton names links
 * `<container-id>-<address>`, so sending to and receiving from one address does this. rhea's
 * session files links by name alone and takes the second attach for a repeat of the first; here
 * its links are filed by direction and name instead. Called as the session begins, before any
 * attach on it is read.
 *
 * An attach naming a link of this direction that is attached already (on another handle) cannot
 * attach it again: rhea would throw, failing the whole connection. It gets a link of its own,
 * filed apart (the name stays the attached link's), handed to `refuseRepeat` to be refused.
 */
export function fileLinksByDirection(
  session: RheaSessionLinks,
  refuseRepeat: (link: RheaSessionLink) => void,
): void {
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
    for (const filed of [key(link.name, link.is_sender()), repeatKey(link.local.handle)]) {
      if (session.links[filed] === link) delete session.links[filed];
    }
  };
  session.on_attach = (frame) => {
    const { name, handle, role } = frame.performative;
    // The peer's role: true when it receives, so that this end sends.
    const create = () => (role ? session.create_sender(name) : session.create_receiver(name));
    const filed = key(name, role);
    const attached = session.links[filed];
    if (attached?.is_remote_open()) {
      const repeat = create();
      session.links[filed] = attached;
      session.links[repeatKey(repeat.local.handle)] = repeat;
      session.remote.handles[handle] = repeat;
      repeat.remote.handle = handle;
      repeat.remote.attach = frame.performative;
      repeat.state.remote_opened();
      refuseRepeat(repeat);
      return;
    }
    const link = attached ?? create();
    session.remote.handles[handle] = link;
    link.on_attach(frame);
    link.remote.attach = frame.performative;
  };
}
