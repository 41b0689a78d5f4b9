// The size of libuv's threadpool, which runs amibundle's deflate, inflate, SHA-1 and file I/O off
// the event loop. libuv reads UV_THREADPOOL_SIZE once, when the pool first starts, and otherwise
// has four threads; the parallel compressor and decompressor size their work in flight by it.

/** Threads in libuv's pool: UV_THREADPOOL_SIZE when it is a positive integer, else libuv's 4. */
export function threadpoolSize(): number {
  const size = Number.parseInt(process.env['UV_THREADPOOL_SIZE'] ?? '', 10);
  return Number.isInteger(size) && size > 0 ? size : 4;
}
