/** An attached link, as stealing needs it: detaching it with `amqp:link:stolen`. */
export interface StealableLink {
  steal(): void;
}

/** Whose link it is: the client's container, as its `open` names it, and the user it connected as. */
export interface LinkOwner {
  containerId: string;
  /** null for an anonymous client. */
  username: string | null;
}

/**
 * The links attached to this broker by name, for link stealing (AMQP 1.0 section 2.6.1): a link is
 * known by its name and the two containers, so a name is attached at most once per client
 * container and direction. Attaching it again, on another session or connection (the same
 * container may connect more than once), takes it from the attachment that had it, which is
 * detached with `amqp:link:stolen`. The user is part of the key so that a client cannot detach
 * another user's links by naming that user's container-id.
 */
export class AttachedLinks {
  private readonly byName = new Map<string, StealableLink>();

  /**
   * Files `link` under its name; `steal` of the link filed there before is called first. Returns
   * what to call when `link` ends (it leaves the registry unless it was stolen meanwhile).
   */
  attach(owner: LinkOwner, role: 'sender' | 'receiver', name: string, link: StealableLink): () => void {
    const key = JSON.stringify([owner.containerId, owner.username, role, name]);
    const attached = this.byName.get(key);
    this.byName.set(key, link);
    if (attached && attached !== link) attached.steal();
    return () => {
      if (this.byName.get(key) === link) this.byName.delete(key);
    };
  }

  /** How many links are filed. */
  get size(): number {
    return this.byName.size;
  }
}
