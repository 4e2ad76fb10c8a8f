import { isRobustMQError, type ErrorCode, type RecordBatch, type StoredBatch } from '@robustmq/core';
import { expect } from 'vitest';

function describeError(error: unknown): string {
  if (isRobustMQError(error)) return `RobustMQError ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Asserts that `action` rejects with a RobustMQError of `code`. Pass the promise an engine call
 * returned; an engine that throws synchronously instead fails the test where it is called.
 */
export async function expectErrorCode(action: Promise<unknown>, code: ErrorCode): Promise<void> {
  let outcome: { error: unknown } | undefined;
  try {
    await action;
  } catch (error) {
    outcome = { error };
  }
  if (outcome === undefined) expect.fail(`expected a RobustMQError ${code}, but the call succeeded`);
  if (!isRobustMQError(outcome.error, code)) {
    expect.fail(`expected a RobustMQError ${code}, got ${describeError(outcome.error)}`);
  }
}

/** The index of the first byte where `a` and `b` differ, or -1 when they are equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}

/**
 * Asserts that `actual` is `expected` stored at `baseOffset`: same record count and timestamp,
 * and `data` equal byte for byte.
 */
export function expectStoredBatch(
  actual: StoredBatch | undefined,
  expected: RecordBatch,
  baseOffset: number,
): void {
  expect(actual, `a batch at offset ${baseOffset}`).toBeDefined();
  const batch = actual!;
  expect(batch.baseOffset, 'baseOffset').toBe(baseOffset);
  expect(batch.recordCount, `recordCount of the batch at ${baseOffset}`).toBe(expected.recordCount);
  expect(batch.maxTimestamp, `maxTimestamp of the batch at ${baseOffset}`).toBe(expected.maxTimestamp);
  expect(batch.data, `data of the batch at ${baseOffset}`).toBeInstanceOf(Uint8Array);
  expect(batch.data.length, `data length of the batch at ${baseOffset}`).toBe(expected.data.length);
  expect(firstDifference(batch.data, expected.data), `first differing byte at ${baseOffset}`).toBe(-1);
}

/** Asserts `actual` are exactly `expected` (stored batches with their offsets), in order. */
export function expectStoredBatches(actual: readonly StoredBatch[], expected: readonly StoredBatch[]): void {
  expect(
    actual.map((batch) => batch.baseOffset),
    'base offsets',
  ).toEqual(expected.map((batch) => batch.baseOffset));
  expected.forEach((batch, i) => expectStoredBatch(actual[i], batch, batch.baseOffset));
}

/** Asserts that each batch starts where the one before ended. */
export function expectContiguous(batches: readonly StoredBatch[]): void {
  for (let i = 1; i < batches.length; i++) {
    const before = batches[i - 1]!;
    expect(batches[i]!.baseOffset, `batch ${i} follows batch ${i - 1}`).toBe(
      before.baseOffset + before.recordCount,
    );
  }
}
