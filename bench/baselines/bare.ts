// The floor of any Bun HTTP service on this machine: Bun.serve answering a constant.
Bun.serve({ hostname: '127.0.0.1', port: Number(process.env.PORT), fetch: () => new Response('ok') })
