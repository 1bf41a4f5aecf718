import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: [
    './src/users/table.ts',
    './src/events/table.ts',
    './src/mail/table.ts',
    './src/recovery/table.ts',
    './src/security-log/table.ts',
    './src/mfa/table.ts',
    './src/oidc/table.ts',
  ],
  out: './drizzle',
  casing: 'snake_case',
})
