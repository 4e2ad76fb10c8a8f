/**
 * Which broker owns a key (a consumer group, a partition), chosen by rendezvous hashing over the
 * live brokers: every broker with the same view picks the same owner, and when a broker joins or
 * leaves only the keys it gains or held move.
 */
export function ownerOf(key: string, brokers: readonly number[]): number | null {
  if (brokers.length === 1) return brokers[0]!;
  let owner: number | null = null;
  let best = -1;
  const keyHash = hashString(key);
  for (const id of brokers) {
    const score = mix(keyHash ^ Math.imul(id + 1, 0x9e3779b1));
    if (score > best || (score === best && owner !== null && id < owner)) {
      best = score;
      owner = id;
    }
  }
  return owner;
}

/** FNV-1a over the UTF-16 code units. */
function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A finalizer that spreads every input bit over the whole result, as an unsigned 32-bit number. */
function mix(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
