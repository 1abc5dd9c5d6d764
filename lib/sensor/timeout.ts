// A deadline on a promise, for the agent's waits that must not hang it.

/**
 * Rejects with `Error(what)` when `promise` has not settled within `ms`.
 * The work behind the promise is not stopped, only no longer waited for; and
 * the timer can only fire while the thread is free, never in the middle of a
 * blocking call (a bun:ffi read() or write() holds the thread until it returns).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]);
}
