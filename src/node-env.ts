// Elysia reads NODE_ENV once, when it is first imported: outside production its validation errors
// pretty-print the whole rejected value, which a hostile body turns into seconds of CPU. main.ts
// imports this module before anything else, so the service runs in production mode unless told otherwise.
process.env.NODE_ENV ??= 'production'
