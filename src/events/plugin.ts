import { Elysia } from 'elysia'
import type { Relay } from './relay'

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Wakes the relay once a response that may have changed a user has gone out, so its event leaves within milliseconds. */
export const relayWakeup = (relay: Pick<Relay, 'wake'>) =>
  new Elysia().onAfterResponse({ as: 'global' }, ({ request, set }) => {
    // A needless wake costs one indexed query and a missed one a sweep interval, so any successful-looking
    // write wakes it; the response is already on its way, so nothing here can delay a client.
    const status = typeof set.status === 'number' ? set.status : 200
    if (MUTATING.has(request.method) && status < 400) relay.wake()
  })
