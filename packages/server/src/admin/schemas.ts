import { z } from 'zod';

/** `?limit=&after=` of every list route. */
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('Items per page, 1 to 1000'),
  after: z.string().min(1).optional().describe('The `next` of the previous page'),
});

/** A page of `item`s: `next` is the `after` for the following page, or null on the last. */
export function page<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable() });
}

/**
 * Pages `fetch` (which takes a limit and answers in order) by asking one item more than the page:
 * its presence says whether a next page exists.
 */
export async function paginate<T>(
  limit: number,
  fetch: (limit: number) => Promise<T[]>,
  idOf: (item: T) => string,
): Promise<{ items: T[]; next: string | null }> {
  const items = await fetch(limit + 1);
  if (items.length <= limit) return { items, next: null };
  const shown = items.slice(0, limit);
  return { items: shown, next: idOf(shown[shown.length - 1]!) };
}

export const errorResponse = z
  .object({
    error: z.object({
      code: z.string().describe('Stable code: INVALID_ARGUMENT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, ...'),
      message: z.string(),
      field: z.string().optional().describe('The field at fault, when one is'),
    }),
  })
  .describe('An error');

/** Error answers shared by routes that need a token. */
export const authErrors = {
  401: errorResponse,
  403: errorResponse,
  503: errorResponse,
};

export const noContent = z.undefined().describe('Done; no body');
