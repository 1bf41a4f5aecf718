/** Polls until `condition` holds, or fails naming `what`: the one way a test awaits something that happens in the background. */
export async function waitFor(condition: () => unknown, what: string, timeoutMs = 5_000, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await Bun.sleep(intervalMs)
  }
}
