import { treaty } from '@elysiajs/eden'
import { afterAll, beforeAll, expect, test } from 'bun:test'
import type { App } from '../src/app'
import { createTestApp } from './support/app'

// `bun run typecheck` covers this file: a route whose types drift fails to compile here.
let t: Awaited<ReturnType<typeof createTestApp>>
let api: ReturnType<typeof treaty<App>>
beforeAll(async () => {
  t = await createTestApp({ label: 'eden' })
  api = treaty<App>(t.app)
})
afterAll(() => t.close())

test('the Eden treaty client drives the API with end-to-end types', async () => {
  const registered = await api.api.users.register.post({
    email: 'eden@example.com',
    full_name: 'Eden Client',
    password: 'a-long-unusual-passphrase',
  })
  expect(registered.status).toBe(200)
  const access: string = registered.data!.access

  const headers = { authorization: `JWT ${access}` }
  const me = await api.api.users.me.get({ headers })
  expect(me.data?.email).toBe('eden@example.com')
  const fullName: string | undefined = me.data?.full_name
  expect(fullName).toBe('Eden Client')

  const updated = await api.api.users.update.patch({ full_name: 'Eden Renamed' }, { headers })
  expect(updated.data?.full_name).toBe('Eden Renamed')

  const byId = await api.api.users({ id: me.data!.id }).get({ headers })
  expect(byId.data?.id).toBe(me.data!.id)

  const badLogin = await api.api.users.login.post({ email: 'eden@example.com', password: 'wrong-password' })
  expect(badLogin.status).toBe(400)
  expect(badLogin.error?.value).toEqual({ email: ['Invalid email or password.'], password: ['Invalid email or password.'] })
})
