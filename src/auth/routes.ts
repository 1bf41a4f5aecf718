import { Elysia } from 'elysia'
import { ErrorBody, FieldErrorsBody } from '../errors'
import { RegisterBody } from '../users/model'
import { trimNameAndEmail } from '../users/model'
import { LoginBody, RefreshBody, TokenPairBody } from './model'
import { login, refresh, register, type AuthDeps } from './service'

/** Register, login and refresh: the routes that hand out tokens. */
export const authRoutes = (deps: AuthDeps) =>
  new Elysia({ prefix: '/api/users', tags: ['auth'] })
    .post(
      '/register',
      ({ body }) => register(deps, { email: body.email, fullName: body.full_name, password: body.password }),
      {
        transform: ({ body }) => trimNameAndEmail(body),
        body: RegisterBody,
        response: { 200: TokenPairBody, 400: FieldErrorsBody },
        detail: { summary: 'Create an account and start a session' },
      },
    )
    .post('/login', ({ body }) => login(deps, body.email, body.password), {
      body: LoginBody,
      response: { 200: TokenPairBody, 400: FieldErrorsBody },
      detail: { summary: 'Start a session with email and password' },
    })
    .post('/refresh', ({ body }) => refresh(deps, body.refresh), {
      body: RefreshBody,
      response: { 200: TokenPairBody, 400: FieldErrorsBody, 401: ErrorBody },
      detail: { summary: 'Exchange a refresh token for a new pair' },
    })
