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

/** When a link was attached, to tell the later of two attachments: ms since the epoch, then the broker. */
export interface AttachStamp {
  at: number;
  node: number;
}

/** The other brokers of a cluster, told of each attachment so that they detach an older one. */
export interface LinkPeers {
  nodeId: number;
  tell(key: string, stamp: AttachStamp): void;
}

const later = (a: AttachStamp, b: AttachStamp) => a.at > b.at || (a.at === b.at && a.node > b.node);

/**
 * The links attached to this broker by name, for link stealing (AMQP 1.0 section 2.6.1): a link is
 * known by its name and the two containers, so a name is attached at most once per client
 * container and direction. Attaching it again, on another session or connection (the same
 * container may connect more than once, to any broker of a cluster), takes it from the attachment
 * that had it, which is detached with `amqp:link:stolen`. The user is part of the key so that a
 * client cannot detach another user's links by naming that user's container-id.
 */
export class AttachedLinks {
  private readonly byName = new Map<string, { link: StealableLink; stamp: AttachStamp }>();

  constructor(private readonly peers: LinkPeers | null = null) {}

  /**
   * Files `link` under its name; `steal` of the link filed there before is called first, and the
   * other brokers are told, to steal one they have. Returns what to call when `link` ends (it
   * leaves the registry unless it was stolen meanwhile).
   */
  attach(owner: LinkOwner, role: 'sender' | 'receiver', name: string, link: StealableLink): () => void {
    const key = JSON.stringify([owner.containerId, owner.username, role, name]);
    const attached = this.byName.get(key);
    const stamp = { at: Date.now(), node: this.peers?.nodeId ?? 0 };
    this.byName.set(key, { link, stamp });
    if (attached && attached.link !== link) attached.link.steal();
    this.peers?.tell(key, stamp);
    return () => {
      if (this.byName.get(key)?.link === link) this.byName.delete(key);
    };
  }

  /** Another broker attached the link filed as `key` here: the attachment here goes if older. */
  attachedElsewhere(key: string, stamp: AttachStamp): void {
    const attached = this.byName.get(key);
    if (attached === undefined || !later(stamp, attached.stamp)) return;
    this.byName.delete(key);
    attached.link.steal();
  }

  /** How many links are filed. */
  get size(): number {
    return this.byName.size;
  }
}
