import { createRequire } from 'node:module';
import { crc32c as portableCrc32c } from '@node-rs/crc32';

interface NativeBinding {
  /** Present only when the CPU and OS support the folded path. */
  crc32c?: (data: Uint8Array, initial?: number) => number;
  wide: boolean;
}

/** The addon, built by `node-gyp` when the package is installed; absent if that build failed. */
function loadNative(): NativeBinding | null {
  try {
    return createRequire(import.meta.url)('../build/Release/crc32c.node') as NativeBinding;
  } catch {
    return null;
  }
}

const native = loadNative();

/**
 * How checksums are computed in this process:
 * - `avx512`: this package's addon, folding 256 bytes at a time with AVX-512 VPCLMULQDQ;
 * - `node-rs`: `@node-rs/crc32` (SSE4.2 or ARMv8 CRC instructions), because the CPU lacks those
 *   instructions or the addon was not built.
 */
export const implementation: 'avx512' | 'node-rs' = native?.crc32c ? 'avx512' : 'node-rs';

/** Whether the native addon loaded, whatever the CPU supports. */
export const nativeLoaded = native !== null;

/**
 * CRC32C of `data`, continuing from `initial` (the checksum of the bytes before it, 0 for none),
 * so `crc32c(b, crc32c(a))` equals the checksum of `a` followed by `b`.
 */
export const crc32c: (data: Uint8Array, initial?: number) => number =
  native?.crc32c ?? ((data, initial) => portableCrc32c(data, initial));
