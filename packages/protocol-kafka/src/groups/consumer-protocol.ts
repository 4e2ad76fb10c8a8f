/*
 * The "consumer" protocol's join metadata (ConsumerProtocolSubscription) and assignment
 * (ConsumerProtocolAssignment) are opaque to the coordinator; they are read only for views
 * (DescribeGroups summaries, the admin API) and for OffsetDelete's subscribed-topic check. Only the
 * leading fields, the same in every version, are read.
 */

class Reader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  private view(size: number): DataView {
    if (this.at + size > this.bytes.length) throw new RangeError('truncated consumer protocol data');
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.at, size);
    this.at += size;
    return view;
  }

  int16(): number {
    return this.view(2).getInt16(0);
  }

  int32(): number {
    return this.view(4).getInt32(0);
  }

  string(): string {
    const length = this.int16();
    if (length < 0) return '';
    const start = this.at;
    this.view(length);
    return new TextDecoder().decode(this.bytes.subarray(start, start + length));
  }

  count(): number {
    const n = this.int32();
    if (n < 0) return 0;
    if (n > this.bytes.length) throw new RangeError('implausible array length in consumer protocol data');
    return n;
  }
}

/** The topics a consumer subscribes to, or null when the bytes are not a subscription. */
export function subscribedTopics(metadata: Uint8Array): string[] | null {
  try {
    const reader = new Reader(metadata);
    reader.int16();
    const topics: string[] = [];
    for (let i = reader.count(); i > 0; i--) topics.push(reader.string());
    return topics;
  } catch {
    return null;
  }
}

/** The partitions assigned to a consumer, by topic, or null when the bytes are not an assignment. */
export function assignedPartitions(assignment: Uint8Array): { topic: string; partitions: number[] }[] | null {
  if (assignment.length === 0) return [];
  try {
    const reader = new Reader(assignment);
    reader.int16();
    const result: { topic: string; partitions: number[] }[] = [];
    for (let i = reader.count(); i > 0; i--) {
      const topic = reader.string();
      const partitions: number[] = [];
      for (let j = reader.count(); j > 0; j--) partitions.push(reader.int32());
      result.push({ topic, partitions });
    }
    return result;
  } catch {
    return null;
  }
}
