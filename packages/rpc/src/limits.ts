/** The internal RPC port of a RobustMQ node (DESIGN.md section 4). */
export const DEFAULT_PORT = 1228;

/** Largest frame either side accepts or sends unless configured otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
