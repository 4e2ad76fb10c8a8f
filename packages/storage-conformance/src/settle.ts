/** How a promise stood after a wait: see {@link settlesWithin}. */
export type Settlement = 'resolved' | 'rejected' | 'pending';

/**
 * Whether `promise` settles within `ms`. Lets a test tell "woke on data" from "woke on its own
 * timeout" without asserting on speed: the engine's timeout is set far beyond `ms`.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<Settlement> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<Settlement>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (): Settlement => 'resolved',
        (): Settlement => 'rejected',
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
