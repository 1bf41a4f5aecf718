/** At most `limit` calls of `work` at once, the others waiting their turn in order. */
export function boundedConcurrency(limit: number) {
  let running = 0
  const waiting: (() => void)[] = []
  return async <T>(work: () => Promise<T>): Promise<T> => {
    // A finishing call hands its slot straight to the next waiter, so no newcomer can slip in between.
    if (running < limit) running++
    else await new Promise<void>((resolve) => waiting.push(resolve))
    try {
      return await work()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else running--
    }
  }
}

/** `fn` over every item, at most `limit` at a time, results in the items' order. */
export function mapConcurrently<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const slot = boundedConcurrency(limit)
  return Promise.all(items.map((item) => slot(() => fn(item))))
}
