// The server's routes as Elysia types them, end to end. This file is the only one of the client that sees the
// server, and only its types: the package build (client-package/build.ts) writes the same type out in full as
// routes.d.ts, so that the published client needs neither the server's source nor its dependencies.
import type { App } from '../app'

export type Routes = App['~Routes']
