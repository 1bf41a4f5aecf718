import { Elysia } from 'elysia'
import { ErrorBody } from '../http/errors'
import { USER_ERRORS } from './errors'
import { IMAGE_TYPES_BY_EXTENSION } from './picture'
import type { FileStore } from '../storage/files'

// Exactly the keys pictureKey makes; anything else (dot segments, other folders) is not a picture here.
const PICTURE_KEY = /^profile-pics\/[0-9a-f-]{36}\/[0-9a-f]{32}\.(jpg|png|gif|webp)$/

/** Serves the local picture store; a key names its content (a hash), so it may be cached for good. */
export const mediaRoutes = (files: FileStore) =>
  new Elysia({ prefix: '/api/users/media', tags: ['users'] }).get(
    '/*',
    async ({ params }) => {
      const key = params['*']
      const match = PICTURE_KEY.exec(key)
      if (!match || !files.open) throw USER_ERRORS.pictureNotFound()
      const file = files.open(key)
      if (!(await file.exists())) throw USER_ERRORS.pictureNotFound()
      return new Response(file, {
        headers: {
          'content-type': IMAGE_TYPES_BY_EXTENSION[match[1]!]!.mime,
          'cache-control': 'public, max-age=31536000, immutable',
          'x-content-type-options': 'nosniff',
        },
      })
    },
    {
      // No params schema: Elysia cannot compile its exact mirror for a property named `*`, and printed a
      // 14-line non-JSON warning on the first request. PICTURE_KEY checks the whole key anyway.
      response: { 404: ErrorBody },
      detail: { summary: 'A profile picture from the local store' },
    },
  )
