/**
 * Races `work` against a timer of `ms`: its result if it settles first, else what `onExpiry` returns (or
 * throws). The timer is cleared either way, so a race that is won keeps no timer alive; `work` itself is
 * not cancelled, only no longer waited for.
 */
export async function raceTimer<T, U>(
  work: PromiseLike<T>,
  ms: number,
  onExpiry: () => U,
): Promise<T | U> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<U>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onExpiry());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
