/**
 * The topic aliases the broker assigns on the PUBLISH packets it sends one MQTT 5 connection
 * (MQTT 5 section 3.3.2.3.4): at most `maximum` of them, the least recently used topic giving
 * up its alias when a new topic needs one. Aliases live as long as the connection.
 */
export class OutboundTopicAliases {
  /** Topic -> alias, least recently used first. */
  private readonly byTopic = new Map<string, number>();
  private readonly byAlias = new Map<number, string>();

  constructor(readonly maximum: number) {}

  /** The alias the client already knows for `topic` (marking it used), if any. */
  lookup(topic: string): number | undefined {
    const alias = this.byTopic.get(topic);
    if (alias !== undefined) {
      this.byTopic.delete(topic);
      this.byTopic.set(topic, alias);
    }
    return alias;
  }

  /** The alias a new topic gets: a free one, or the least recently used topic's. */
  next(): number {
    if (this.byTopic.size < this.maximum) return this.byTopic.size + 1;
    return this.byTopic.values().next().value!;
  }

  /** Records that the client was sent `topic` with `alias` (replacing what the alias meant). */
  set(topic: string, alias: number): void {
    const previous = this.byAlias.get(alias);
    if (previous !== undefined) this.byTopic.delete(previous);
    this.byAlias.set(alias, topic);
    this.byTopic.set(topic, alias);
  }

  get size(): number {
    return this.byTopic.size;
  }
}
